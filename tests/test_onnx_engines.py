"""The learned scorers' engines (filters/onnx.py): OpenVINO gives ONNX Runtime's numbers on real footage, a shape
is compiled only once it is hot, and the choice table refuses what cannot run."""

from __future__ import annotations

import numpy as np
import pytest
from burnin import Overlay, burn

from curate.config import Config, load_config
from curate.job.analyze import analyze_source
from curate.job.stages import LazyFrames
from curate.video.sources import Source
from filters import onnx
from filters.ocr import OcrSettings, TextScorer
from filters.onnx import COLD_CALLS, ModelUnavailable, OpenVinoModel, choose_engine, package_file
from filters.safety import MODEL, SafetyScorer, SafetySettings

REAL = ["planets_labels_overlay.avi", "text_slide_timer.mp4", "force_static_cam.avi", "webcam_talking_mjpeg.avi"]


@pytest.fixture()
def always_compiled(monkeypatch):
    """OpenVINO runs every call (no cold calls on ONNX Runtime), so that the comparison compares engines."""
    monkeypatch.setattr(onnx, "COLD_CALLS", 0)
    onnx.model.cache_clear()
    yield
    onnx.model.cache_clear()


def _scenes(path) -> list[dict]:
    return [r for r in analyze_source(Source(str(path)), Config()) if r["clip_id"] is not None]


def test_openvino_reads_the_same_text_as_onnxruntime(testdata, tmp_path, always_compiled):
    """Real files with and without text, and a handle burned into a real shot: the same areas and boxes."""
    files = [testdata / "real" / n for n in REAL]
    files.append(burn(testdata / "real" / "coin_pen_static_cam.mov", tmp_path / "handle.mp4",
                      Overlay("handle", "tl", size=0.06, opacity=0.7, text="@dailyclips"), max_s=3.0))
    with_text = 0
    for path in files:
        for row in _scenes(path):
            out = {e: TextScorer(OcrSettings(engine=e))(LazyFrames(row["samples"]))
                   for e in ("onnxruntime", "openvino")}
            a, b = out["onnxruntime"], out["openvino"]
            assert a["text_area"] == pytest.approx(b["text_area"], abs=1e-4), path.name
            assert a["persistent_text_area"] == pytest.approx(b["persistent_text_area"], abs=1e-4), path.name
            assert np.allclose(a["text_boxes"] or np.zeros((0, 5)), b["text_boxes"] or np.zeros((0, 5)),
                               atol=2e-3), path.name
            with_text += bool(a["text_boxes"])
    assert with_text >= 3  # the comparison saw text, not only empty maps


def test_openvino_finds_the_same_face_as_onnxruntime(testdata, always_compiled):
    [row] = _scenes(testdata / "real" / "webcam_talking_mjpeg.avi")
    out = {e: SafetyScorer(SafetySettings(engine=e))(LazyFrames(row["keyframes"])) for e in ("onnxruntime", "openvino")}
    assert out["onnxruntime"]["nsfw_classes"] == out["openvino"]["nsfw_classes"]
    assert any(c.startswith("FACE_") for c in out["openvino"]["nsfw_classes"])
    assert out["onnxruntime"]["nsfw_score"] == pytest.approx(out["openvino"]["nsfw_score"], abs=1e-4)


def test_a_shape_is_compiled_once_it_is_hot():
    """A shape's first COLD_CALLS calls go to the cold engine; later ones to a model compiled for that shape,
    with the cold engine's numbers."""
    cold_calls = []
    path = str(package_file("nudenet", MODEL, install="pip install nudenet"))
    reference = onnx.session(path, "cpu", 1)

    def cold(x):
        cold_calls.append(x.shape)
        return reference.run(None, {reference.get_inputs()[0].name: x})

    ov = OpenVinoModel(path, 1, "f32", cold=cold)
    x = np.random.default_rng(0).random((1, 3, 224, 320), dtype=np.float32)
    outs = [ov(x) for _ in range(COLD_CALLS + 2)]
    assert len(cold_calls) == COLD_CALLS and list(ov.requests) == [x.shape]
    assert np.allclose(outs[0][0], outs[-1][0], atol=1e-3)
    ov(np.zeros((1, 3, 256, 320), np.float32))  # a new shape starts cold again
    assert len(cold_calls) == COLD_CALLS + 1 and len(ov.requests) == 1


@pytest.mark.parametrize("device,engine,precision,cpu_best,expected", [
    ("cpu", "auto", "f32", "openvino", "openvino"),
    ("auto", "auto", "f32", "openvino", "openvino"),  # no CUDA provider here
    ("cpu", "auto", "f32", "onnxruntime", "onnxruntime"),
    ("cpu", "onnxruntime", "f32", "openvino", "onnxruntime"),
    ("cpu", "openvino", "bf16", "onnxruntime", "openvino"),
    ("cpu", "onnxruntime", "bf16", "openvino", ValueError),  # bf16 is OpenVINO's
    ("cpu", "tensorrt", "f32", "openvino", ValueError),
    ("cuda", "auto", "f32", "openvino", ModelUnavailable),  # no CUDA provider on this machine
])
def test_engine_choice(device, engine, precision, cpu_best, expected):
    if isinstance(expected, str):
        assert choose_engine(device, engine, precision, cpu_best=cpu_best) == expected
    else:
        with pytest.raises(expected):
            choose_engine(device, engine, precision, cpu_best=cpu_best)


def test_config_carries_the_engine_to_the_scorers():
    from curate.job.stages import ScoreStage

    stage = ScoreStage(load_config(overrides={"scoring": {"ocr": {"engine": "onnxruntime"},
                                                          "safety": {"engine": "openvino", "precision": "bf16"}}}))
    assert (stage.ocr.engine, stage.ocr.precision) == ("onnxruntime", "f32")
    assert (stage.safety.engine, stage.safety.precision) == ("openvino", "bf16")
    with pytest.raises(ValueError, match="engine"):
        load_config(overrides={"scoring": {"ocr": {"engine": "tensorrt"}}})


def test_a_shape_openvino_cannot_compile_stays_on_onnxruntime_with_one_warning(monkeypatch, caplog):
    path = str(package_file("nudenet", MODEL, install="pip install nudenet"))
    cold = onnx.model(path, "cpu", 1, "onnxruntime")
    ov = OpenVinoModel(path, 1, "f32", cold=cold)

    def broken(*args, **kwargs):
        raise RuntimeError("no kernel for this CPU")

    monkeypatch.setattr(ov.core, "compile_model", broken)
    x = np.random.default_rng(1).random((1, 3, 160, 320), dtype=np.float32)
    with caplog.at_level("WARNING", logger="filters.onnx"):
        outs = [ov(x) for _ in range(COLD_CALLS + 3)]
    assert np.array_equal(outs[-1][0], cold(x)[0]) and not ov.requests
    assert [r.message for r in caplog.records].count(caplog.records[0].message) == 1
    assert "stay on ONNX Runtime" in caplog.records[0].message
    bf16 = OpenVinoModel(path, 1, "bf16")  # asked for by name, with nothing to fall back on: the error stands
    monkeypatch.setattr(bf16.core, "compile_model", broken)
    with pytest.raises(RuntimeError, match="no kernel"):
        bf16(x)


def test_auto_runs_on_onnxruntime_when_openvino_does_not_load(monkeypatch, caplog):
    def unloadable(*args, **kwargs):
        raise ImportError("libopenvino.so: cannot open shared object file")

    monkeypatch.setattr(onnx, "OpenVinoModel", unloadable)
    onnx.model.cache_clear()
    path = str(package_file("nudenet", MODEL, install="pip install nudenet"))
    try:
        with caplog.at_level("WARNING", logger="filters.onnx"):
            run = onnx.model(path, "cpu", 1, "auto")
        assert "running it on ONNX Runtime" in caplog.text
        x = np.zeros((1, 3, 160, 320), np.float32)
        assert np.array_equal(run(x)[0], onnx.model(path, "cpu", 1, "onnxruntime")(x)[0])
        with pytest.raises(ImportError):
            onnx.model(path, "cpu", 1, "openvino")  # named: no silent substitute
    finally:
        onnx.model.cache_clear()


@pytest.mark.parametrize("ocr,safety,gpus,cuda_provider,expected", [
    ({}, {}, 1, True, 0.25),  # a GPU cluster with onnxruntime-gpu: the score tasks take a quarter of a GPU
    ({}, {}, 0, True, 0.0),  # no GPU in the cluster
    ({}, {}, 1, False, 0.0),  # no CUDA provider: CPU (with a warning)
    ({"device": "cpu"}, {"device": "cpu"}, 1, True, 0.0),
    ({"engine": "openvino"}, {"engine": "openvino"}, 1, True, 0.0),  # OpenVINO runs on the CPU: no GPU held
    ({"engine": "openvino"}, {}, 1, True, 0.25),  # NSFW may still use it
])
def test_score_tasks_hold_a_gpu_only_for_a_scorer_that_can_use_it(ocr, safety, gpus, cuda_provider, expected,
                                                                   monkeypatch):
    import onnxruntime
    import ray

    from curate.job.pipeline import score_gpus

    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 2.0, "GPU": float(gpus)})
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if cuda_provider else ["CPUExecutionProvider"]
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: providers)
    cfg = load_config(overrides={"scoring": {"ocr": ocr, "safety": safety}})
    assert score_gpus(cfg) == expected
