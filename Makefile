# Quick start: `make demo`, `make test`. Both set up what they need first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install -q

.PHONY: setup system-deps demo test lint format clean

system-deps:
	@$(PY) -c "import ctypes.util,sys; sys.exit(0 if ctypes.util.find_library('avcodec') else 1)" 2>/dev/null \
	  || ( [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null ) \
	  || ( command -v sudo >/dev/null && sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null ) \
	  || echo "warning: could not install FFmpeg libraries (torchcodec needs them to decode in load_dataset)"

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) "torch>=2.4,<2.14" "torchcodec==0.12.0" "av==18.1.0"  # av pinned: shard bytes depend on its FFmpeg build
	$(PIP) -e ".[dev]"
	touch $@

setup: system-deps $(VENV)/.installed

# A second virtualenv with datasets 3.x, where the Hub builder script (loading_script/acav1m.py) still loads.
DS3_VENV ?= .venv-ds3
$(DS3_VENV)/.installed:
	$(PYTHON) -m venv $(DS3_VENV)
	$(DS3_VENV)/bin/python -m pip install -q --upgrade pip
	$(DS3_VENV)/bin/python -m pip install -q "datasets>=3.0,<4" soundfile pillow librosa
	touch $@

demo: setup
	$(VENV)/bin/acav1m demo

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format:
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: setup lint $(DS3_VENV)/.installed
	ACAV1M_DS3_PYTHON=$(DS3_VENV)/bin/python $(PY) -m pytest -q

clean:
	rm -rf $(VENV) acav1m .pytest_cache .ruff_cache
