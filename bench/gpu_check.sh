#!/usr/bin/env bash
# bench/gpu_check.py on a lent GPU machine (the device tool's `run`, carrying .whl/ from `make gpu-wheels`).
# The device image has PyTorch, NumPy, OpenCV, PyArrow and PyYAML; PyAV (its FFmpeg has NVDEC and NVENC) and
# pydantic come as wheels. One pass each (--repeat 1) keeps the call to a few minutes; extra arguments pass on.
set -euo pipefail
cd "$(dirname "$0")/.."
ls .whl/*.whl >/dev/null 2>&1 || { echo "no wheels in .whl/: run 'make gpu-wheels' here and carry .whl" >&2; exit 2; }
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader || true
exec python3 bench/gpu_check.py --repeat 1 --out "${OUT:-bench/out/gpu}" "$@"
