"""The job's stages as plain callables over Arrow batches, each declaring what it reads and writes.

None of them knows about Ray: `pipeline.py` wires them into Ray Data with their resources, and tests call them
directly. A stage receives a `pyarrow.Table`, works on its rows, and returns a table of its declared schema.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime, timezone

import pyarrow as pa

from curate.analyze import analyze_source
from curate.config import Config
from curate.encode import ClipRequest, encode_video_clips
from curate.media import one_line
from curate.schema import CANDIDATES, CLIPS, SCENE_ROW, SCORE_FIELDS
from curate.sources import Source
from curate.store import LanceStore

SOURCE_ROW = pa.schema([pa.field("uri", pa.string()), pa.field("source_meta", pa.string())])

# What the write stage hands the driver: fragment descriptions to commit, and per-video progress.
COMMIT_ROW = pa.schema([
    pa.field("candidates_fragments", pa.list_(pa.string())),
    pa.field("clips_fragments", pa.list_(pa.string())),
    pa.field("video_progress", pa.list_(pa.string())),  # JSON: {"video", "rows", "kept", "clips", "clips_s"}
])


class Stage:
    """Base: `__call__(table) -> table` over `process(rows) -> rows`."""

    name = "stage"
    input_columns: tuple[str, ...] = ()
    output_schema: pa.Schema = SCENE_ROW

    def process(self, rows: list[dict]) -> list[dict]:
        raise NotImplementedError

    def __call__(self, batch: pa.Table) -> pa.Table:
        return pa.Table.from_pylist(self.process(batch.to_pylist()), schema=self.output_schema)


class AnalyzeStage(Stage):
    """Probe and the single low-resolution decode: one source row in, its scene rows out."""

    name = "analyze"
    input_columns = ("uri", "source_meta")

    def __init__(self, cfg: Config):
        self.cfg = cfg

    def process(self, rows: list[dict]) -> list[dict]:
        out = []
        for row in rows:
            meta = json.loads(row["source_meta"]) if row.get("source_meta") else {}
            out.extend(analyze_source(Source(row["uri"], meta), self.cfg))
        return out


def _sample_frames(row: dict) -> list:
    from curate.analyze import decode_jpeg

    return [decode_jpeg(b) for b in row.get("samples") or []]


class ScoreStage(Stage):
    """The weight-free scorers (quality, motion, overlays) on each scene's samples, decoded once per row."""

    name = "score"
    input_columns = ("clip_id", "samples", "sample_times")

    def __init__(self, cfg: Config):
        from filters.watermark import OverlayDetector

        self.scoring = cfg.scoring
        self.overlays = OverlayDetector()

    def process(self, rows: list[dict]) -> list[dict]:
        from filters.motion import motion_scores
        from filters.quality import quality_scores

        for row in rows:
            if row.get("clip_id") is None:
                continue
            frames = _sample_frames(row)
            if self.scoring.quality:
                row.update(quality_scores(frames))
            if self.scoring.motion:
                row.update(motion_scores(frames, row.get("sample_times") or []))
            if self.scoring.watermark:
                row.update(self.overlays(frames))
        return rows


class AestheticStage(Stage):
    """CLIP embedding and aesthetic score per scene from its keyframes. A model stage: Ray runs it as an actor
    pool and the model loads once per actor, here in the constructor."""

    name = "aesthetic"
    input_columns = ("clip_id", "keyframes")

    def __init__(self, cfg: Config, device: str | None = None):
        from filters.aesthetic import AestheticScorer, spec_from_config

        self.scorer = AestheticScorer(spec_from_config(cfg.scoring.aesthetic, cfg.profile), device=device)
        self.scorer.setup()

    def process(self, rows: list[dict]) -> list[dict]:
        import cv2
        from PIL import Image

        from curate.analyze import decode_jpeg

        scored = [r for r in rows if r.get("clip_id") is not None]
        clips = [[Image.fromarray(cv2.cvtColor(decode_jpeg(k), cv2.COLOR_BGR2RGB)) for k in r.get("keyframes") or []]
                 for r in scored]
        scores, embeddings = self.scorer(clips) if clips else ([], [])
        for row, score, emb in zip(scored, scores, embeddings):
            row.update(aesthetic=score, clip_embedding=emb, aesthetic_model=self.scorer.spec.name)
        return rows


class PolicyStage(Stage):
    """Keep/drop from the scores present (today: length)."""

    name = "policy"
    input_columns = ("clip_id", "duration_s", *(f.name for f in SCORE_FIELDS))

    def __init__(self, cfg: Config):
        from filters.policy import KeepPolicy

        self.policy = KeepPolicy.from_config(cfg.policy)

    def process(self, rows: list[dict]) -> list[dict]:
        return self.policy(rows)


class EncodeStage(Stage):
    """Encodes kept scenes (the only second read of a source). A clip that fails is dropped with its reason."""

    name = "encode"
    input_columns = ("video", "clip_id", "keep", "start_pts", "end_pts", "start_s", "end_s")

    def __init__(self, cfg: Config):
        self.cfg = cfg

    def process(self, rows: list[dict]) -> list[dict]:
        by_video: dict[str, list[dict]] = defaultdict(list)
        for row in rows:
            if row.get("clip_id") is not None and row.get("keep"):
                by_video[row["video_id"]].append(row)
        for video_rows in by_video.values():
            info = video_rows[0]["video"]
            requests = [ClipRequest(r["clip_id"], r["start_pts"], r["end_pts"], r["start_s"], r["end_s"])
                        for r in video_rows]
            try:
                results = encode_video_clips(info["uri"], requests, is_vfr=bool(info.get("is_vfr")),
                                             avg_fps=info.get("avg_fps") or 0.0, cfg=self.cfg.encode)
            except Exception as e:  # noqa: BLE001 - the source vanished or broke since analysis
                results = {r.clip_id: f"encode failed: {one_line(e)}" for r in requests}
            for row in video_rows:
                res = results[row["clip_id"]]
                if isinstance(res, str):
                    row["keep"] = False
                    row["drop_reasons"] = [*(row.get("drop_reasons") or []), "encode_failed"]
                    continue
                row.update(clip=res.data, clip_width=res.width, clip_height=res.height, clip_fps=res.fps,
                           clip_num_frames=res.num_frames, clip_duration_s=res.duration_s, clip_codec=res.codec)
                if res.lead_frames:  # stream copy began on an earlier keyframe
                    row["clip_start_frame"] = row["start_frame"] - res.lead_frames
                    row["clip_start_s"] = row["start_s"] - res.lead_s
        return rows


class WriteStage(Stage):
    """Writes candidates and clips as uncommitted Lance fragments; the driver commits what it returns."""

    name = "write"
    input_columns = tuple(SCENE_ROW.names)
    output_schema = COMMIT_ROW

    def __init__(self, store: LanceStore, *, run_id: str, profile: str, candidates: bool = True):
        self.store, self.run_id, self.profile = store, run_id, profile
        self.candidates = candidates  # False: clips only (refilter updates candidates itself)

    def process(self, rows: list[dict]) -> list[dict]:
        stamp = {"run_id": self.run_id, "model_profile": self.profile}
        candidates, clips = [], []
        progress: dict[str, dict] = {}
        for row in rows:
            vid = row["video_id"]
            rec = progress.setdefault(vid, {"video": row["video"], "rows": 0, "kept": 0, "clips": 0, "clips_s": 0.0})
            if row.get("clip_id") is None:
                continue
            rec["rows"] += 1
            rec["kept"] += bool(row.get("keep"))
            candidates.append({**{k: row.get(k) for k in CANDIDATES.names}, **stamp})
            if row.get("keep") and row.get("clip") is not None:
                rec["clips"] += 1
                rec["clips_s"] += row["clip_duration_s"] or 0.0
                clips.append(clip_record(row, stamp))
        return [{
            "candidates_fragments": (self.store.write_fragments("candidates", _table(candidates, CANDIDATES))
                                     if self.candidates else []),
            "clips_fragments": self.store.write_fragments("clips", _table(clips, CLIPS)),
            "video_progress": [json.dumps(p, default=str) for p in progress.values()],
        }]


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
        "duration_s": row["clip_duration_s"], **{f.name: row.get(f.name) for f in SCORE_FIELDS}, **stamp,
    }


def video_record(progress: dict, *, run_id: str, profile: str) -> dict:
    """A `videos.lance` row from a finished video's accumulated progress."""
    return {**progress["video"], "num_kept": progress["kept"], "num_clips": progress["clips"],
            "run_id": run_id, "model_profile": profile, "processed_at": datetime.now(timezone.utc)}


def _table(rows: list[dict], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=schema)
