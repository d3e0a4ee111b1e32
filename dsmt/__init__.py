"""DSMT runtime: actors, supervision, states, events, channels, codec, hub, node."""
