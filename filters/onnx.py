"""The runtime for the learned scorers whose weights ship inside their wheels (OCR text detection, NSFW).

One place decides the engine and its device, the thread count, and the error a user sees when a model package is
missing. Models are cached per process: a Ray worker loads each once, however many tasks it runs.

Engines (`scoring.ocr.engine`, `scoring.safety.engine`):
    onnxruntime  ONNX Runtime: its CUDA provider where the scorer runs on a GPU, else its CPU provider.
    openvino     OpenVINO's CPU plugin, which reads the same ONNX files. It runs the PP-OCRv4 text detector 1.8x as
                 fast as ONNX Runtime's CPU provider at float32, with the same maps (within 6e-5 on real frames),
                 but it compiles a model for each input shape (0.15-0.3 s): a shape's first COLD_CALLS calls go to
                 ONNX Runtime, and only a shape seen more often is compiled, so a corpus of many sizes and few
                 scenes each pays no compile it cannot earn back. NudeNet's detector is no faster on it at f32.
                 It adds about 120 MiB to a worker's memory.
    auto         onnxruntime on CUDA; on CPU, each scorer's measured best (OCR: openvino where installed; NSFW:
                 onnxruntime).
`precision` (openvino only): `f32` (default: the same numbers as ONNX Runtime) or `bf16` (AMX / AVX512-BF16
CPUs: the text detector about 1.9x and NudeNet 2.3x faster again, and detections at the margin move: measured in
BENCHMARKS.md). OpenVINO picks bf16 by itself on such CPUs when not told, so f32 is always asked for explicitly.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

CPU, CUDA = "CPUExecutionProvider", "CUDAExecutionProvider"
ENGINES = ("auto", "onnxruntime", "openvino")
PRECISIONS = ("f32", "bf16")
SHAPES_KEPT = 8  # compiled models kept per OpenVINO model (one per input shape)
COLD_CALLS = 8  # a shape's calls run on ONNX Runtime before OpenVINO compiles it (a compile costs ~10 calls' gain)


@dataclass(frozen=True)
class RuntimeSettings:
    """Where a learned scorer's model runs and how (the config's `device`, `engine`, `precision`; `threads` from
    the score stage's CPUs). The scorers' own settings extend it."""

    device: str = "auto"  # auto | cpu | cuda
    threads: int = 1
    engine: str = "auto"  # auto | onnxruntime | openvino
    precision: str = "f32"  # f32 | bf16 (openvino only)


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


def choose_engine(device: str, engine: str = "auto", precision: str = "f32", *, cpu_best: str = "openvino") -> str:
    """The engine a scorer runs on (see the module docstring; `cpu_best` is what `auto` takes on CPU for this
    model); ModelUnavailable or ValueError when the asked one cannot run here or with these settings."""
    if engine not in ENGINES or precision not in PRECISIONS:
        raise ValueError(f"engine must be one of {ENGINES} and precision one of {PRECISIONS}, "
                         f"not {engine!r} / {precision!r}")
    cuda = use_cuda(device)
    has_openvino = importlib.util.find_spec("openvino") is not None
    if engine == "auto":
        engine = "openvino" if cpu_best == "openvino" and has_openvino and not cuda else "onnxruntime"
    if engine == "openvino":
        if device == "cuda":
            raise ValueError("engine openvino runs on the CPU: use engine onnxruntime (or auto) with device cuda")
        if not has_openvino:
            raise ModelUnavailable("engine is openvino but OpenVINO is not installed (`pip install openvino`, "
                                   "`make venv` does)")
    elif precision != "f32":
        raise ValueError(f"precision {precision} needs engine openvino (ONNX Runtime runs these models in f32)")
    return engine


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


@lru_cache(maxsize=8)
def model(path: str, device: str = "auto", threads: int = 1, engine: str = "auto", precision: str = "f32", *,
          cpu_best: str = "openvino") -> Callable[[np.ndarray], list[np.ndarray]]:
    """A single-input ONNX model on its engine, as `model(x) -> [outputs]`, built once per process."""
    chosen = choose_engine(device, engine, precision, cpu_best=cpu_best)
    if chosen == "onnxruntime":
        run = _onnxruntime(path, device, threads)
    else:  # at f32 a shape's first calls go to ONNX Runtime (the same numbers); bf16 was asked for: every call
        cold = _onnxruntime(path, device, threads) if precision == "f32" else None
        try:
            run = OpenVinoModel(path, threads, precision, cold=cold)
        except (ImportError, RuntimeError) as e:
            if engine != "auto" or cold is None:
                raise
            log.warning("%s: OpenVINO could not load it (%s); running it on ONNX Runtime", Path(path).name, e)
            run, chosen = cold, "onnxruntime"
    log.info("%s: %s%s", Path(path).name, chosen, f" ({precision})" if chosen == "openvino" else "")
    return run


def _onnxruntime(path: str, device: str, threads: int) -> Callable[[np.ndarray], list[np.ndarray]]:
    sess = session(path, device, threads)
    name = sess.get_inputs()[0].name
    return lambda x: sess.run(None, {name: x})


class OpenVinoModel:
    """An ONNX file on OpenVINO's CPU plugin, compiled for each input shape once that shape has had `cold`'s
    COLD_CALLS calls (static shapes run faster than one dynamic-shape model: 23 against 32 ms for the text
    detector at 448x352); the last SHAPES_KEPT compiled shapes are kept."""

    def __init__(self, path: str, threads: int, precision: str, cold: Callable | None = None):
        import openvino as ov

        self.core = ov.Core()
        self.model = self.core.read_model(path)
        # No pinning: a Ray worker shares its node's cores with others, and pinned threads would fight over them.
        self.config = {"INFERENCE_NUM_THREADS": max(1, threads), "INFERENCE_PRECISION_HINT": precision,
                       "PERFORMANCE_HINT": "LATENCY", "ENABLE_CPU_PINNING": False}
        self.requests: OrderedDict[tuple, object] = OrderedDict()
        self.cold, self.calls, self.failed = cold, Counter(), set()

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        request = self.requests.get(x.shape)
        if request is None:
            self.calls[x.shape] += 1
            cold = self.cold is not None and (self.calls[x.shape] <= COLD_CALLS or x.shape in self.failed)
            request = None if cold else self._compile(x.shape)
            if request is None:
                return self.cold(x)
            self.requests[x.shape] = request
            while len(self.requests) > SHAPES_KEPT:
                self.requests.popitem(last=False)
        self.requests.move_to_end(x.shape)
        outputs = request.infer({0: np.ascontiguousarray(x, np.float32)})
        return [np.array(outputs[i]) for i in range(len(outputs))]

    def _compile(self, shape: tuple):
        """An infer request for a model compiled for `shape`; None when it cannot be compiled and a cold engine
        can run the shape instead (the reason is logged once; the shape stays on the cold engine)."""
        static = self.model.clone()
        static.reshape(list(shape))
        try:
            return self.core.compile_model(static, "CPU", self.config).create_infer_request()
        except RuntimeError as e:
            if self.cold is None:
                raise
            if not self.failed:
                log.warning("OpenVINO could not compile a model for input %s (%s); such shapes stay on ONNX Runtime",
                            shape, e)
            self.failed.add(shape)
            return None
