# Every target bootstraps .venv by itself: a fresh machine needs only Python 3.11+.
# It installs the exact versions in requirements.lock (tools included), so a fresh
# machine runs the checks and tests on what they last passed on; `make lock` refreshes it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LOCK   := requirements.lock

.PHONY: run test lint bench lock clean sdk

$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -r $(LOCK)
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/relaycast up $(UP_ARGS)

# The JavaScript SDK (sdk/js): its dev tools come from package-lock.json (`npm ci`); its
# built files are checked in, so serving the gateway needs no Node. Tests that need Node
# (tests/test_js_sdk.py) run when `node` is on PATH.
JS      := sdk/js
JS_DEPS := $(JS)/node_modules/.installed

$(JS_DEPS): $(JS)/package-lock.json
	cd $(JS) && npm ci --prefer-offline
	touch $(JS_DEPS)

# Rebuild the package (sdk/js/dist) and the client every gateway serves (gateway/static/sdk).
sdk: $(JS_DEPS)
	cd $(JS) && npm run build

test: $(STAMP)
	if command -v node >/dev/null 2>&1; then $(MAKE) $(JS_DEPS); fi
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/relaycast bench $(BENCH_ARGS)

# Resolve pyproject.toml's ranges afresh in a scratch venv and pin the result.
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install -q --upgrade pip setuptools
	.lock-venv/bin/python -m pip install -q '.[dev]'
	{ echo "# Exact versions that make installs; refresh with: make lock"; \
	  .lock-venv/bin/python -m pip freeze --all --exclude relaycast; } > $(LOCK)
	rm -rf .lock-venv build

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info $(JS)/node_modules $(JS)/dist
