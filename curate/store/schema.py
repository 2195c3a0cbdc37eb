"""Arrow schemas of the stored tables and of the rows that flow between stages.

The stored tables follow the storage contract in DESIGN.md. `SCENE_ROW` is what the analysis stage emits:
one row per detected scene (or one row with a null `clip_id` for a video that failed), carrying its video's
metadata so that the write stage can produce `videos.lance` without another lookup.
"""

from __future__ import annotations

import pyarrow as pa

# Lance stores a column with this field metadata out of line, read back lazily with `take_blobs`.
BLOB_META = {"lance-encoding:blob": "true"}
# A table's key: Lance's merge_insert then detects two writers inserting the same key at once and retries the
# later one, so that concurrent runs never leave a key twice (curate/store/lance_store.py).
PRIMARY_KEY = {"lance-schema:unenforced-primary-key": "true"}


def _key(name: str) -> pa.Field:
    return pa.field(name, pa.string(), nullable=False, metadata=PRIMARY_KEY)

# Score columns the filters fill (null where a scorer is off), kept for every scene so thresholds can change
# later without decoding or scoring again. Units: see filters/quality.py, motion.py, watermark.py, aesthetic.py.
SCORE_FIELDS = [
    pa.field("aesthetic", pa.float32()),
    pa.field("aesthetic_model", pa.string()),  # encoder + head, or the tiny profile's
    pa.field("sharpness", pa.float32()),  # variance of the Laplacian of luma, on the samples
    pa.field("dark_fraction", pa.float32()),
    pa.field("bright_fraction", pa.float32()),
    pa.field("blank_fraction", pa.float32()),
    pa.field("frozen_fraction", pa.float32()),
    pa.field("content_box", pa.list_(pa.float32())),  # [x0, y0, x1, y1] inside letterbox/pillarbox bars
    pa.field("motion", pa.float32()),  # mean optical-flow magnitude, frame diagonals per second
    pa.field("motion_p95", pa.float32()),
    pa.field("moving_fraction", pa.float32()),
    pa.field("camera_motion", pa.string()),  # static | pan_left | pan_right | tilt_up | tilt_down | zoom_* | mixed
    pa.field("jitter", pa.float32()),
    pa.field("watermark_prob", pa.float32()),
    pa.field("watermark_box", pa.list_(pa.float32())),  # [x0, y0, x1, y1] fractions, when likely
    pa.field("text_area", pa.float32()),  # OCR: mean share of the frame covered by text (filters/ocr.py)
    pa.field("persistent_text_area", pa.float32()),  # text that stays put: subtitles, handles, tickers
    pa.field("text_boxes", pa.list_(pa.list_(pa.float32()))),  # [x0, y0, x1, y1, presence, overlay] per text track
    pa.field("ocr_text", pa.string()),  # recognised persistent text (scoring.ocr.recognize)
    pa.field("nsfw_score", pa.float32()),  # highest explicit-class confidence (filters/safety.py)
    pa.field("nsfw_classes", pa.list_(pa.string())),  # every NudeNet class found, faces included
    # After captioning: CLIP cosine of the short caption and the clip's embedding (filters/alignment.py)
    pa.field("caption_clip_score", pa.float32()),
]

VIDEO_INFO = pa.struct([
    pa.field("video_id", pa.string()),
    pa.field("uri", pa.string()),
    pa.field("source_meta", pa.string()),  # JSON of a manifest row's extra columns
    pa.field("size_bytes", pa.int64()),
    pa.field("container", pa.string()),
    pa.field("codec", pa.string()),
    pa.field("pix_fmt", pa.string()),
    pa.field("width", pa.int32()),  # as displayed, after rotation
    pa.field("height", pa.int32()),
    pa.field("rotation", pa.int32()),  # degrees counter-clockwise the frames are turned for display
    pa.field("avg_fps", pa.float64()),
    pa.field("real_fps", pa.float64()),  # the stream's base (r_frame_rate) rate
    pa.field("is_vfr", pa.bool_()),
    pa.field("duration_s", pa.float64()),
    pa.field("num_frames", pa.int64()),  # frames actually decoded
    pa.field("time_base", pa.string()),
    pa.field("bit_rate", pa.int64()),
    pa.field("has_audio", pa.bool_()),
    pa.field("audio_codec", pa.string()),
    pa.field("status", pa.string()),  # ok | failed (final: corrupt, unsupported, empty) | retryable (I/O, network)
    pa.field("error", pa.string()),  # one readable line when failed or retryable
    pa.field("warning", pa.string()),  # what was salvaged, when ok but damaged
    pa.field("decode_errors", pa.int32()),
    pa.field("num_scenes", pa.int32()),
])

# What `curate dedup` groups by (filters/dedup.py) and what it decides. The analysis and score stages fill the
# signatures; `dup_group` (the id of the group's kept scene) and `duplicate_of` (the same, on the others only)
# stay null until a dedup runs.
DEDUP_FIELDS = [
    pa.field("content_hash", pa.string()),  # digest of every decoded frame: exact duplicates
    pa.field("sample_hashes", pa.list_(pa.binary())),  # 16-byte perceptual hash per sample: near duplicates
    pa.field("dup_group", pa.string()),
    pa.field("duplicate_of", pa.string()),
]

SPAN_FIELDS = [
    pa.field("clip_id", pa.string()),
    pa.field("video_id", pa.string()),
    pa.field("start_frame", pa.int64()),
    pa.field("end_frame", pa.int64()),  # exclusive
    pa.field("start_s", pa.float64()),
    pa.field("end_s", pa.float64()),
    pa.field("duration_s", pa.float64()),
    pa.field("num_frames", pa.int64()),
]

# Filled by the caption stage for kept scenes; stored in clips.lance. `caption_json` holds every field the prompt
# asked for (short and dense caption, main subject, background, camera motion, style, lighting).
CAPTION_FIELDS = [
    pa.field("caption", pa.string()),  # the dense paragraph
    pa.field("caption_short", pa.string()),
    pa.field("caption_json", pa.string()),
    pa.field("caption_status", pa.string()),  # ok | failed (null: captioning was off)
    pa.field("caption_error", pa.string()),  # why the last attempt failed
    pa.field("caption_attempts", pa.int32()),
    pa.field("caption_tokens", pa.int64()),  # output tokens over all attempts
    pa.field("caption_model", pa.string()),
    pa.field("prompt_id", pa.string()),
    # How the frames were chosen (captioner/frames.py): JSON {"mode": uniform | rate | subsampled | windows,
    # "frames", "windows", "fps", "spans_s"}; and, for windows, each window's own answer (captioner/windows.py).
    pa.field("caption_sampling", pa.string()),
    pa.field("caption_windows", pa.string()),
]

# Filled by the rewrite pass (caption.rewrite) for clips whose caption passed: a text LLM's short and dense
# training captions from the caption's fields, stored beside the original (null when the pass is off).
REWRITE_FIELDS = [
    pa.field("rewrite_short", pa.string()),
    pa.field("rewrite_dense", pa.string()),
    pa.field("rewrite_status", pa.string()),  # ok | failed (its answer failed the checks: see rewrite_error)
    pa.field("rewrite_error", pa.string()),
    pa.field("rewrite_model", pa.string()),
    pa.field("rewrite_prompt_id", pa.string()),
]

# One row per scene between stages. `samples` holds the scene's frames at the sample rate (upright JPEGs) for
# scorers and captioners, so no later stage decodes the source again. They are never stored.
SCENE_ROW = pa.schema([
    pa.field("video", VIDEO_INFO),
    *SPAN_FIELDS,
    pa.field("start_pts", pa.int64()),  # stream time-base units of the first frame
    pa.field("end_pts", pa.int64()),  # of the first frame after the span; null at the end of the video
    pa.field("scene_index", pa.int32()),
    pa.field("keyframes", pa.list_(pa.binary())),
    pa.field("keyframe_times", pa.list_(pa.float64())),
    pa.field("samples", pa.list_(pa.binary())),
    pa.field("sample_times", pa.list_(pa.float64())),
    *SCORE_FIELDS,
    pa.field("clip_embedding", pa.list_(pa.float32())),
    *DEDUP_FIELDS,
    pa.field("keep", pa.bool_()),
    pa.field("drop_reasons", pa.list_(pa.string())),
    # Filled by the encode stage for kept scenes (`encode_error`: why one could not be written).
    pa.field("encode_error", pa.string()),
    pa.field("clip", pa.binary()),
    pa.field("clip_width", pa.int32()),
    pa.field("clip_height", pa.int32()),
    pa.field("clip_fps", pa.float64()),
    pa.field("clip_num_frames", pa.int64()),
    pa.field("clip_duration_s", pa.float64()),
    pa.field("clip_codec", pa.string()),
    # Stream copy starts on the keyframe at or before the scene: where the clip really begins.
    pa.field("clip_start_frame", pa.int64()),
    pa.field("clip_start_s", pa.float64()),
    # The caption prep stage's frames (RGB uint8, `caption_frames_shape` = T, H, W, 3) for the caption actors.
    pa.field("caption_frames", pa.binary()),
    pa.field("caption_frames_shape", pa.list_(pa.int32())),
    pa.field("caption_frames_windows", pa.list_(pa.int32())),  # frames of each window, in order (one: the clip)
    pa.field("caption_frames_fps", pa.float64()),
    pa.field("caption_gen_s", pa.float64()),  # this clip's share of generation time (for tokens/s)
    *CAPTION_FIELDS,
    *REWRITE_FIELDS,
])

RUN_FIELDS = [
    pa.field("model_profile", pa.string()),
    pa.field("run_id", pa.string()),
]

VIDEOS = pa.schema([
    *[_key("uri") if VIDEO_INFO.field(i).name == "uri" else VIDEO_INFO.field(i) for i in range(VIDEO_INFO.num_fields)],
    pa.field("num_kept", pa.int32()),
    pa.field("num_clips", pa.int32()),
    *RUN_FIELDS,
    pa.field("processed_at", pa.timestamp("ms", tz="UTC")),
])

CANDIDATES = pa.schema([
    *SPAN_FIELDS,
    pa.field("start_pts", pa.int64()),  # the span in stream units, so `curate refilter` can encode exactly
    pa.field("end_pts", pa.int64()),
    pa.field("scene_index", pa.int32()),
    pa.field("keyframes", pa.list_(pa.binary())),  # small JPEGs
    pa.field("keyframe_times", pa.list_(pa.float64())),
    *SCORE_FIELDS,
    pa.field("clip_embedding", pa.list_(pa.float32())),
    *DEDUP_FIELDS,
    pa.field("keep", pa.bool_()),
    pa.field("drop_reasons", pa.list_(pa.string())),
    pa.field("encode_error", pa.string()),  # with `encode_failed`: why the clip could not be written (one line)
    *RUN_FIELDS,
])

CLIPS = pa.schema([
    pa.field("clip_id", pa.string()),
    pa.field("video_id", pa.string()),
    pa.field("source_uri", pa.string()),
    pa.field("start_frame", pa.int64()),
    pa.field("end_frame", pa.int64()),
    pa.field("start_s", pa.float64()),
    pa.field("end_s", pa.float64()),
    pa.field("video", pa.large_binary(), metadata=BLOB_META),  # the H.264 mp4
    pa.field("codec", pa.string()),
    pa.field("width", pa.int32()),
    pa.field("height", pa.int32()),
    pa.field("fps", pa.float64()),
    pa.field("num_frames", pa.int64()),
    pa.field("duration_s", pa.float64()),
    *SCORE_FIELDS,
    *CAPTION_FIELDS,
    *REWRITE_FIELDS,
    *RUN_FIELDS,
])

RUNS = pa.schema([
    _key("run_id"),
    pa.field("started_at", pa.timestamp("ms", tz="UTC")),
    pa.field("finished_at", pa.timestamp("ms", tz="UTC")),
    pa.field("heartbeat_at", pa.timestamp("ms", tz="UTC")),  # a running job refreshes it; see store.live_runs
    pa.field("status", pa.string()),  # running | completed | failed | interrupted (its heartbeat stopped)
    pa.field("package_version", pa.string()),
    pa.field("config_hash", pa.string()),
    pa.field("config_yaml", pa.string()),
    pa.field("model_profile", pa.string()),
    pa.field("inputs", pa.list_(pa.string())),
    pa.field("videos_seen", pa.int64()),
    pa.field("videos_skipped", pa.int64()),
    pa.field("videos_ok", pa.int64()),
    pa.field("videos_failed", pa.int64()),
    pa.field("videos_retryable", pa.int64()),
    pa.field("scenes", pa.int64()),
    pa.field("kept", pa.int64()),
    pa.field("hours_in", pa.float64()),
    pa.field("hours_out", pa.float64()),
    pa.field("wall_s", pa.float64()),
])

TABLES = {"videos": VIDEOS, "candidates": CANDIDATES, "clips": CLIPS, "runs": RUNS}
