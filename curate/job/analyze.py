"""The single analysis pass: one low-resolution decode per video feeds scene detection and every sampler.

`iter_scene_rows` turns one source into rows of `schema.SCENE_ROW`: one per scene, or a single row with a
null `clip_id` when the video failed. It never raises for a bad video: the reason is recorded instead.

Memory does not grow with the video: the JPEG samples go to a spool file on the worker's local disk as they are
taken (`SampleSpool`), and the scene rows leave one at a time after the pass, each reading back its own
samples. What stays in memory is a few numbers per frame (timestamps) and the detector's window.
"""

from __future__ import annotations

import hashlib
import queue
import tempfile
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np

from curate.config import Config
from curate.job.failures import is_transient, with_retries
from curate.store import ids
from curate.video.gpu import wants_gpu
from curate.video.media import (
    DecodeStats,
    FrameScaler,
    Probe,
    VideoError,
    decode_frames,
    display_rotation,
    fit_within,
    one_line,
    open_container,
    probe,
    rotated_size,
)
from curate.video.scenes import make_detector, make_spans
from curate.video.sources import Source, open_binary, read_ends

DIGEST_BYTES = 4  # a CRC-32 per frame: a third of blake2b's cost in the decode loop


class SampleSpool:
    """JPEG samples appended to an anonymous temporary file (gone when closed, or when the process dies), read
    back by index: a long video's samples cost local disk, not worker memory."""

    def __init__(self):
        self._file = tempfile.TemporaryFile(prefix="vidcurate-samples-")
        self._offsets: list[int] = [0]

    def append(self, data: bytes) -> None:
        self._file.seek(self._offsets[-1])
        self._file.write(data)
        self._offsets.append(self._offsets[-1] + len(data))

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, i: int) -> bytes:
        start, end = self._offsets[i], self._offsets[i + 1]
        self._file.seek(start)
        return self._file.read(end - start)

    def close(self) -> None:
        self._file.close()


@dataclass
class PassResult:
    """What one decode pass collected."""

    num_frames: int = 0
    frame_times: list[float] = field(default_factory=list)  # seconds from the first frame, + 1 closing entry
    frame_pts: list[int | None] = field(default_factory=list)
    cuts: list[int] = field(default_factory=list)
    rotation: int = 0
    sample_frames: list[int] = field(default_factory=list)  # frame index of each sample
    samples: SampleSpool = field(default_factory=SampleSpool)  # JPEG, upright, at most samples.max_side
    # DIGEST_BYTES per frame: a digest of the frame as the cut detector saw it, for the scenes' `content_hash`.
    frame_digests: bytearray = field(default_factory=bytearray)
    stats: DecodeStats = field(default_factory=DecodeStats)


def content_hash(res: PassResult, start: int, end: int) -> str:
    """The exact-duplicate key of frames [start, end): equal for the same decoded pictures whatever the
    container, file name or timestamps (a remux), different as soon as one frame differs (two scenes of
    different frames collide only if every frame's CRC-32 does)."""
    return hashlib.blake2b(bytes(res.frame_digests[start * DIGEST_BYTES:end * DIGEST_BYTES]),
                           digest_size=16).hexdigest()


def iter_scene_rows(source: Source, cfg: Config) -> Iterator[dict]:
    """Probes, decodes once and splits one video into scene rows, yielded one at a time once the pass is done
    (see module docstring). A failure that may pass (network, object store, I/O) is tried again
    `input.retries` times, then recorded as `retryable`; any other is final (`failed`). See
    curate/job/failures.py."""
    info = _empty_info(source)
    try:
        meta, result = with_retries(lambda: _analyze(source, cfg, info), retries=cfg.input.retries,
                                    backoff_s=cfg.input.retry_backoff_s)
    except Exception as e:  # noqa: BLE001 - any failure of one video becomes its row, the job goes on
        info["status"] = "retryable" if is_transient(e) else "failed"
        info["error"] = one_line(e)
        yield _failed_row(info)
        return
    yielded = 0
    try:
        for row in _scene_rows(info, meta, result, cfg):
            yield row
            yielded += 1
    except Exception as e:
        if yielded:  # rows already went downstream: Ray retries the task, and the copies are deduplicated by id
            raise
        info["status"], info["error"] = "failed", one_line(e)
        yield _failed_row(info)
    finally:
        result.samples.close()


def analyze_source(source: Source, cfg: Config) -> list[dict]:
    """`iter_scene_rows` as a list (tests, benchmarks)."""
    return list(iter_scene_rows(source, cfg))


def _analyze(source: Source, cfg: Config, info: dict) -> tuple[Probe, PassResult]:
    container = None
    try:
        target, size = open_binary(source.uri)
        info["size_bytes"] = size
        if size == 0:
            raise VideoError("empty file (0 bytes)")
        info["video_id"] = ids.video_id(source.uri, ids.content_fingerprint(size, *read_ends(source.uri, size)))
        container = open_container(target, source.uri,
                                   gpu=wants_gpu(cfg.input.decode_device, cfg.resources.analyze.num_gpus))
        meta = probe(container, max_pixels=cfg.input.max_pixels)
        _fill_probe(info, meta)
        result = run_pass(container, meta, cfg)
        if result.num_frames == 0:
            result.samples.close()
            reason = result.stats.first_error or result.stats.truncated or "the stream holds no frames"
            raise VideoError(f"no decodable video frames: {reason}")
        return meta, result
    finally:
        if container is not None:
            container.close()


def run_pass(container, meta: Probe, cfg: Config) -> PassResult:
    """Decodes every frame once, pushing each to the cut detector and keeping samples at a fixed rate."""
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    detector = make_detector(cfg.scenes, meta.avg_fps)
    res = PassResult()
    try:
        _decode_into(res, container, stream, detector, meta, cfg)
    except BaseException:
        res.samples.close()
        raise
    return res


FRAMES_AHEAD = 4  # decoded frames queued for the per-frame work (a few full-size frames of memory)
_END = object()


def _decode_into(res: PassResult, container, stream, detector, meta: Probe, cfg: Config) -> None:
    """Decodes on this thread and does each frame's work (`_FrameWork`) on another, through a short queue: the
    decoder's threads are never kept waiting while a frame is scaled, scored for cuts, digested or sampled. The
    work is mostly OpenCV and swscale, which release the GIL, so the two overlap (10-15% off the pass on 720p and
    1080p here, BENCHMARKS.md); one worker thread keeps the frames in order."""
    work = _FrameWork(res, detector, meta, cfg)
    frames: queue.Queue = queue.Queue(maxsize=FRAMES_AHEAD)
    worker = threading.Thread(target=work.drain, args=(frames,), name="analysis-frames", daemon=True)
    worker.start()
    try:
        for frame in decode_frames(container, stream, res.stats):
            if work.failure is not None:
                break
            frames.put(frame)
    finally:
        frames.put(_END)
        worker.join()
    if work.failure is not None:
        raise work.failure
    if res.num_frames:
        res.cuts = detector.finish()
        res.frame_times.append(res.frame_times[-1] + _last_frame_duration(res.frame_times, meta))


class _FrameWork:
    """Everything the pass does with one decoded frame, in order: its timestamp, the cut detector's small frame,
    its digest, and a sample at the fixed rate."""

    def __init__(self, res: PassResult, detector, meta: Probe, cfg: Config):
        self.res, self.detector, self.meta, self.cfg = res, detector, meta, cfg
        self.detect_scaler = self.sample_scaler = None
        self.next_sample_t = 0.0
        self.sample_every = 1.0 / cfg.samples.fps
        self.first_pts = None
        self.failure: BaseException | None = None

    def drain(self, frames: queue.Queue) -> None:
        while (frame := frames.get()) is not _END:
            if self.failure is None:
                try:
                    self.add(frame)
                except BaseException as e:  # noqa: BLE001 - raised again on the decoding thread
                    self.failure = e

    def add(self, frame) -> None:
        res, meta = self.res, self.meta
        if self.detect_scaler is None:
            res.rotation = display_rotation(frame)
            dw, dh = rotated_size(frame.width, frame.height, res.rotation)
            self.detect_scaler = FrameScaler(*self.detector.input_size(dw, dh), res.rotation)
            self.sample_scaler = FrameScaler(*fit_within(dw, dh, self.cfg.samples.max_side), res.rotation)
        pts = frame.pts
        if pts is not None and self.first_pts is None:
            self.first_pts = pts
        if pts is not None:
            t = float((pts - self.first_pts) * meta.time_base)
        else:  # no timestamp: assume the nominal rate after the previous frame
            t = res.frame_times[-1] + 1.0 / (meta.avg_fps or 25.0) if res.frame_times else 0.0
        index = res.num_frames
        res.frame_times.append(t)
        res.frame_pts.append(pts)
        small = self.detect_scaler(frame)
        self.detector.push(index, small)
        res.frame_digests += zlib.crc32(np.ascontiguousarray(small)).to_bytes(DIGEST_BYTES, "little")
        if t >= self.next_sample_t - 1e-6:
            res.sample_frames.append(index)
            res.samples.append(encode_jpeg(self.sample_scaler(frame), self.cfg.samples.jpeg_quality))
            while self.next_sample_t <= t + 1e-6:
                self.next_sample_t += self.sample_every
        res.num_frames += 1


def _last_frame_duration(times: list[float], meta: Probe) -> float:
    if len(times) >= 2:
        return float(np.median(np.diff(times[-9:]))) or 1.0 / (meta.avg_fps or 25.0)
    return 1.0 / (meta.avg_fps or 25.0)


def is_variable_rate(times: list[float]) -> bool:
    """True when frame durations differ by more than 10% of the typical one."""
    d = np.diff(np.asarray(times[:-1]))
    if len(d) < 3:
        return False
    med = float(np.median(d))
    return med > 0 and float(d.max() - d.min()) > 0.1 * med


def encode_jpeg(bgr: np.ndarray, quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise VideoError("JPEG encoding of a sample failed")
    return buf.tobytes()


def decode_jpeg(data: bytes) -> np.ndarray:
    """BGR uint8 array from a sample or keyframe JPEG."""
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def _keyframe(jpeg: bytes, max_side: int, quality: int) -> bytes:
    img = decode_jpeg(jpeg)
    h, w = img.shape[:2]
    if max(h, w) <= max_side:
        return jpeg
    nw, nh = fit_within(w, h, max_side)
    return encode_jpeg(cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA), quality)


def pick_keyframes(span_start: int, span_end: int, sample_frames: list[int], n: int) -> list[int]:
    """Indices into the sample list for `n` keyframes spread evenly over [span_start, span_end).

    Uses the samples inside the span; a span too short to hold one takes the nearest sample.
    """
    inside = [i for i, f in enumerate(sample_frames) if span_start <= f < span_end]
    if not inside:
        mid = (span_start + span_end) / 2
        return [min(range(len(sample_frames)), key=lambda i: abs(sample_frames[i] - mid))]
    if len(inside) <= n:
        return inside
    picks = [inside[int((k + 0.5) * len(inside) / n)] for k in range(n)]
    return sorted(set(picks))


def _scene_rows(info: dict, meta: Probe, res: PassResult, cfg: Config) -> Iterator[dict]:
    times = res.frame_times
    info.update(
        num_frames=res.num_frames,
        duration_s=times[-1],
        rotation=res.rotation,
        is_vfr=is_variable_rate(times),
        decode_errors=res.stats.errors,
        status="ok",
    )
    info["width"], info["height"] = rotated_size(meta.coded_width, meta.coded_height, res.rotation)
    short = meta.expected_frames - res.num_frames
    if short > max(2, 0.02 * meta.expected_frames) and not res.stats.truncated:
        res.stats.truncated = f"decoded {res.num_frames} of the {meta.expected_frames} frames the container lists"
    if res.stats.errors or res.stats.truncated:
        damage = []
        if res.stats.errors:
            damage.append(f"{res.stats.errors} packets failed to decode ({res.stats.first_error})")
        if res.stats.truncated:
            damage.append(f"stream ended early ({res.stats.truncated})")
        info["warning"] = f"salvaged {res.num_frames} frames; " + "; ".join(damage)
    spans = make_spans(res.cuts, res.num_frames, times, trim_frames=cfg.scenes.trim_frames,
                       max_scene_s=cfg.scenes.max_scene_s)
    info["num_scenes"] = len(spans)
    for k, span in enumerate(spans):
        in_span = [i for i, f in enumerate(res.sample_frames) if span.start <= f < span.end]
        keys = pick_keyframes(span.start, span.end, res.sample_frames, cfg.samples.keyframes_per_scene)
        yield {
            "video": info,
            "clip_id": ids.clip_id(info["video_id"], span.start, span.end),
            "video_id": info["video_id"],
            "start_frame": span.start,
            "end_frame": span.end,
            "start_s": times[span.start],
            "end_s": times[span.end],
            "duration_s": times[span.end] - times[span.start],
            "num_frames": span.num_frames,
            "start_pts": res.frame_pts[span.start],
            "end_pts": res.frame_pts[span.end] if span.end < res.num_frames else None,
            "scene_index": k,
            "content_hash": content_hash(res, span.start, span.end),
            "keyframes": [_keyframe(res.samples[i], cfg.samples.keyframe_max_side, cfg.samples.jpeg_quality)
                          for i in keys],
            "keyframe_times": [times[res.sample_frames[i]] for i in keys],
            "samples": [res.samples[i] for i in in_span],
            "sample_times": [times[res.sample_frames[i]] for i in in_span],
        }


def _empty_info(source: Source) -> dict:
    return {
        "video_id": ids.video_id(source.uri, "unreadable"),
        "uri": source.uri,
        "source_meta": source.meta_json,
        "status": "failed",
        "num_scenes": 0,
        "decode_errors": 0,
    }


def _fill_probe(info: dict, meta: Probe) -> None:
    info.update(
        container=meta.container, codec=meta.codec, pix_fmt=meta.pix_fmt,
        width=meta.coded_width, height=meta.coded_height, avg_fps=meta.avg_fps, real_fps=meta.real_fps,
        duration_s=meta.duration_s, time_base=str(meta.time_base), bit_rate=meta.bit_rate,
        has_audio=meta.has_audio, audio_codec=meta.audio_codec,
    )


def _failed_row(info: dict) -> dict:
    return {"video": info, "clip_id": None, "video_id": info["video_id"]}
