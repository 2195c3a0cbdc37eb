"""The caption backends with a tiny random Qwen2.5-VL built here: transformers in-process, and the OpenAI
backend against a real local server process (`python -m captioner.serve`, i.e. `transformers serve`).

Random weights give random text, so these test the plumbing (batching, video inputs, token counts, retries,
status recording, errors), not the wording.
"""

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from captions import GOOD, dump

from captioner import Captioner, CaptionRequest, GenerationParams, get_prompt
from captioner.backends import CaptionSetupError, make_backend
from captioner.backends.base import CaptionBackend, Generation
from captioner.frames import clip_frames, pick_sample_indices
from captioner.tiny import ensure_tiny_qwen
from curate.config import load_config

PROMPT = get_prompt("dense-v1")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return ensure_tiny_qwen(tmp_path_factory.mktemp("tiny") / "qwen")


def _requests(n, seed=0):
    rng = np.random.default_rng(seed)
    return [CaptionRequest(f"clip{i}", rng.integers(0, 255, (4 + 2 * (i % 2), 90 + 10 * i, 160, 3), np.uint8), 4.0,
                           2.0) for i in range(n)]


def test_tiny_model_is_built_deterministically(tiny_model, tmp_path):
    again = ensure_tiny_qwen(tmp_path / "again")
    for name in ("config.json", "tokenizer.json", "chat_template.jinja"):
        assert (tiny_model / name).read_text() == (again / name).read_text()
    assert ensure_tiny_qwen(tiny_model) == tiny_model  # cached: not rebuilt


def test_transformers_backend_batches_videos(tiny_model):
    cfg = load_config(profile="tiny").caption
    cfg.model = str(tiny_model)
    backend = make_backend(cfg, "default")  # the default profile, pointed at the tiny directory
    backend.setup()
    gens = backend.generate(_requests(3), PROMPT, GenerationParams(max_new_tokens=12))
    assert len(gens) == 3
    for g in gens:
        assert g.error is None and g.prompt_tokens > 50  # system + video tokens + question
        assert 1 <= g.output_tokens <= 12
        assert g.finish_reason in ("stop", "length")
    # Greedy decoding is deterministic, and a batch answers as its members do alone.
    alone = backend.generate(_requests(3)[1:2], PROMPT, GenerationParams(max_new_tokens=12))
    assert alone[0].text == gens[1].text


class ScriptedBackend(CaptionBackend):
    """A backend whose answers are given per attempt: drives the retry logic deterministically."""

    name = "scripted"

    def __init__(self, answers):
        super().__init__("scripted")
        self.answers, self.calls = answers, []

    def generate(self, requests, prompt, params):
        self.calls.append((len(requests), params.temperature))
        for r in requests:  # an engine error fails the whole call before any answer is consumed
            if self.answers[r.clip_id][:1] == ["RAISE"]:
                self.answers[r.clip_id].pop(0)
                raise RuntimeError("engine fell over")
        out = []
        for r in requests:
            script = self.answers[r.clip_id]
            text = script.pop(0) if script else ""
            out.append(Generation(text=text, finish_reason="stop", output_tokens=len(text.split())))
        return out


def test_retries_then_records_failure():
    good = dump(GOOD)
    backend = ScriptedBackend({"a": [good], "b": ["not json", good], "c": ["I'm sorry, I can't.", "{", "nope"],
                               "d": ["RAISE", good]})
    cap = Captioner(backend, PROMPT, GenerationParams(64), max_retries=2, retry_temperature=0.9)
    reqs = [CaptionRequest(k, np.zeros((2, 28, 28, 3), np.uint8), 2.0, 1.0) for k in "abcd"]
    out = {o.clip_id: o for o in cap(reqs)}
    assert (out["a"].status, out["a"].attempts) == ("ok", 1)
    assert (out["b"].status, out["b"].attempts) == ("ok", 2)
    assert (out["c"].status, out["c"].attempts, out["c"].error) == ("failed", 3, "malformed_json")
    assert out["d"].status == "ok" and out["d"].attempts == 1  # the batch raised: each clip was tried alone
    cols = out["b"].columns(model="m", prompt_id=PROMPT.id)
    assert cols["caption"] == GOOD["dense_caption"] and cols["caption_status"] == "ok"
    assert cols["prompt_id"] == "dense-v1"
    assert out["c"].columns(model="m", prompt_id="p")["caption"] is None
    # First attempt greedy on all four; retries at the retry temperature on the failures only.
    assert backend.calls[0] == (4, 0.0)
    assert all(t == 0.9 for _, t in backend.calls[1:] if _ > 1)


@pytest.mark.parametrize("prompt_id", ["dense-v1", "short-v1"])
def test_the_schema_has_every_field_and_the_tiny_answer_fits_its_budget(prompt_id):
    """Every field required, nothing else allowed; under `tiny` the longest answer the schema allows fits the
    token budget even at one character a token, so a random model cannot be cut off mid-answer."""
    from captioner.prompts import get_prompt
    from captioner.schema import caption_schema, fits_budget

    prompt, cfg = get_prompt(prompt_id), load_config(profile="tiny").caption
    schema = caption_schema(prompt, cfg.max_field_chars)
    assert schema["required"] == list(prompt.fields) and schema["additionalProperties"] is False
    assert all(p["type"] == "string" and p["minLength"] == 1 for p in schema["properties"].values())
    assert schema["properties"]["dense_caption"]["maxLength"] == 3 * cfg.max_field_chars
    assert fits_budget(prompt, cfg.max_field_chars, cfg.max_new_tokens)
    assert not fits_budget(prompt, None, load_config().caption.max_new_tokens)  # real models close on their own


def test_tiny_random_model_answers_schema_valid_json(tiny_model):
    """With the prompt's schema enforced while decoding (llguidance), even random weights give JSON with every
    field; without it, random tokens never parse."""

    from captioner.checks import MALFORMED, MISSING, TRUNCATED

    cfg = load_config(profile="tiny").caption
    cfg.model = str(tiny_model)
    backend = make_backend(cfg, "default")
    backend.setup()
    out = Captioner(backend, PROMPT, GenerationParams(cfg.max_new_tokens), max_retries=1)(_requests(3))
    for o in out:
        assert o.error is None or not o.error.startswith((MALFORMED, MISSING, TRUNCATED)), o.error
        assert set(o.fields) == set(PROMPT.fields) and all(o.fields.values())
        cols = o.columns(model="m", prompt_id=PROMPT.id)
        assert set(json.loads(cols["caption_json"])) == set(PROMPT.fields)
        assert (cols["caption"] is None) == (o.status == "failed")
    cfg.structured = False
    free = make_backend(cfg, "default")
    free.setup()
    for o in Captioner(free, PROMPT, GenerationParams(16), max_retries=1)(_requests(2)):
        assert o.status == "failed" and o.attempts == 2 and o.error in (TRUNCATED, MALFORMED, "empty")
        assert o.output_tokens > 0


def test_frames_from_samples():
    import cv2

    assert pick_sample_indices([0.0, 0.25, 0.5, 0.75, 1.0], frames=3) == [0, 2, 4]
    assert pick_sample_indices([0.0, 0.25, 0.5, 0.75, 1.0], frames=8, rate=2.0) == [0, 2, 4]
    assert pick_sample_indices([i * 0.25 for i in range(100)], frames=4, rate=2.0) == [0, 32, 66, 98]
    samples = [cv2.imencode(".jpg", np.full((252, 448, 3), v, np.uint8))[1].tobytes() for v in range(0, 250, 25)]
    frames, windows, fps, sampling = clip_frames(samples, [i * 0.25 for i in range(10)], frames=4, rate=None,
                                                 max_pixels=112 * 112, sample_fps=4.0)
    assert frames.shape[0] == 4 and frames.shape[3] == 3 and frames.shape[1] * frames.shape[2] <= 112 * 112
    assert abs(frames.shape[2] / frames.shape[1] - 448 / 252) < 0.05
    assert fps == pytest.approx(3 / 2.25) and windows == [4]
    assert sampling == {"mode": "uniform", "frames": 4, "windows": 1, "fps": pytest.approx(3 / 2.25, abs=1e-3)}


@pytest.mark.parametrize("n, long_clips, mode, windows", [
    (10, "sample", "rate", [[0, 4, 8]]),  # 2.5 s at 1 fps: 3 frames, within the budget of 4
    (40, "sample", "subsampled", [[0, 12, 24, 36]]),  # 10 s at 1 fps needs 10: 4 of those, spread
    (40, "windows", "windows", [[0, 4, 8, 12], [16, 20, 24, 28], [32, 36]]),  # 10 s: windows of 4 at 1 fps
    (10, "windows", "rate", [[0, 4, 8]]),  # within the budget: one window
])
def test_clips_over_the_frame_budget_are_subsampled_or_cut_into_windows(n, long_clips, mode, windows):
    from captioner.frames import plan_windows

    times = [i * 0.25 for i in range(n)]
    got, sampling = plan_windows(times, frames=4, rate=1.0, long_clips=long_clips)
    assert got == windows and all(len(w) <= 4 for w in got)
    assert sampling == {"mode": mode, "frames": sum(map(len, windows)), "windows": len(windows)}


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def caption_server(tiny_model):
    """`python -m captioner.serve` (transformers serve) on loopback, serving the tiny model."""
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "captioner.serve", str(tiny_model), "--host", "127.0.0.1",
                             "--port", str(port), "--device", "cpu"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"caption server exited: {proc.stderr.read()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.5)
    yield f"http://127.0.0.1:{port}/v1"
    proc.terminate()
    proc.wait(timeout=30)


def test_openai_backend_against_local_server(caption_server, tiny_model):
    cfg = load_config(profile="tiny", overrides={"caption": {"backend": "openai", "model": str(tiny_model),
                                                             "openai": {"base_url": caption_server,
                                                                        "concurrency": 2}}}).caption
    backend = make_backend(cfg, "tiny")
    backend.setup()
    gens = backend.generate(_requests(3), PROMPT, GenerationParams(max_new_tokens=10))
    assert [g.error for g in gens] == [None] * 3
    assert all(1 <= g.output_tokens <= 10 and g.prompt_tokens > 20 for g in gens)
    # `transformers serve` accepts response_format but ignores it (it logs "Ignoring unsupported fields"), so the
    # tiny model's random text comes back unconstrained: recorded as failed, the clip kept. vLLM's server
    # honours the schema; no GPU here to run it.
    out = Captioner(backend, PROMPT, GenerationParams(10), max_retries=1)(_requests(2))
    assert all(o.status == "failed" and o.attempts == 2 for o in out)
    # the rewrite pass's text requests (no frames) go through the same client
    text = [CaptionRequest(f"t{i}", None, text="short caption: a cyclist crosses a square") for i in range(2)]
    gens = backend.generate(text, get_prompt("rewrite-v1", input="text"), GenerationParams(max_new_tokens=8))
    assert [g.error for g in gens] == [None] * 2 and all(1 <= g.output_tokens <= 8 for g in gens)


def test_openai_backend_server_down_is_one_clear_error():
    cfg = load_config(overrides={"caption": {"backend": "openai", "model": "m",
                                             "openai": {"base_url": f"http://127.0.0.1:{_free_port()}/v1",
                                                        "max_retries": 0, "timeout_s": 2}}}).caption
    with pytest.raises(CaptionSetupError, match="not reachable.*vllm serve"):
        make_backend(cfg, "default").setup()


def test_missing_model_is_a_clear_error(tmp_path):
    from captioner.backends import preflight

    cfg = load_config().caption  # the default: Qwen/Qwen2.5-VL-7B-Instruct, not downloadable here
    with pytest.raises(CaptionSetupError, match="cannot be downloaded.*caption.model"):
        preflight(cfg, "default")
    cfg.model = str(tmp_path / "nowhere")
    with pytest.raises(CaptionSetupError, match="not a model directory"):
        preflight(cfg, "default")


def test_vllm_backend_where_vllm_runs(tiny_model):
    pytest.importorskip("vllm", reason="vLLM is not installed in this environment (GPU machines: extra `vllm`)")
    engine = {"max_model_len": 4096, "gpu_memory_utilization": 0.2, "enforce_eager": True}
    cfg = load_config(profile="tiny", overrides={"caption": {"backend": "vllm", "model": str(tiny_model),
                                                             "vllm": engine}}).caption
    backend = make_backend(cfg, "default")
    backend.setup()
    gens = backend.generate(_requests(3), PROMPT, GenerationParams(max_new_tokens=10))
    assert all(g.error is None and 1 <= g.output_tokens <= 10 for g in gens)


def test_window_captions_merge_into_one():
    from captioner.captioner import CaptionOutcome
    from captioner.windows import merge_windows, windows_json

    first = {**GOOD, "dense_caption": "A cyclist rides in.", "camera_motion": "static"}
    second = {**GOOD, "dense_caption": "She stops at the kerb.", "camera_motion": "pan left"}
    ok = [CaptionOutcome("c#window1", "ok", first, attempts=1, output_tokens=30),
          CaptionOutcome("c#window2", "ok", second, attempts=2, output_tokens=40)]
    merged = merge_windows("c", ok)
    assert merged.status == "ok" and merged.clip_id == "c"
    assert merged.fields["dense_caption"] == "A cyclist rides in. She stops at the kerb."
    assert merged.fields["camera_motion"] == "mixed" and merged.fields["short_caption"] == first["short_caption"]
    assert (merged.attempts, merged.output_tokens) == (2, 70)
    bad = [ok[0], CaptionOutcome("c#window2", "failed", second, error="repetitive", attempts=3)]
    merged = merge_windows("c", bad)
    assert merged.status == "failed" and merged.error == "window 2/2: repetitive"
    assert merged.columns(model="m", prompt_id="p")["caption"] is None  # a failed caption has no text
    record = json.loads(windows_json(bad, [[0.0, 8.0], [8.0, 12.5]]))
    assert [w["span_s"] for w in record] == [[0.0, 8.0], [8.0, 12.5]] and record[1]["error"] == "repetitive"
    assert windows_json(ok[:1], [[0.0, 4.0]]) is None


def test_long_clips_are_captioned_in_windows_by_the_real_stages(testdata):
    """Prep and caption stages with the tiny model: a scene longer than 2 frames at 1 fps is captioned as
    windows of 2 frames, its caption merged from theirs, every window's answer kept, the choice recorded."""
    import pyarrow as pa

    from curate.job.analyze import analyze_source
    from curate.job.stages import CaptionPrepStage, CaptionStage
    from curate.store.schema import SCENE_ROW
    from curate.video.sources import Source

    cfg = load_config(profile="tiny", overrides={"caption": {"frames": 2, "frame_rate": 1.0,
                                                             "long_clips": "windows", "max_retries": 0}})
    scenes = [dict(r, keep=True) for r in analyze_source(Source(str(testdata / "videos" / "bigbuckbunny.mp4")), cfg)]
    scenes = [r for r in scenes if r["duration_s"] > 2.5]  # one shot of 5.3 s
    assert scenes
    table = pa.Table.from_pylist(scenes, schema=SCENE_ROW)
    out = CaptionStage(cfg)(CaptionPrepStage(cfg)(table)).to_pylist()
    for row in out:
        sampling = json.loads(row["caption_sampling"])
        assert sampling["mode"] == "windows" and sampling["windows"] == len(row["caption_frames_windows"]) >= 2
        assert max(row["caption_frames_windows"]) <= 2 and len(sampling["spans_s"]) == sampling["windows"]
        windows = json.loads(row["caption_windows"])
        assert len(windows) == sampling["windows"]
        assert all(set(w["fields"]) == set(PROMPT.fields) for w in windows)  # each window: a schema-valid answer
        answer = json.loads(row["caption_json"])
        assert answer["dense_caption"] == " ".join(w["fields"]["dense_caption"].strip() for w in windows)
        assert (row["caption_status"] == "ok") == all(w["status"] == "ok" for w in windows)
