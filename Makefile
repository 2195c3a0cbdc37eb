# The two commands: `make demo` and `make test`. Each builds .venv first if needed (torch pinned first).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv demo test lint bench gpu-wheels clean

venv: $(STAMP)

# torch goes in first at exactly 2.13.0 (a CPU build here); any looser order lets pip fetch a CUDA build.
# pyproject.toml holds compatible ranges; constraints.txt the exact set installed here and in CI.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt torch==2.13.0
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev,cluster,decord,transnetv2]'
	# PP-OCRv4's ONNX models; without its GUI-OpenCV requirement (its real dependencies are in pyproject.toml).
	$(PY) -m pip install --quiet --no-deps -c constraints.txt rapidocr-onnxruntime==1.4.4
	touch $(STAMP)

demo: venv
	$(VENV)/bin/curate demo --workdir demo

# The report's browser check drives Debian's chromium: installed here when missing and we are root (CI); otherwise
# that check is skipped (and fails when CI is set). Its screenshot stays in artifacts/.
# Lint (pycodestyle, pyflakes, import order, bugbear; settings in pyproject.toml), then the tests.
lint: venv
	$(VENV)/bin/ruff check .

test: venv lint
	@command -v chromium >/dev/null || [ "$$(id -u)" != 0 ] || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)
	$(PY) -m pytest $(PYTEST_ARGS)

# Benchmarks need the ffmpeg CLI as the decode-only peer (installed from Debian's packages if missing).
bench: venv
	command -v ffmpeg >/dev/null || (apt-get update -qq && apt-get install -y -qq ffmpeg)
	$(PY) bench/analysis_bench.py
	$(PY) bench/throughput_bench.py
	$(PY) bench/scoring_bench.py
	$(PY) bench/filters_bench.py
	$(PY) bench/store_bench.py
	$(PY) bench/dedup_bench.py
	$(PY) bench/memory_bench.py
	$(PY) bench/caption_bench.py
	[ -d demo/dataset ] || $(VENV)/bin/curate demo --workdir demo
	$(PY) bench/train_bench.py --dataset demo/dataset

# Wheels for bench/gpu_check.sh on a lent GPU machine (Python 3.12, nothing fetchable there): what our analysis
# and encode code needs beyond the device image, at the versions in constraints.txt. Carry .whl (git-ignored).
GPU_WHEELS := av pydantic pydantic_core annotated-types typing-inspection typing_extensions scenedetect-headless \
	platformdirs
gpu-wheels:
	rm -rf .whl && mkdir -p .whl
	$(PYTHON) -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
		--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
		$(foreach w,$(GPU_WHEELS),$(shell grep -i '^$(w)==' constraints.txt))
	ls .whl

clean:
	rm -rf demo .pytest_cache
