# `make demo` and `make test` do all the set-up on a fresh machine: a virtualenv in .venv with the
# project and its test extras installed (re-installed when pyproject.toml changes).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test test-unit test-integration test-acceptance bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/forger demo $(DEMO_ARGS)

# The suite runs in TEST_WORKERS processes (pytest-xdist), a test file to a process: its module
# fixtures (a sandbox X, a Bluesky network, a browser) are set up once. TEST_WORKERS=0 runs it in one.
TEST_WORKERS ?= 2

test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# The tiers (tests/README.md): pure functions; storage and adapters against real servers; whole processes.
test-unit test-integration test-acceptance: test-%: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile tests/$* $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) demo-output .pytest_cache
