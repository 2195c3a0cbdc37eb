"""The one place where stages meet Ray Data: the graph, each stage's resources, and the driver's commit loop.

    sources ─▶ analyze ─▶ score ─▶ aesthetic ─▶ policy ─▶ caption prep ─▶ caption ─▶ [rewrite] ─▶ caption align
               (one decode; CPU scorers      (actor pool,           (CPU tasks:    (actor    (actor     (actor pool:
                fused in the same task)       GPU if any)            frames from   pool,     pool, a    CLIP's text
                                                                     the samples)  GPU)      text LLM)  tower)
            ─▶ policy ─▶ encode ─▶ write ─▶ commit
               (the caption   (kept     (fragments;
                rule applies)  only)     the driver commits)

Execution streams: Ray Data pulls sources as workers free up and applies backpressure between stages, so
memory stays bounded by the blocks in flight, not by the corpus. Only small fragment descriptions and
per-video progress reach the driver; clip bytes go from the encode workers straight to storage.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from curate.config import Config, StageResources
from curate.job.stages import (
    COUNTERS,
    AestheticStage,
    AnalyzeStage,
    CaptionAlignStage,
    CaptionPrepStage,
    CaptionStage,
    EncodeStage,
    PolicyStage,
    RewriteStage,
    ScoreStage,
    Stage,
    WriteStage,
    new_progress,
    video_record,
)
from curate.store.lance_store import LanceStore
from curate.video.sources import Source

log = logging.getLogger(__name__)


@dataclass
class Step:
    """One stage of the graph with its resources: a stage instance runs as Ray tasks; a stage class runs as an
    actor pool, built once per actor with the `init` keyword arguments (a model loads once per actor)."""

    stage: Stage | type[Stage]
    res: StageResources
    init: dict | None = None
    num_gpus: float | None = None  # actor pools: as worked out for the backend (tasks: `res.num_gpus`)
    cpu_scale: float = 1.0


def live_columns(steps: list[Step]) -> list[tuple[str, ...] | None]:
    """For each step, the columns some later step reads (None for the last: its output is the result). A
    column leaves the rows as soon as its last reader is done: the scenes' JPEG samples after captioning's
    frame preparation, for example, instead of riding along to the write."""
    later: set[str] = set()
    keeps: list[tuple[str, ...] | None] = []
    for step in reversed(steps):
        keeps.append(tuple(sorted(later)) if keeps else None)
        later |= set(step.stage.input_columns)
    return keeps[::-1]


def wire(ds, steps: list[Step]):
    """Applies `steps` in order, each stage keeping only the columns a later one reads."""
    for step, keep in zip(steps, live_columns(steps)):
        if hasattr(step.stage, "transform"):  # a whole-dataset step (caption_batch.BatchCaptionStep)
            step.stage.keep_columns = keep
            ds = step.stage.transform(ds)
        elif step.init is None:
            step.stage.keep_columns = keep
            ds = _map(ds, step.stage, step.res)
        else:
            ds = _map_actors(ds, step.stage, step.res, fn_constructor_kwargs={**step.init, "keep_columns": keep},
                             num_gpus=step.num_gpus or 0.0, cpu_scale=step.cpu_scale)
        log.debug("stage %s keeps %s", step.stage.name, "every column" if keep is None else ", ".join(keep))
    return ds


def _resource_args(res: StageResources) -> dict:
    args = dict(batch_size=res.batch_size, batch_format="pyarrow", num_cpus=res.num_cpus)
    if res.memory_gb:
        args["memory"] = int(res.memory_gb * 2**30)
    return args


def _map(ds, stage, res: StageResources):
    """Applies a stateless stage as Ray tasks with its configured resources."""
    import ray.data

    kwargs = dict(_resource_args(res), max_retries=res.max_retries)
    if res.num_gpus:
        kwargs["num_gpus"] = res.num_gpus
    if res.concurrency:
        kwargs["compute"] = ray.data.TaskPoolStrategy(size=res.concurrency)
    return ds.map_batches(stage, **kwargs)


def _map_actors(ds, stage_cls, res: StageResources, *, fn_constructor_kwargs: dict, num_gpus: float,
                cpu_scale: float = 1.0):
    """Applies a model stage as an actor pool: the model loads once per actor, in the constructor."""
    import ray.data

    kwargs = dict(**_resource_args(res), compute=ray.data.ActorPoolStrategy(size=res.concurrency or 1),
                  fn_constructor_kwargs=fn_constructor_kwargs, max_restarts=res.max_retries,
                  max_task_retries=res.max_retries)
    kwargs["num_cpus"] = res.num_cpus * cpu_scale
    if num_gpus:
        kwargs["num_gpus"] = num_gpus
    return ds.map_batches(stage_cls, **kwargs)


def actor_cpu_scale(cfg: Config, pools: list[StageResources]) -> float:
    """Scales the model actors' CPU reservations down when, on a small machine, the actor `pools` would leave
    less than one task's CPUs: actors hold their CPUs for the whole job, so analysis would never be scheduled."""
    import ray

    r = cfg.resources
    reserved = sum(p.num_cpus * (p.concurrency or 1) for p in pools)
    free = ray.cluster_resources().get("CPU", 1.0) - max(r.analyze.num_cpus, r.encode.num_cpus)
    if reserved <= free or reserved == 0:
        return 1.0
    scale = max(free, 0.1) / reserved
    log.warning("model actors would reserve %.1f of %.1f CPUs; scaling their reservations by %.2f so the "
                "analysis tasks can run", reserved, ray.cluster_resources().get("CPU", 0), scale)
    return scale


def aesthetic_gpus(cfg: Config) -> float:
    """GPUs per aesthetic actor: as configured, else one when `device: auto` finds GPUs in the cluster."""
    import ray

    a = cfg.scoring.aesthetic
    if cfg.resources.aesthetic.num_gpus or a.device == "cpu":
        return cfg.resources.aesthetic.num_gpus
    has_gpu = ray.cluster_resources().get("GPU", 0) > 0
    if a.device == "cuda" and not has_gpu:
        raise ValueError("scoring.aesthetic.device is cuda but the Ray cluster has no GPUs")
    return 1.0 if has_gpu else 0.0


def score_gpus(cfg: Config) -> float:
    """GPUs per score task: as configured, else a quarter of one when the cluster has GPUs, the OCR or NSFW
    scorer may use them (`device: auto | cuda`, on an engine that can: not `openvino`, which runs on the CPU) and
    ONNX Runtime here has its CUDA provider (onnxruntime-gpu)."""
    import ray

    from filters.onnx import CUDA

    if cfg.resources.score.num_gpus:
        return cfg.resources.score.num_gpus
    s = cfg.scoring
    learned = [m.device for m in (s.ocr, s.safety) if m.enabled and m.engine != "openvino"]
    if not learned or all(d == "cpu" for d in learned) or ray.cluster_resources().get("GPU", 0) <= 0:
        return 0.0
    import onnxruntime

    if CUDA not in onnxruntime.get_available_providers():
        log.warning("the cluster has GPUs but ONNX Runtime here has no CUDA provider: OCR and NSFW scoring run on "
                    "CPU (install onnxruntime-gpu in place of onnxruntime to use them)")
        return 0.0
    return 0.25


def caption_gpus(cfg: Config, *, rewrite: bool = False) -> float:
    """GPUs per caption (or rewrite) actor: as configured, else what the backend needs (vllm: its tensor-parallel
    size; transformers: one when the cluster has GPUs and `caption.device` allows; openai: none)."""
    import ray

    c = cfg.caption.rewrite_section() if rewrite else cfg.caption
    res = cfg.resources.rewrite if rewrite else cfg.resources.caption
    if res.num_gpus:
        return res.num_gpus
    has_gpu = ray.cluster_resources().get("GPU", 0) > 0
    if c.backend == "vllm":
        if not has_gpu and cfg.profile != "tiny":
            raise ValueError(f"{'caption.rewrite' if rewrite else 'caption'}.backend is vllm but the Ray cluster "
                             "has no GPUs; use the transformers backend (CPU, small runs) or openai (a server "
                             "elsewhere)")
        return float(c.vllm.tensor_parallel_size) if has_gpu else 0.0
    if c.backend == "transformers" and c.device != "cpu":
        if c.device == "cuda" and not has_gpu:
            raise ValueError("caption.device is cuda but the Ray cluster has no GPUs")
        return 1.0 if has_gpu else 0.0
    return 0.0


def aligns_captions(cfg: Config) -> bool:
    """Whether captions are scored against their clips: it takes the aesthetic stage's clip embeddings."""
    return cfg.caption.enabled and cfg.caption.clip_score and cfg.scoring.aesthetic.enabled


def caption_steps(cfg: Config, *, cpu_scale: float | None = None) -> list[Step]:
    """Frame preparation (CPU tasks), then the caption actor pool, on kept scenes; the rewrite pass's pool when
    `rewrite.enabled`; then, with `clip_score`, the captions' alignment scores and the policy once more (its
    caption rule has a score now; the others decide as before). None when captioning is off."""
    if not cfg.caption.enabled:
        return []
    r, c = cfg.resources, cfg.caption
    cpu_scale = actor_cpu_scale(cfg, caption_pools(cfg)) if cpu_scale is None else cpu_scale
    steps = [Step(CaptionPrepStage(cfg), r.caption_prep)]
    if c.backend == "vllm" and c.vllm.batch_api == "ray_data_llm":
        from curate.job.caption_batch import BatchCaptionStep

        steps.append(Step(BatchCaptionStep(cfg), r.caption))
    else:
        steps.append(Step(CaptionStage, r.caption, init={"cfg": cfg}, num_gpus=caption_gpus(cfg),
                          cpu_scale=cpu_scale))
    if cfg.caption.rewrite.enabled:
        steps.append(Step(RewriteStage, r.rewrite, init={"cfg": cfg}, num_gpus=caption_gpus(cfg, rewrite=True),
                          cpu_scale=cpu_scale))
    if aligns_captions(cfg):
        steps += [Step(CaptionAlignStage, r.caption_align, init={"cfg": cfg},
                       num_gpus=r.caption_align.num_gpus, cpu_scale=cpu_scale),
                  Step(PolicyStage(cfg), r.policy)]
    return steps


def caption_pools(cfg: Config) -> list[StageResources]:
    """The actor pools of the caption steps."""
    r, c = cfg.resources, cfg.caption
    if not c.enabled:
        return []
    ours = not (c.backend == "vllm" and c.vllm.batch_api == "ray_data_llm")  # else Ray Data LLM's own pool
    return [*([r.caption] if ours else []), *([r.rewrite] if c.rewrite.enabled else []),
            *([r.caption_align] if aligns_captions(cfg) else [])]


def job_steps(cfg: Config, store: LanceStore, *, run_id: str) -> list[Step]:
    """The job's stages in order, from a source row to the fragments written."""
    r = cfg.resources
    actor_pools = ([r.aesthetic] if cfg.scoring.aesthetic.enabled else []) + caption_pools(cfg)
    cpu_scale = actor_cpu_scale(cfg, actor_pools)
    steps = [Step(AnalyzeStage(cfg), r.analyze),
             Step(ScoreStage(cfg), r.score.model_copy(update={"num_gpus": score_gpus(cfg)}))]
    if cfg.scoring.aesthetic.enabled:
        gpus = aesthetic_gpus(cfg)
        steps.append(Step(AestheticStage, r.aesthetic, init={"cfg": cfg, "device": "cuda" if gpus else "cpu"},
                          num_gpus=gpus, cpu_scale=cpu_scale))
    steps.append(Step(PolicyStage(cfg), r.policy))
    steps += caption_steps(cfg, cpu_scale=cpu_scale)
    steps += [Step(EncodeStage(cfg), r.encode), Step(WriteStage(store, run_id=run_id, profile=cfg.profile), r.write)]
    return steps


def build_dataset(sources: list[Source], cfg: Config, store: LanceStore, *, run_id: str):
    """The lazy Ray Dataset of the job; nothing runs until it is iterated."""
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # the driver shows one bar of finished videos instead
    ctx.target_max_block_size = int(cfg.max_block_mb * 2**20)  # bounds what a worker holds between stages
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    items = [{"uri": s.uri, "source_meta": s.meta_json} for s in sources]
    ds = ray.data.from_items(items, override_num_blocks=max(1, min(len(items), 4096)))
    return wire(ds, job_steps(cfg, store, run_id=run_id))


class Committer:
    """Driver-side commits: fragments as they arrive, then `videos` rows of videos whose scenes are all in."""

    def __init__(self, store: LanceStore, *, run_id: str, profile: str, interval_s: float,
                 on_video: Callable[[dict], None] | None = None):
        self.store, self.run_id, self.profile = store, run_id, profile
        self.interval_s = interval_s
        self.on_video = on_video
        self._candidates: list[str] = []
        self._clips: list[str] = []
        self._progress: dict[str, dict] = {}
        self._ready: list[dict] = []
        self._last = time.monotonic()
        self.finished: list[dict] = []
        self.commit_s = 0.0  # the driver's time in flush(): Ray's share, apart from the stages' work

    def add(self, row: dict) -> None:
        self._candidates.extend(row["candidates_fragments"] or [])
        self._clips.extend(row["clips_fragments"] or [])
        for text in row["video_progress"] or []:
            rec = json.loads(text)
            vid = rec["video"]["video_id"]
            acc = self._progress.setdefault(vid, new_progress(rec["video"]))
            for k in COUNTERS:
                acc[k] += rec[k]
            if acc["rows"] >= (acc["video"].get("num_scenes") or 0):
                self._ready.append(self._progress.pop(vid))
        if time.monotonic() - self._last >= self.interval_s:
            self.flush()

    def flush(self) -> None:
        """Commits clips, then candidates, then the rows of finished videos: a crash between leaves no
        `videos` row, so the next run knows to redo that video. Before a video's row goes in, copies of its
        scenes that another run wrote at the same time are removed (`LanceStore.dedupe`)."""
        started = time.monotonic()
        msg = f"curate run {self.run_id}"
        self.store.commit_fragments("clips", self._clips, message=msg)
        self.store.commit_fragments("candidates", self._candidates, message=msg)
        self._clips, self._candidates = [], []
        if self._ready:
            rows = [video_record(p, run_id=self.run_id, profile=self.profile) for p in self._ready]
            done = [r["video_id"] for r in rows if r["num_scenes"]]
            if done:
                for name in ("clips", "candidates"):
                    self.store.dedupe(name, video_ids=done)
            self.store.upsert_rows("videos", rows, key="uri")
            for p, row in zip(self._ready, rows):
                row["_progress"] = p
                self.finished.append(row)
                if self.on_video:
                    self.on_video(row)
            self._ready = []
        self._last = time.monotonic()
        self.commit_s += self._last - started

    @property
    def unfinished(self) -> int:
        return len(self._progress)


def execute(ds, committer: Committer) -> dict[str, float]:
    """Streams the dataset through the committer, committing at the end whatever is left. Returns each
    operator's busy seconds (`operator_busy_s`)."""
    for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
        for row in batch.to_pylist():
            committer.add(row)
    committer.flush()
    if committer.unfinished:
        log.warning("%d videos did not receive all their scene rows", committer.unfinished)
    return operator_busy_s(ds)


def operator_busy_s(ds) -> dict[str, float]:
    """Seconds each Ray Data operator's tasks and actors spent on blocks, summed over them (Ray's own
    measurement; stages Ray fused into one task show as one operator: "Analyze+Score"). Empty when this Ray
    version's stats are not readable: they are a report, never a reason to fail the run."""
    try:
        summary = ds.get_stats_summary()
    except Exception as e:  # noqa: BLE001 - a DeveloperAPI; the run's data is already committed
        log.debug("no Ray Data stats: %s", e)
        return {}
    busy: dict[str, float] = {}
    pending = [summary]
    while pending:
        s = pending.pop()
        pending.extend(s.parents)
        for op in s.operators_stats:
            if op.wall_time is None or op.operator_name.startswith(("FromItems", "Input")):
                continue
            name = "+".join(part.removeprefix("MapBatches(").rstrip(")").removesuffix("Stage")
                            for part in op.operator_name.split("->"))
            busy[name] = round(busy.get(name, 0.0) + float(op.wall_time.sum), 3)
    return dict(reversed(list(busy.items())))  # parents were read last: graph order
