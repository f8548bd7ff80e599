# Two entry points for a fresh machine: `make demo` and `make test`. Both create .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)

.PHONY: demo test check lint bench clean browser

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# Re-install whenever pyproject.toml or constraints.txt change. spandrel (for `vsr import`) goes in without
# the CUDA torchvision it would pull here (see pyproject's import extra), erqa without the GUI OpenCV (see
# the quality extra).
$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(PIP) install -q -c constraints.txt -e '.[dev]'
	$(PIP) install -q -c constraints.txt --no-deps spandrel erqa
	rm -f $(VENV)/.installed-* && touch $@

demo: $(STAMP)
	$(BIN)/python samples/demo.py

test: $(STAMP) browser
	$(BIN)/python -m pytest -q

# The compare page's browser test drives Debian's chromium (playwright's own browser download is not
# reachable from every machine). Installed where the machine allows it (root with apt); else that test skips.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  { apt-get install -y -q chromium >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; }; }; } || \
	  echo "chromium not installed: the compare page's browser test will skip"

# The developer loop: everything but subprocess, wheel-building and dataset tests (`make test` runs all).
check: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check vsr tests bench samples
	$(BIN)/ruff format --check vsr tests bench samples

bench: $(STAMP)
	$(BIN)/python bench/cpu_pipeline.py

clean:
	rm -rf $(VENV) build dist .pytest_cache .ruff_cache out
