"""Ray Data's LLM batch path for vLLM (curate/job/caption_batch.py): the pieces around the engine stage, run
for real here; the engine itself only where vLLM imports (bench/caption_batch_bench.py runs it end to end in
the CPU build's venv)."""

import json

import numpy as np
import pyarrow as pa
import pytest

from captioner.tiny import ensure_tiny_qwen
from curate.config import load_config
from curate.job.caption_batch import SKIP, Checks, Requests, clear_marks, pass_params, processor_config
from tests.captions import GOOD

GOOD_TEXT = json.dumps(GOOD)


@pytest.fixture(scope="module")
def cfg():
    return load_config(profile="tiny", overrides={"caption": {"backend": "vllm", "max_retries": 1,
                                                              "vllm": {"min_replicas": 1, "max_replicas": 3,
                                                                       "tensor_parallel_size": 2}}})


def scene(clip_id, **extra):
    frames = np.zeros((2, 28, 28, 3), np.uint8)
    return {"clip_id": clip_id, "keep": True, "caption_frames": frames.tobytes(),
            "caption_frames_shape": [2, 28, 28, 3],
            "caption_frames_fps": 2.0, "duration_s": 1.0, "caption_status": None, "caption_attempts": 0, **extra}


def test_the_engine_pool_follows_the_config(cfg, ray_session):
    config = processor_config(cfg, "/models/x")
    assert config.concurrency == (1, 3) and config.max_concurrent_batches == 8
    assert config.engine_kwargs["tensor_parallel_size"] == 2
    assert config.engine_kwargs["limit_mm_per_prompt"] == {"video": 1, "image": 0}
    # no GPU here: one CPU bundle per tensor-parallel worker instead of Ray's default GPU bundles
    assert [b["CPU"] for b in config.placement_group_config["bundles"]] == [1.0, 1.0]
    assert config.should_continue_on_error is True
    assert config.engine_kwargs["structured_outputs_config"]["disable_any_whitespace"] is True


def test_requests_go_to_the_engine_only_where_there_is_work(cfg):
    model = str(ensure_tiny_qwen())
    first = Requests(cfg, model, params=_params(cfg, 0), retry=False)
    req = first(scene("a"))
    assert "<|video_pad|>" in req["prompt"] and req["mm_processor_kwargs"] == {"do_sample_frames": False}
    frames, meta = req["multimodal_data"]["video"]
    assert frames.shape == (2, 28, 28, 3) and meta["fps"] == 2.0 and meta["total_num_frames"] == 2
    assert req["sampling_params"]["structured_outputs"]["json"]["required"][0] == "short_caption"
    assert first(scene("b", keep=False)) == {"__inference_error__": SKIP}
    assert first(scene("c", caption_frames=None)) == {"__inference_error__": SKIP}
    retry = Requests(cfg, model, params=_params(cfg, 1), retry=True)  # failed rows only
    assert retry(scene("d", caption_status="ok")) == {"__inference_error__": SKIP}
    assert retry(scene("e", caption_status="failed"))["sampling_params"]["temperature"] == cfg.caption.retry_temperature


def test_checks_write_the_caption_columns_as_the_actor_path_does(cfg):
    checks = Checks(cfg, "tiny (random weights)")
    ok = checks({**scene("a"), "prompt": "p", "generated_text": GOOD_TEXT,
                 "num_generated_tokens": 40, "time_taken_llm": 0.1})
    assert ok["caption_status"] == "ok" and ok["caption"] == GOOD["dense_caption"] and ok["caption_attempts"] == 1
    assert ok["caption_tokens"] == 40 and ok["caption_model"] == "tiny (random weights)"
    assert "prompt" not in ok and "generated_text" not in ok and ok["clip_id"] == "a"
    cut = checks({**scene("b", caption_attempts=1, caption_tokens=40), "generated_text": GOOD_TEXT[:50],
                  "num_generated_tokens": cfg.caption.max_new_tokens})
    assert cut["caption_status"] == "failed" and cut["caption_error"] == "truncated"
    assert (cut["caption_attempts"], cut["caption_tokens"]) == (2, 40 + cfg.caption.max_new_tokens)


def test_marks_are_cleared_and_engine_errors_become_failures():
    batch = pa.Table.from_pylist([
        {"clip_id": "skipped", "caption_status": None, "caption_error": None, "__inference_error__": SKIP,
         "prompt": None},
        {"clip_id": "broke", "caption_status": None, "caption_error": None,
         "__inference_error__": "ValueError: prompt too long", "prompt": "p"},
        {"clip_id": "fine", "caption_status": "ok", "caption_error": None, "__inference_error__": "", "prompt": None},
    ])
    out = clear_marks(batch).to_pylist()
    assert [set(r) for r in out] == [{"clip_id", "caption_status", "caption_error"}] * 3
    assert [r["caption_status"] for r in out] == [None, "failed", "ok"]
    assert out[1]["caption_error"] == "vllm: ValueError: prompt too long"
    assert clear_marks(batch, keep=("clip_id",)).column_names == ["clip_id"]


def _params(cfg, attempt):
    return pass_params(cfg.caption, attempt)


def test_windows_need_the_actor_path(cfg):
    import ray.data

    from curate.job.caption_batch import caption_passes

    windows = cfg.model_copy(deep=True)
    windows.caption.frame_rate, windows.caption.long_clips = 1.0, "windows"
    with pytest.raises(ValueError, match="batch_api: actor"):
        caption_passes(ray.data.from_items([{"x": 1}]), windows, model="m", label="m")


def test_too_few_cpus_for_the_retry_pools_is_a_clear_error(cfg, ray_session):
    """On a CPU-only cluster each pass's engine pool holds its CPUs for the whole job: a retry pool that could
    never be scheduled fails at once instead of hanging the job."""
    import ray

    from curate.job.caption_batch import BatchCaptionStep

    greedy = cfg.model_copy(deep=True)
    greedy.caption.max_retries = int(ray.cluster_resources()["CPU"])  # one pool more than the CPUs
    with pytest.raises(ValueError, match="CPUs on this CPU-only cluster"):
        BatchCaptionStep(greedy)
    fits = cfg.model_copy(deep=True)
    fits.caption.max_retries, fits.caption.vllm.tensor_parallel_size, fits.caption.vllm.max_replicas = 0, 1, 1
    step = BatchCaptionStep(fits)  # 2 CPUs: one engine pool and the rest
    assert step.model == str(ensure_tiny_qwen()) and "random weights" in step.label
