"""Several hosts on one machine: network namespaces, a delay relay, chaos runs (see harness)."""
