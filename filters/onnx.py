"""ONNX Runtime for the learned scorers whose weights ship inside their wheels (OCR text detection, NSFW).

One place decides the execution provider (CUDA when asked or available, else CPU), the thread count, and the
error a user sees when a model package is missing. Sessions are cached per process: a Ray worker loads each
model once, however many tasks it runs.
"""

from __future__ import annotations

import importlib
import logging
import os
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

CPU, CUDA = "CPUExecutionProvider", "CUDAExecutionProvider"


class ModelUnavailable(FileNotFoundError):
    """A learned scorer's package or weight file is missing; the message says how to get it."""


def package_file(package: str, relative: str, *, install: str) -> Path:
    """A file shipped inside an installed package, or ModelUnavailable naming the install command."""
    try:
        module = importlib.import_module(package)
    except ImportError as e:
        raise ModelUnavailable(f"{package} is not installed ({e}); install it with `{install}` "
                               f"(`make venv` does)") from None
    path = Path(module.__file__).parent / relative
    if not path.is_file():
        raise ModelUnavailable(f"weight file {path} is missing from {package}; reinstall it with `{install}`")
    return path


def use_cuda(device: str) -> bool:
    """Whether to run on CUDA: `cuda` requires it, `auto` takes it when ONNX Runtime has it and a GPU is visible."""
    import onnxruntime as ort

    has = CUDA in ort.get_available_providers() and os.environ.get("CUDA_VISIBLE_DEVICES", "0") not in ("", "-1")
    if device == "cuda" and not has:
        raise ModelUnavailable("device is cuda but ONNX Runtime has no CUDA provider here (install onnxruntime-gpu "
                               f"in place of onnxruntime; available: {', '.join(ort.get_available_providers())})")
    return device != "cpu" and has


@lru_cache(maxsize=8)
def session(path: str, device: str, threads: int):
    """An ONNX Runtime session for `path` on `device` (auto | cpu | cuda) with `threads` intra-op threads."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, threads)
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    providers = [CUDA, CPU] if use_cuda(device) else [CPU]
    sess = ort.InferenceSession(path, sess_options=opts, providers=providers)
    if providers[0] == CUDA and sess.get_providers()[0] != CUDA:
        log.warning("%s: the CUDA provider failed to start; running on CPU", Path(path).name)
    return sess
