"""Captions through Ray Data's LLM batch API (`ray.data.llm`): the vLLM path of large jobs
(`caption.vllm.batch_api: ray_data_llm`).

    caption prep ─▶ requests ─▶ vLLM engine stage ─▶ checks ─▶ retry requests ─▶ vLLM engine stage ─▶ checks ...
                   (CPU map)    (pool of min..max     (CPU     (failed rows     (a pool of its own,   (one pass
                                 replicas, TP by      map)      only)            the same engine)      per retry)
                                 placement groups)

Why Ray's stage and not our own actor (the `actor` path, curate/job/stages.py CaptionStage): vLLMEngineStage
drives vLLM's async engine and keeps `max_concurrent_batches` batches in flight on each replica, so continuous
batching spans batches and the engine does not wait while answers are checked or while the next batch is
built; replicas scale between `min_replicas` and `max_replicas`; tensor parallelism gets a placement group of
`tensor_parallel_size` bundles per replica.

Retries are passes of their own over the failed rows only, each with an engine pool of `retry_replicas`
replicas (failed rows are few; on a GPU cluster that is one replica's GPUs per retry pass, held for the job).
A row with nothing to generate (dropped, already passed, no frames) is marked with Ray Data LLM's
`__inference_error__` column, which every one of its stages passes through untouched (they skip such rows by
design), so a pass costs nothing for it; the mark is cleared right after. Each retry pass samples at
`retry_temperature` with a new seed, as the actor path does.

Not here: `caption.long_clips: windows` (a clip's windows would have to meet again after the engine, which
reorders rows); use the actor path for that.
"""

from __future__ import annotations

from functools import lru_cache

from curate.config import Config
from curate.job.stages import CaptionStage, Stage, prepared_frames, put_column
from curate.store.schema import CAPTION_FIELDS, SCENE_ROW

SKIP = "vidcurate: nothing to generate"  # the pass-through mark (see the module docstring)
_REQUEST = ("prompt", "multimodal_data", "mm_processor_kwargs", "sampling_params")
_ENGINE_OUT = ("generated_text", "generated_tokens", "num_generated_tokens", "num_input_tokens", "prompt_token_ids",
               "metrics", "embeddings", "logprobs", "prompt_logprobs", "request_id", "batch_uuid", "time_taken_llm",
               "params", "__inference_error__")


def processor_config(cfg: Config, model: str, *, retry: bool = False):
    """`vLLMEngineProcessorConfig` from the `caption` section and the caption resources; a retry pass's pool has
    `retry_replicas` replicas (failed rows are few)."""
    from ray.data.llm import vLLMEngineProcessorConfig

    from captioner.backends.vllm_backend import STRUCTURED_ENGINE

    c, v, res = cfg.caption, cfg.caption.vllm, cfg.resources.caption
    engine = dict(tensor_parallel_size=v.tensor_parallel_size, max_model_len=v.max_model_len,
                  gpu_memory_utilization=v.gpu_memory_utilization, max_num_seqs=v.max_num_seqs, dtype=v.dtype,
                  enforce_eager=v.enforce_eager, limit_mm_per_prompt={"video": 1, "image": 0},
                  mm_processor_kwargs={"max_pixels": c.max_pixels},
                  **({"structured_outputs_config": STRUCTURED_ENGINE} if c.structured else {}))
    has_gpu = _cluster_gpus() > 0
    return vLLMEngineProcessorConfig(
        model_source=model, engine_kwargs=engine, batch_size=res.batch_size or 32,
        concurrency=(v.retry_replicas, v.retry_replicas) if retry else (v.min_replicas, max(v.min_replicas,
                                                                                             v.max_replicas)),
        max_concurrent_batches=v.max_concurrent_batches, should_continue_on_error=True,
        chat_template_stage=False, tokenize_stage=False, detokenize_stage=False, prepare_multimodal_stage=False,
        # GPU nodes: Ray's default, one {GPU, CPU} bundle per tensor-parallel worker; CPU-only: CPU bundles
        placement_group_config=None if has_gpu else {"bundles": [{"CPU": 1}] * v.tensor_parallel_size})


def _check_cpus(cfg: Config) -> None:
    """On a CPU-only cluster (the vLLM CPU build), every pass's engine pool holds CPU bundles for the whole job:
    with too few CPUs the retry pools would wait forever instead of failing."""
    import ray

    v, c = cfg.caption.vllm, cfg.caption
    need = v.tensor_parallel_size * (v.max_replicas + c.max_retries * v.retry_replicas) + 1  # + one for the rest
    have = ray.cluster_resources().get("CPU", 0)
    if have < need:
        raise ValueError(f"caption.vllm.batch_api ray_data_llm needs {need:g} CPUs on this CPU-only cluster (one "
                         f"engine pool per pass: 1 + caption.max_retries) but it has {have:g}; lower "
                         "caption.max_retries, or use caption.vllm.batch_api: actor")


def _cluster_gpus() -> float:
    import ray

    return ray.cluster_resources().get("GPU", 0)


class BatchCaptionStep(Stage):
    """The caption step of the graph on this path: not a batch callable like the other stages but a transform
    of the whole dataset (`transform`), since Ray Data's processors are built over a dataset."""

    name = "caption"
    input_columns = (*CaptionStage.input_columns, "caption_status", "caption_error", "caption_attempts")
    output_columns = tuple(f.name for f in CAPTION_FIELDS)

    def __init__(self, cfg: Config):
        from captioner.backends import resolve_model

        self.cfg = cfg
        self.model, self.label = resolve_model(cfg.caption, cfg.profile)
        if _cluster_gpus() <= 0:
            if cfg.profile != "tiny":
                raise ValueError("caption.backend is vllm but the Ray cluster has no GPUs; use caption.backend "
                                 "transformers (CPU, small runs) or openai (a server elsewhere)")
            _check_cpus(cfg)

    def transform(self, ds):
        return caption_passes(ds, self.cfg, model=self.model, label=self.label, keep=self.keep_columns)


def caption_passes(ds, cfg: Config, *, model: str, label: str, keep: tuple[str, ...] | None = None):
    """`ds` (rows out of the caption prep stage) with the caption columns filled: a first pass, then one pass
    per retry over the rows whose caption failed; `keep`: the columns to keep after it (None: all)."""
    from ray.data.llm import build_processor

    c = cfg.caption
    if c.long_clips == "windows":
        raise ValueError("caption.long_clips: windows needs caption.vllm.batch_api: actor (windows of one clip "
                         "must meet again after the engine)")
    for attempt in range(1 + c.max_retries):
        requests = Requests(cfg, model, pass_params(c, attempt), retry=attempt > 0)
        checks = Checks(cfg, label)
        processor = build_processor(processor_config(cfg, model, retry=attempt > 0), preprocess=requests,
                                    postprocess=checks)
        last = attempt == c.max_retries
        ds = processor(ds).map_batches(clear_marks, fn_kwargs={"keep": keep if last else None},
                                       batch_format="pyarrow")
    return ds


def pass_params(c, attempt: int):
    """Generation settings of a pass: the actor path's rule (`GenerationParams.for_attempt`) over the `caption`
    section's settings."""
    from captioner import GenerationParams

    return GenerationParams(c.max_new_tokens, c.temperature, c.top_p).for_attempt(attempt, c.retry_temperature)


@lru_cache(maxsize=2)
def _tokenizer(model: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model)


class Requests:
    """Preprocess: a row's engine request (the vLLM backend's own, captioner/backends/vllm_backend.py), or the
    pass-through mark when it has nothing to generate in this pass."""

    def __init__(self, cfg: Config, model: str, params, *, retry: bool):
        from captioner import get_prompt

        self.c, self.model, self.params, self.retry = cfg.caption, model, params, retry
        self.prompt = get_prompt(self.c.prompt)

    def wanted(self, row: dict) -> bool:
        if row.get("clip_id") is None or not row.get("keep") or row.get("caption_frames") is None:
            return False
        return row.get("caption_status") == "failed" if self.retry else True

    def __call__(self, row: dict) -> dict:
        from captioner import CaptionRequest
        from captioner.backends.vllm_backend import engine_input, sampling_kwargs

        if not self.wanted(row):
            return {"__inference_error__": SKIP}
        request = CaptionRequest(row["clip_id"], prepared_frames(row), row["caption_frames_fps"], row["duration_s"])
        inputs = engine_input(_tokenizer(self.model), self.prompt, request)
        return {"prompt": inputs["prompt"], "multimodal_data": inputs["multi_modal_data"],
                "mm_processor_kwargs": inputs["mm_processor_kwargs"],
                "sampling_params": sampling_kwargs(self.prompt, self.params, self.c.structured,
                                                   self.c.max_field_chars)}


class Checks:
    """Postprocess: the answer through the caption checks, into the caption columns (as the actor path writes
    them: captioner.captioner.CaptionOutcome.columns)."""

    def __init__(self, cfg: Config, label: str):
        from captioner import get_prompt

        self.c, self.label = cfg.caption, label
        self.prompt = get_prompt(self.c.prompt)

    def __call__(self, row: dict) -> dict:
        from captioner.captioner import FAILED, OK, CaptionOutcome
        from captioner.checks import check_caption

        text = row.get("generated_text") or ""
        tokens = int(row.get("num_generated_tokens") or 0)
        finish = "length" if tokens >= self.c.max_new_tokens else "stop"  # (the engine stage took the params)
        check = check_caption(text, self.prompt.fields, finish_reason=finish, min_words=self.c.min_words)
        outcome = CaptionOutcome(row["clip_id"], OK if check.ok else FAILED, check.fields, check.reason,
                                 attempts=(row.get("caption_attempts") or 0) + 1,
                                 output_tokens=(row.get("caption_tokens") or 0) + tokens)
        kept = {k: v for k, v in row.items() if k not in _REQUEST and k not in _ENGINE_OUT}
        return {**kept, **outcome.columns(model=self.label, prompt_id=self.prompt.id)}


def clear_marks(batch, keep: tuple[str, ...] | None = None):
    """After a pass: rows that went through the engine come out as the checks wrote them; rows that bypassed it
    come out whole, request columns and mark included. The mark and request columns go; a real engine error
    (not our mark) becomes the row's caption failure, so the next pass retries it. Columns get SCENE_ROW's
    types back (the rows went through Python on the way), and only `keep` stay."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if "__inference_error__" in batch.column_names:
        err = pc.fill_null(batch.column("__inference_error__"), "")
        real = pc.and_(pc.not_equal(err, ""), pc.not_equal(err, SKIP)).to_numpy(zero_copy_only=False)
        if real.any():
            status = batch.column("caption_status").to_pylist() if "caption_status" in batch.column_names \
                else [None] * batch.num_rows
            errors = err.to_pylist()
            batch = _set(batch, "caption_status", pa.array(["failed" if r else s for r, s in zip(real, status)],
                                                           pa.string()))
            old = batch.column("caption_error").to_pylist() if "caption_error" in batch.column_names \
                else [None] * batch.num_rows
            batch = _set(batch, "caption_error", pa.array([f"vllm: {e}"[:300] if r else o
                                                           for r, e, o in zip(real, errors, old)], pa.string()))
    drop = [n for n in batch.column_names if n in _REQUEST or n in _ENGINE_OUT or (keep and n not in keep)]
    batch = batch.drop_columns(drop)
    for name in batch.column_names:
        if name in SCENE_ROW.names and batch.schema.field(name).type != SCENE_ROW.field(name).type:
            batch = put_column(batch, name, batch.column(name).cast(SCENE_ROW.field(name).type))
    return batch


def _set(table, name: str, values):
    return put_column(table, name, values.cast(SCENE_ROW.field(name).type))
