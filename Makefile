# The two commands: `make demo` and `make test`. Each builds .venv first if needed (torch pinned first).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv demo test lint bench clean

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

clean:
	rm -rf demo .pytest_cache
