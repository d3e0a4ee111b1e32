"""DSMT benchmarks: ``python -m benchmarks NAME [ARGS]`` prints one JSON document."""
