# asymtune: set up, run and test on a fresh machine.
#   make demo   set up, then run `asymtune tune` with the embedded defaults (outputs/tune)
#   make test   set up, then run the default test suite (about 6 minutes on 2 cores)
PYTHON ?= python3
VENV ?= .venv
# The torch build to install before the package. The default is the CPU build this project is
# developed on; a GPU user sets e.g. TORCH_SPEC="torch==2.13.0" from the CUDA index, or keeps theirs.
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: setup demo smoke test test-slow test-all clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[test]" -c constraints.txt
	touch $@

demo: setup
	$(BIN)/asymtune tune

smoke: setup
	$(BIN)/asymtune tune experiment=smoke output_dir=outputs/smoke

test: setup
	$(BIN)/python -m pytest -m "not slow"

test-slow: setup
	$(BIN)/python -m pytest -m slow

test-all: setup
	$(BIN)/python -m pytest

clean:
	rm -rf outputs $(VENV)
