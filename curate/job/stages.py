"""The job's stages as plain callables over Arrow batches, each declaring what it reads and writes.

None of them knows about Ray: `pipeline.py` wires them into Ray Data with their resources, and tests call them
directly. A stage receives a `pyarrow.Table` and returns one (or yields several): the same rows with its
declared `output_columns` set, or new rows (analysis: scenes from sources; write: fragment descriptions). The
base class holds each stage to its `input_columns` and `output_columns`, and keeps only the columns the wiring
says a later stage reads.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime, timezone

import pyarrow as pa

from curate.config import Config
from curate.job.analyze import iter_scene_rows
from curate.job.encode import ClipRequest, iter_video_clips
from curate.store.lance_store import LanceStore
from curate.store.schema import CANDIDATES, CAPTION_FIELDS, CLIPS, REWRITE_FIELDS, SCENE_ROW, SCORE_FIELDS
from curate.video.media import one_line
from curate.video.sources import Source

# What the write stage hands the driver: fragment descriptions to commit, and per-video progress.
COMMIT_ROW = pa.schema([
    pa.field("candidates_fragments", pa.list_(pa.string())),
    pa.field("clips_fragments", pa.list_(pa.string())),
    pa.field("video_progress", pa.list_(pa.string())),  # JSON: {"video", "rows", "kept", ...COUNTERS}
    # Clips-only writes (refilter, which updates candidates itself): each scene's decision after captioning and
    # encoding, JSON of DECISION_COLUMNS.
    pa.field("decisions", pa.list_(pa.string())),
])
# What a clips-only write reports of each scene it saw: the decision the caption rule or the encoder may have
# changed, and the score the caption stage computed.
DECISION_COLUMNS = ("clip_id", "keep", "drop_reasons", "caption_clip_score", "encode_error")

# Per-video counters the write stage reports and the driver sums into the run summary.
COUNTERS = ("rows", "kept", "clips", "clips_s", "captioned", "caption_retried", "caption_failed", "caption_tokens",
            "caption_gen_s")


def new_progress(video: dict) -> dict:
    return {"video": video, **{k: 0 for k in COUNTERS}}


class Stage:
    """Base: declares the columns a stage reads and writes, and holds it to them.

    `__call__(table)` checks that the `input_columns` are there, runs `run(table)`, and keeps of the result only
    the `keep_columns` the wiring set (what a later stage still reads: `pipeline.py` works them out from the
    stages' declarations), so that bulky columns stop travelling once their last reader is done. The default
    `run` suits stages that keep their rows: `process` sees each row's declared inputs only, and only its
    declared `output_columns` go back into the table.
    """

    name = "stage"
    input_columns: tuple[str, ...] = ()
    output_columns: tuple[str, ...] = ()
    keep_columns: tuple[str, ...] | None = None  # set by the wiring; None keeps every column

    def process(self, rows: list[dict]) -> list[dict]:
        raise NotImplementedError

    def __call__(self, batch: pa.Table):
        missing = [c for c in self.input_columns if c not in batch.column_names]
        if missing:
            raise KeyError(f"stage {self.name!r} reads {', '.join(missing)}, which no earlier stage kept "
                           f"(the wiring's declarations are out of step)")
        out = self.run(batch)
        if isinstance(out, pa.Table):
            return self._kept_columns(out)
        return (self._kept_columns(t) for t in out)

    def run(self, batch: pa.Table):
        """The stage's work on one batch: a table, or an iterator of tables (streamed downstream one by one)."""
        rows = self.process(batch.select(list(self.input_columns)).to_pylist())
        if len(rows) != batch.num_rows:
            raise ValueError(f"stage {self.name!r} must keep its rows ({batch.num_rows} in, {len(rows)} out)")
        return with_columns(batch, rows, self.output_columns)

    def _kept_columns(self, table: pa.Table) -> pa.Table:
        if self.keep_columns is None:
            return table
        return table.select([c for c in table.column_names if c in self.keep_columns])


def with_columns(table: pa.Table, rows: list[dict], names) -> pa.Table:
    """`table` with the columns `names` taken from `rows` (one dict per table row), typed as in SCENE_ROW; a row
    without a key keeps the value it had."""
    for name in names:
        if not any(name in r for r in rows):
            continue
        old = table.column(name).to_pylist() if name in table.column_names else [None] * table.num_rows
        values = [r[name] if name in r else o for r, o in zip(rows, old)]
        table = put_column(table, name, pa.array(values, SCENE_ROW.field(name).type))
    return table


def put_column(table: pa.Table, name: str, values) -> pa.Table:
    """`table` with its column `name` replaced by `values` (typed as in SCENE_ROW), or added when it has none."""
    field = SCENE_ROW.field(name)
    if name in table.column_names:
        return table.set_column(table.column_names.index(name), field, values)
    return table.append_column(field, values)


def scene_table(rows: list[dict], names=None) -> pa.Table:
    """Rows as a table of SCENE_ROW's columns (all of them, or those in `names`, in SCENE_ROW's order)."""
    schema = SCENE_ROW if names is None else pa.schema([f for f in SCENE_ROW if f.name in set(names)])
    return pa.Table.from_pylist(rows, schema=schema)


class AnalyzeStage(Stage):
    """Probe and the single low-resolution decode: one source row in, its scene rows out."""

    name = "analyze"
    input_columns = ("uri", "source_meta")
    output_columns = tuple(SCENE_ROW.names)

    def __init__(self, cfg: Config):
        self.cfg = cfg

    def run(self, batch: pa.Table):
        """Yields each scene's row as a table of its own: Ray Data streams them on (merged into blocks of at most
        `max_block_mb`), so the worker never holds a whole video's samples."""
        for row in batch.to_pylist():
            meta = json.loads(row["source_meta"]) if row.get("source_meta") else {}
            for scene in iter_scene_rows(Source(row["uri"], meta), self.cfg):
                yield scene_table([scene])


class LazyFrames:
    """A scene's JPEG samples as a sequence of BGR frames decoded on first access: each scorer reads only the
    frames it picks, and no frame is decoded twice."""

    def __init__(self, jpegs: list[bytes] | None):
        self.jpegs = jpegs or []
        self._decoded: dict[int, object] = {}

    def __len__(self) -> int:
        return len(self.jpegs)

    def __getitem__(self, i: int):
        from curate.job.analyze import decode_jpeg

        if i not in self._decoded:
            self._decoded[i] = decode_jpeg(self.jpegs[i])
        return self._decoded[i]


class ScoreStage(Stage):
    """Every scorer that reads a scene's samples or keyframes: quality, motion, overlays, OCR text and safety.

    Runs as Ray tasks (fused with analysis when their resources match); the two learned scorers (OCR, NSFW:
    ONNX models shipped in their wheels) load once per worker process and run on CUDA where ONNX Runtime has it.
    The weight-free scorers read at most `scoring.max_samples` samples spread over the scene (motion: as many
    consecutive pairs), so their cost does not grow with the scene's length; the duplicate hashes read every
    sample, decoded to grey at half size (a few percent of the analysis pass)."""

    name = "score"
    input_columns = ("clip_id", "samples", "sample_times", "keyframes")
    output_columns = (*(f.name for f in SCORE_FIELDS if not f.name.startswith("aesthetic")), "sample_hashes")

    def __init__(self, cfg: Config):
        from filters.ocr import OcrSettings
        from filters.safety import SafetySettings

        self.scoring = cfg.scoring
        threads = max(1, int(cfg.resources.score.num_cpus))
        o, s = cfg.scoring.ocr, cfg.scoring.safety
        self.ocr = OcrSettings(frames=o.frames, max_side=o.max_side, persist=o.persist, box_threshold=o.box_threshold,
                               recognize=o.recognize, stock_sites=o.stock_sites, device=o.device, threads=threads,
                               engine=o.engine, precision=o.precision) if o.enabled else None
        self.safety = SafetySettings(frames=s.frames, min_score=s.min_score, device=s.device, threads=threads,
                                     engine=s.engine, precision=s.precision) if s.enabled else None
        self.seconds: dict[str, float] = {}  # time spent per scorer in this process, for benchmarks

    def preflight(self) -> None:
        """Fails on the driver, before any work, when a learned scorer's model cannot be had."""
        from filters import ocr, safety

        if self.ocr is not None:
            ocr.preflight(self.ocr)
        if self.safety is not None:
            safety.preflight(self.safety)

    def process(self, rows: list[dict]) -> list[dict]:
        import time

        from filters.ocr import TextScorer
        from filters.picks import spread
        from filters.quality import quality_scores
        from filters.safety import SafetyScorer
        from filters.watermark import OverlayDetector

        sc = self.scoring
        scorers = []
        if sc.quality:
            scorers.append(("quality", lambda f, r: quality_scores(spread(f, sc.max_samples))))
        if sc.motion:
            scorers.append(("motion", lambda f, r: _motion(f, r.get("sample_times") or [], sc.max_samples)))
        if sc.watermark:
            scorers.append(("overlay", lambda f, r: OverlayDetector()(spread(f, sc.max_samples))))
        if sc.dedup_hashes:  # after quality: inside its content box
            scorers.append(("dedup", lambda f, r: {"sample_hashes": _sample_hashes(f.jpegs, r.get("content_box"))}))
        if self.ocr is not None:
            scorers.append(("ocr", lambda f, r: TextScorer(self.ocr)(f)))
        if self.safety is not None:
            scorers.append(("safety", lambda f, r: SafetyScorer(self.safety)(LazyFrames(r.get("keyframes")))))
        for row in rows:
            if row.get("clip_id") is None:
                continue
            frames = LazyFrames(row.get("samples"))
            for name, scorer in scorers:
                t = time.perf_counter()
                row.update(scorer(frames, row))
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t
        return rows


def _sample_hashes(jpegs: list[bytes], box: list[float] | None) -> list[bytes]:
    """Every sample's perceptual hash (filters/dedup.py), inside the letterbox bars. The hash reads a 32 px
    thumbnail of luma, so each JPEG is decoded straight to grey at half its size (libjpeg's DCT scaling): a
    third of a full decode's cost. A quarter is cheaper still but moves a 5% crop closer to the threshold
    (bench/dedup_bench.py)."""
    import cv2
    import numpy as np

    from filters.dedup import sample_hashes
    from filters.quality import content_box

    grey = [cv2.imdecode(np.frombuffer(j, np.uint8), cv2.IMREAD_REDUCED_GRAYSCALE_2) for j in jpegs]
    if box is None and grey:
        box = content_box(grey)
    return sample_hashes(grey, box)


def _motion(frames: LazyFrames, times: list[float], max_pairs: int) -> dict:
    """Motion over at most `max_pairs` pairs of consecutive samples spread over the scene."""
    from filters.motion import motion_scores
    from filters.picks import spread_indices

    starts = spread_indices(len(frames) - 1, max_pairs)
    pairs = [f for i in starts for f in (frames[i], frames[i + 1])]
    return motion_scores(pairs, [t for i in starts for t in times[i:i + 2]], paired=True)


class AestheticStage(Stage):
    """CLIP embedding and aesthetic score per scene from its keyframes, inside their letterbox bars (the score
    stage's `content_box`). A model stage: Ray runs it as an actor pool and the model loads once per actor,
    here in the constructor."""

    name = "aesthetic"
    input_columns = ("clip_id", "keyframes", "content_box")
    output_columns = ("aesthetic", "clip_embedding", "aesthetic_model")

    def __init__(self, cfg: Config, device: str | None = None, keep_columns: tuple[str, ...] | None = None):
        from filters.aesthetic import AestheticScorer, spec_from_config

        self.keep_columns = keep_columns
        self.scorer = AestheticScorer(spec_from_config(cfg.scoring.aesthetic, cfg.profile), device=device)
        self.scorer.setup()

    def process(self, rows: list[dict]) -> list[dict]:
        import cv2
        from PIL import Image

        from curate.job.analyze import decode_jpeg
        from filters.quality import crop_to_box

        scored = [r for r in rows if r.get("clip_id") is not None]
        # inside the letterbox bars: black bars are no part of the picture, to its aesthetic or its embedding
        clips = [[Image.fromarray(cv2.cvtColor(crop_to_box(decode_jpeg(k), r.get("content_box")), cv2.COLOR_BGR2RGB))
                  for k in r.get("keyframes") or []] for r in scored]
        scores, embeddings = self.scorer(clips) if clips else ([], [])
        for row, score, emb in zip(scored, scores, embeddings):
            row.update(aesthetic=score, clip_embedding=emb, aesthetic_model=self.scorer.spec.name)
        return rows


class PolicyStage(Stage):
    """Keep/drop from the stored scores (filters/policy.py), column by column over the batch."""

    name = "policy"

    def __init__(self, cfg: Config):
        from filters.policy import KeepPolicy

        self.policy = KeepPolicy.from_config(cfg.policy)
        self.input_columns = ("clip_id", *self.policy.inputs)
        self.output_columns = self.policy.outputs

    def run(self, batch: pa.Table) -> pa.Table:
        import pyarrow.compute as pc

        keep, reasons = self.policy.decide(batch)
        scene = pc.is_valid(batch.column("clip_id"))  # a failed video's row has nothing to decide
        for name, values in zip(self.output_columns, (keep, reasons)):
            old = (batch.column(name) if name in batch.column_names
                   else pa.nulls(batch.num_rows, SCENE_ROW.field(name).type))
            batch = put_column(batch, name, pc.if_else(scene, values, old))
        return batch


def _kept(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r.get("clip_id") is not None and r.get("keep")]


class CaptionPrepStage(Stage):
    """CPU side of captioning: picks and resizes each kept scene's frames from its samples, so the caption
    actors (GPU) spend their time generating. No second decode of the source."""

    name = "caption_prep"
    input_columns = ("clip_id", "keep", "samples", "sample_times", "duration_s")
    output_columns = ("caption_frames", "caption_frames_shape", "caption_frames_windows", "caption_frames_fps",
                      "caption_sampling", "caption_status", "caption_error", "caption_attempts")

    def __init__(self, cfg: Config):
        self.caption, self.sample_fps = cfg.caption, cfg.samples.fps

    def process(self, rows: list[dict]) -> list[dict]:
        from captioner.frames import clip_frames

        c = self.caption
        for row in _kept(rows):
            try:
                frames, windows, fps, sampling = clip_frames(
                    row.get("samples") or [], row.get("sample_times") or [], frames=c.frames, rate=c.frame_rate,
                    max_pixels=c.max_pixels, sample_fps=self.sample_fps, long_clips=c.long_clips)
            except ValueError as e:
                row.update(caption_status="failed", caption_error=f"frames: {e}", caption_attempts=0)
                continue
            row.update(caption_frames=frames.tobytes(), caption_frames_shape=list(frames.shape),
                       caption_frames_windows=windows, caption_frames_fps=fps, caption_sampling=json.dumps(sampling))
        return rows


class CaptionStage(Stage):
    """Dense captions of kept scenes from a VLM. A model stage: an actor pool, the backend set up once per actor.
    Every kept scene leaves with caption columns: `ok`, or `failed` and why (the clip is kept either way)."""

    name = "caption"
    input_columns = ("clip_id", "keep", "caption_frames", "caption_frames_shape", "caption_frames_windows",
                     "caption_frames_fps", "caption_sampling", "duration_s")
    output_columns = (*(f.name for f in CAPTION_FIELDS), "caption_gen_s")

    def __init__(self, cfg: Config, keep_columns: tuple[str, ...] | None = None):
        self.keep_columns = keep_columns
        self.prompt, self.captioner = set_up_captioner(cfg.caption, cfg.profile, input="video")

    def process(self, rows: list[dict]) -> list[dict]:
        """One request per window of each clip (a clip within the frame budget is one window), then each clip's
        windows merged into its caption (captioner/windows.py)."""
        from captioner.windows import merge_windows, windows_json

        todo = [r for r in _kept(rows) if r.get("caption_frames") is not None]
        requests, owners = [], []
        for k, row in enumerate(todo):
            for request in _window_requests(row):
                requests.append(request)
                owners.append(k)
        before = self.captioner.stats.generate_s
        outcomes = self.captioner(requests) if requests else []
        share = (self.captioner.stats.generate_s - before) / max(1, len(todo))
        per_clip: dict[int, list] = defaultdict(list)
        for outcome, k in zip(outcomes, owners):
            per_clip[k].append(outcome)
        for k, row in enumerate(todo):
            windows = per_clip[k]
            spans = json.loads(row.get("caption_sampling") or "{}").get("spans_s", [])
            outcome = merge_windows(row["clip_id"], windows)
            row.update(outcome.columns(model=self.captioner.backend.label, prompt_id=self.prompt.id),
                       caption_gen_s=share, caption_windows=windows_json(windows, spans))
        return rows


def set_up_captioner(c, profile: str, *, input: str):
    """The prompt and a Captioner around a set-up backend, for a `caption:` section (or its rewrite_section)."""
    from captioner import Captioner, GenerationParams, get_prompt, make_backend

    prompt = get_prompt(c.prompt, input=input)
    backend = make_backend(c, profile)
    backend.setup()
    return prompt, Captioner(backend, prompt, GenerationParams(c.max_new_tokens, c.temperature, c.top_p),
                             max_retries=c.max_retries, retry_temperature=c.retry_temperature, min_words=c.min_words)


def prepared_frames(row: dict):
    """The caption prep stage's frames of a row, as the (T, H, W, 3) RGB array it stored (a writable copy)."""
    import numpy as np

    return np.frombuffer(row["caption_frames"], np.uint8).reshape(row["caption_frames_shape"]).copy()


def _window_requests(row: dict):
    """The caption requests of a prepared scene row: its frames cut into its windows."""
    import numpy as np

    from captioner import CaptionRequest

    frames = prepared_frames(row)
    sizes = row.get("caption_frames_windows") or [len(frames)]
    starts = np.cumsum([0, *sizes[:-1]])
    for k, (start, size) in enumerate(zip(starts, sizes)):
        clip_id = row["clip_id"] if len(sizes) == 1 else f"{row['clip_id']}#window{k + 1}"
        yield CaptionRequest(clip_id, frames[start:start + size], row["caption_frames_fps"],
                             size / max(row["caption_frames_fps"], 1e-6) if len(sizes) > 1 else row["duration_s"])


class RewriteStage(Stage):
    """The optional second pass (caption.rewrite): a text LLM rewrites each passed caption into a short and a
    dense training caption, through the caption backends and checks. A model stage (actor pool). A rewrite that
    fails its checks leaves the original caption as it was and says why (`rewrite_status`, `rewrite_error`)."""

    name = "rewrite"
    input_columns = ("clip_id", "keep", "caption_status", "caption_json")
    output_columns = tuple(f.name for f in REWRITE_FIELDS)

    def __init__(self, cfg: Config, keep_columns: tuple[str, ...] | None = None):
        self.keep_columns = keep_columns
        self.prompt, self.captioner = set_up_captioner(cfg.caption.rewrite_section(), cfg.profile, input="text")

    def process(self, rows: list[dict]) -> list[dict]:
        from captioner import CaptionRequest
        from captioner.rewrite import annotation_text

        todo = [r for r in _kept(rows) if r.get("caption_status") == "ok" and r.get("caption_json")]
        requests = [CaptionRequest(r["clip_id"], None, text=annotation_text(r["caption_json"])) for r in todo]
        for row, out in zip(todo, self.captioner(requests) if requests else []):
            ok = out.status == "ok"
            row.update(rewrite_short=out.fields.get("short_caption") if ok else None,
                       rewrite_dense=out.fields.get("dense_caption") if ok else None, rewrite_status=out.status,
                       rewrite_error=out.error, rewrite_model=self.captioner.backend.label,
                       rewrite_prompt_id=self.prompt.id)
        return rows


class CaptionAlignStage(Stage):
    """`caption_clip_score` of each captioned scene (filters/alignment.py), from the aesthetic stage's CLIP: its
    text tower against the stored `clip_embedding`. A model stage (actor pool). A scene whose embedding another
    CLIP made (a refilter under a changed config) is left unscored, with a warning."""

    name = "caption_align"
    input_columns = ("clip_id", "keep", "caption", "caption_short", "caption_status", "clip_embedding",
                     "aesthetic_model")
    output_columns = ("caption_clip_score",)

    def __init__(self, cfg: Config, keep_columns: tuple[str, ...] | None = None):
        from filters.aesthetic import AestheticScorer, spec_from_config

        self.keep_columns = keep_columns
        device = "cuda" if cfg.resources.caption_align.num_gpus else "cpu"  # the pipeline gave it that GPU
        self.scorer = AestheticScorer(spec_from_config(cfg.scoring.aesthetic, cfg.profile), device=device)
        self.scorer.setup()

    def process(self, rows: list[dict]) -> list[dict]:
        import logging

        from filters.alignment import caption_clip_scores, caption_text

        model = self.scorer.spec.name
        todo = [r for r in _kept(rows) if r.get("caption_status") == "ok" and r.get("clip_embedding") is not None]
        other = [r for r in todo if r.get("aesthetic_model") != model]
        if other:
            logging.getLogger(__name__).warning(
                "%d captions left without caption_clip_score: their clips were embedded by %s, not %s",
                len(other), other[0].get("aesthetic_model"), model)
        todo = [r for r in todo if r.get("aesthetic_model") == model]
        scores = caption_clip_scores(self.scorer.embed_text,
                                     [caption_text(r.get("caption_short"), r.get("caption")) for r in todo],
                                     [r["clip_embedding"] for r in todo])
        for row, score in zip(todo, scores):
            row["caption_clip_score"] = score
        return rows


class EncodeStage(Stage):
    """Encodes kept scenes (the only second read of a source). A clip that fails is dropped with its reason."""

    name = "encode"
    input_columns = ("video", "video_id", "clip_id", "keep", "drop_reasons", "start_frame", "start_pts", "end_pts",
                     "start_s", "end_s")
    output_columns = ("keep", "drop_reasons", "encode_error", "clip", "clip_width", "clip_height", "clip_fps",
                      "clip_num_frames", "clip_duration_s", "clip_codec", "clip_start_frame", "clip_start_s")

    def __init__(self, cfg: Config):
        self.cfg = cfg

    def run(self, batch: pa.Table):
        """Yields the batch's rows that need no encoding, then each encoded clip's row on its own, so that a
        worker holds one clip's bytes at a time, not every clip of a video (Ray Data streams each yielded table
        downstream as a block of its own)."""
        rows = batch.to_pylist()
        by_video: dict[str, list[dict]] = defaultdict(list)
        rest = []
        for row in rows:
            if row.get("clip_id") is not None and row.get("keep"):
                by_video[row["video_id"]].append(row)
            else:
                rest.append(row)
        names = dict.fromkeys([*batch.column_names, *self.output_columns])  # the rows' other columns go through
        if rest:
            yield scene_table(rest, names)
        for video_rows in by_video.values():
            for row in self._encoded(video_rows):
                yield scene_table([row], names)

    def _encoded(self, video_rows: list[dict]):
        info = video_rows[0]["video"]
        by_id = {r["clip_id"]: r for r in video_rows}
        requests = [ClipRequest(r["clip_id"], r["start_pts"], r["end_pts"], r["start_s"], r["end_s"])
                    for r in video_rows]
        results = iter_video_clips(info["uri"], requests, is_vfr=bool(info.get("is_vfr")),
                                   avg_fps=info.get("avg_fps") or 0.0, cfg=self.cfg.encode,
                                   gpus=self.cfg.resources.encode.num_gpus, decode_device=self.cfg.input.decode_device)
        done = set()
        try:
            for clip_id, res in results:
                done.add(clip_id)
                yield _with_clip(by_id[clip_id], res)
        except Exception as e:  # noqa: BLE001 - the source vanished or broke since analysis
            for row in video_rows:
                if row["clip_id"] not in done:
                    yield _with_clip(row, f"encode failed: {one_line(e)}")


def _with_clip(row: dict, res) -> dict:
    """A copy of the scene row with its encoded clip, or dropped with `encode_failed` when `res` is an error line.
    A copy: the video's rows stay referenced until its last clip, and must not keep every clip's bytes alive."""
    row = dict(row)
    if isinstance(res, str):
        row["keep"] = False
        row["drop_reasons"] = [*(row.get("drop_reasons") or []), "encode_failed"]
        row["encode_error"] = res
        return row
    row.update(clip=res.data, clip_width=res.width, clip_height=res.height, clip_fps=res.fps,
               clip_num_frames=res.num_frames, clip_duration_s=res.duration_s, clip_codec=res.codec)
    if res.lead_frames:  # stream copy began on an earlier keyframe
        row["clip_start_frame"] = row["start_frame"] - res.lead_frames
        row["clip_start_s"] = row["start_s"] - res.lead_s
    return row


class WriteStage(Stage):
    """Writes candidates and clips as uncommitted Lance fragments; the driver commits what it returns."""

    name = "write"
    input_columns = tuple(dict.fromkeys([
        "video", *(n for n in CANDIDATES.names if n not in ("run_id", "model_profile")),
        *(f.name for f in (*CAPTION_FIELDS, *REWRITE_FIELDS)), "caption_gen_s", *EncodeStage.output_columns]))

    def __init__(self, store: LanceStore, *, run_id: str, profile: str, candidates: bool = True):
        self.store, self.run_id, self.profile = store, run_id, profile
        self.candidates = candidates  # False: clips only (refilter updates candidates itself)

    def run(self, batch: pa.Table) -> pa.Table:
        rows = batch.select(list(self.input_columns)).to_pylist()
        stamp = {"run_id": self.run_id, "model_profile": self.profile}
        candidates, clips, decisions = [], [], []
        progress: dict[str, dict] = {}
        for row in rows:
            vid = row["video_id"]
            rec = progress.setdefault(vid, new_progress(row["video"]))
            if row.get("clip_id") is None:
                continue
            rec["rows"] += 1
            rec["kept"] += bool(row.get("keep"))
            candidates.append({**{k: row.get(k) for k in CANDIDATES.names}, **stamp})
            decisions.append(json.dumps({k: row.get(k) for k in DECISION_COLUMNS}))
            if row.get("keep") and row.get("clip") is not None:
                rec["clips"] += 1
                rec["clips_s"] += row["clip_duration_s"] or 0.0
                _count_caption(rec, row)
                clips.append(clip_record(row, stamp))
        return pa.Table.from_pylist([{
            "candidates_fragments": (self.store.write_fragments("candidates", _table(candidates, CANDIDATES))
                                     if self.candidates else []),
            "clips_fragments": self.store.write_fragments("clips", _table(clips, CLIPS)),
            "video_progress": [json.dumps(p, default=str) for p in progress.values()],
            "decisions": [] if self.candidates else decisions,
        }], schema=COMMIT_ROW)


def _count_caption(rec: dict, row: dict) -> None:
    status = row.get("caption_status")
    rec["captioned"] += status == "ok"
    rec["caption_failed"] += status == "failed"
    rec["caption_retried"] += (row.get("caption_attempts") or 0) > 1
    rec["caption_tokens"] += row.get("caption_tokens") or 0
    rec["caption_gen_s"] += row.get("caption_gen_s") or 0.0


def clip_record(row: dict, stamp: dict) -> dict:
    """A `clips.lance` row from an encoded scene row."""
    copied_from_keyframe = row.get("clip_start_frame") is not None
    return {
        "clip_id": row["clip_id"], "video_id": row["video_id"], "source_uri": row["video"]["uri"],
        "start_frame": row["clip_start_frame"] if copied_from_keyframe else row["start_frame"],
        "end_frame": row["end_frame"],
        "start_s": row["clip_start_s"] if copied_from_keyframe else row["start_s"], "end_s": row["end_s"],
        "video": row["clip"], "codec": row["clip_codec"], "width": row["clip_width"],
        "height": row["clip_height"], "fps": row["clip_fps"], "num_frames": row["clip_num_frames"],
        "duration_s": row["clip_duration_s"],
        **{f.name: row.get(f.name) for f in (*SCORE_FIELDS, *CAPTION_FIELDS, *REWRITE_FIELDS)},
        **stamp,
    }


def video_record(progress: dict, *, run_id: str, profile: str) -> dict:
    """A `videos.lance` row from a finished video's accumulated progress."""
    return {**progress["video"], "num_kept": progress["kept"], "num_clips": progress["clips"],
            "run_id": run_id, "model_profile": profile, "processed_at": datetime.now(timezone.utc)}


def _table(rows: list[dict], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=schema)
