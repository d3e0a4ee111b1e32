# Two entry points for a fresh machine with only python3:
#   make up     run the main job: a router and 3 slivers running the demo app
#   make test   run the whole test suite
# Each creates .venv and installs the project into it first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: up test bench clean iproute2

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,bench]'
	touch $(STAMP)

up: $(STAMP)
	$(BIN)/dsmt up $(UP_ARGS)

test: $(STAMP) iproute2
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# tests/netns needs 'ip' (iproute2); installed only where it is missing (CI runs as root)
iproute2:
	@command -v ip >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			apt-get update -q && apt-get install -y -q iproute2; \
		else echo "iproute2 missing: tests/netns will skip"; fi; }

bench: $(STAMP)
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
