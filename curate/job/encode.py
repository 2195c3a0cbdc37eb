"""Writing kept clips as H.264 mp4: frame-accurate re-encode (default) or keyframe-aligned stream copy.

Frames are chosen by presentation timestamp, [start_pts, end_pts), which the analysis pass recorded for each
scene: exact for variable frame rate, and independent of how the demuxer seeks. This is the only second read of
a source: one open per video, one seek per clip.
"""

from __future__ import annotations

import io
import itertools
from dataclasses import dataclass
from fractions import Fraction

import av

from curate.common.once import say_once
from curate.video.gpu import gpu_encoder, wants_gpu
from curate.video.media import (
    DecodeStats,
    FrameScaler,
    VideoError,
    decode_frames,
    display_rotation,
    one_line,
    open_container,
    rotated_size,
)
from curate.video.sources import open_binary


@dataclass
class ClipRequest:
    clip_id: str
    start_pts: int | None
    end_pts: int | None  # None: to the end of the stream
    start_s: float
    end_s: float


@dataclass
class EncodedClip:
    data: bytes
    codec: str
    width: int
    height: int
    fps: float
    num_frames: int
    duration_s: float
    # Stream copy starts on a keyframe: how many frames (and seconds) before the requested start it begins.
    lead_frames: int = 0
    lead_s: float = 0.0


def output_size(width: int, height: int, max_short_side: int) -> tuple[int, int]:
    """Scales so the short side is at most `max_short_side`; even sizes for yuv420p."""
    scale = min(1.0, max_short_side / min(width, height))
    return max(2, int(round(width * scale / 2)) * 2), max(2, int(round(height * scale / 2)) * 2)


def output_rate(avg_fps: float, is_vfr: bool, max_fps: float, stream_rate) -> tuple[Fraction, bool]:
    """The clip's constant frame rate, and whether source frames map one to one onto it."""
    if not is_vfr and stream_rate and 0 < float(stream_rate) <= max_fps + 1e-6:
        return Fraction(stream_rate), True
    return Fraction(min(avg_fps or max_fps, max_fps)).limit_denominator(1001), False


def encode_video_clips(uri: str, requests: list[ClipRequest], *, is_vfr: bool, avg_fps: float, cfg,
                       gpus: float = 0.0, decode_device: str = "auto") -> dict:
    """Encodes several clips of one source, opening it once: clip_id -> EncodedClip, or clip_id -> one-line
    error for a clip that could not be written (see `iter_video_clips`)."""
    return dict(iter_video_clips(uri, requests, is_vfr=is_vfr, avg_fps=avg_fps, cfg=cfg, gpus=gpus,
                                 decode_device=decode_device))


def iter_video_clips(uri: str, requests: list[ClipRequest], *, is_vfr: bool, avg_fps: float, cfg,
                     gpus: float = 0.0, decode_device: str = "auto"):
    """Encodes the clips of one source in time order, opening it once, and yields (clip_id, EncodedClip or a
    one-line error) as each is done: only one clip's bytes need be held at a time.

    Args:
        cfg: the `encode` section of the config.
        gpus: the GPUs the encode stage was given (`auto` devices use NVDEC and NVENC where it has one).
        decode_device: the config's `input.decode_device`.
    """
    target, _size = open_binary(uri)
    container = open_container(target, uri, gpu=cfg.mode != "copy" and wants_gpu(decode_device, gpus))
    container.streams.video[0].thread_type = "AUTO"
    copy = cfg.mode == "copy" and _mp4_holds(container.streams.video[0])
    codec, options = cfg.codec, x264_options(cfg) if cfg.codec == "libx264" else {"threads": str(cfg.threads)}
    if not copy and wants_gpu(cfg.device, gpus) and gpu_encoder(cfg.gpu_codec):
        codec, options = cfg.gpu_codec, dict(cfg.gpu_options)
    try:
        for req in sorted(requests, key=lambda r: r.start_pts or 0):
            try:
                if copy:
                    result = _copy_clip(container, req)
                else:
                    result = _reencode_clip(container, req, is_vfr=is_vfr, avg_fps=avg_fps, cfg=cfg, codec=codec,
                                            options=options)
            except (VideoError, av.error.FFmpegError, ValueError) as e:
                result = f"encode failed: {one_line(e)}"
            yield req.clip_id, result
    finally:
        container.close()


def _mp4_holds(src) -> bool:
    """Whether the source's codec can be copied into an mp4 (H.264, HEVC, AV1, VP9, MPEG-4 part 2 can; MS Video 1,
    Theora, VP8 cannot). Clips of a source that cannot are re-encoded instead, and the worker says so once."""
    try:
        with av.open(io.BytesIO(), "w", format="mp4") as probe_out:
            probe_out.add_stream_from_template(src)
        return True
    except (ValueError, av.error.FFmpegError) as e:
        say_once(f"encode.mode copy: an mp4 cannot hold {src.codec_context.name} ({one_line(e)}): clips of such "
                 "sources are re-encoded")
        return False


def _decoded(container, stream):
    return (f for f in decode_frames(container, stream, DecodeStats()) if f.pts is not None)


def _frames_in_span(container, req: ClipRequest):
    """Decoded frames with start_pts <= pts < end_pts, after one backward seek."""
    stream = container.streams.video[0]
    frames = _decoded(container, stream)
    if req.start_pts is not None:
        container.seek(req.start_pts, stream=stream, backward=True, any_frame=False)
        frames = _decoded(container, stream)
        first = next(frames, None)
        if first is None or first.pts > req.start_pts:
            # The demuxer seeked past the start (an imprecise index), or onto frames that do not decode without
            # an earlier keyframe (a WebM without cues): read from the beginning instead.
            container.seek(0, stream=stream, backward=True, any_frame=False)
            frames = _decoded(container, stream)
        else:
            frames = itertools.chain([first], frames)
    for frame in frames:
        if req.start_pts is not None and frame.pts < req.start_pts:
            continue
        if req.end_pts is not None and frame.pts >= req.end_pts:
            return
        yield frame


def x264_options(cfg) -> dict[str, str]:
    """libx264's options from the `encode` section (`repeatable`: the macroblock tree off, see the config)."""
    options = {"crf": str(cfg.crf), "preset": cfg.preset, "threads": str(cfg.threads)}
    if cfg.repeatable:
        options["x264-params"] = "mbtree=0"
    return options


def _reencode_clip(container, req: ClipRequest, *, is_vfr: bool, avg_fps: float, cfg, codec: str,
                   options: dict[str, str]) -> EncodedClip:
    src = container.streams.video[0]
    rate, one_to_one = output_rate(avg_fps, is_vfr, cfg.max_fps, src.average_rate)
    tb = src.time_base
    buf = io.BytesIO()
    out = av.open(buf, "w", format="mp4", container_options={"fflags": "+bitexact"})
    stream = scaler = None
    written = 0
    want = max(1, round((req.end_s - req.start_s) * rate)) if not one_to_one else None
    pending = None  # resampling: the latest source frame at or before the next output time

    def emit(frame):
        nonlocal stream, scaler, written
        if stream is None:
            rot = display_rotation(frame)
            dw, dh = rotated_size(frame.width, frame.height, rot)
            w, h = output_size(dw, dh, cfg.max_short_side)
            stream = out.add_stream(codec, rate=rate)
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            stream.options = options
            scaler = FrameScaler(w, h, rot)
        f = scaler.to_frame(frame)
        f.pts, f.time_base = written, Fraction(1) / rate
        for packet in stream.encode(f):
            out.mux(packet)
        written += 1

    t0 = None
    try:
        for frame in _frames_in_span(container, req):
            if one_to_one:
                emit(frame)
                continue
            t = float(frame.pts * tb)
            t0 = t if t0 is None else t0
            # Every output tick before this frame shows the frame on screen at that tick: the pending one.
            while pending is not None and written < want and t0 + written / rate < t - 1e-6:
                emit(pending)
            pending = frame
        while pending is not None and not one_to_one and written < want:
            emit(pending)
        if stream is None:
            raise VideoError("no frames decoded in the clip's span")
        for packet in stream.encode():
            out.mux(packet)
        width, height = stream.width, stream.height
    finally:
        out.close()
    return EncodedClip(data=buf.getvalue(), codec="h264" if codec in ("libx264", "h264_nvenc") else codec,
                       width=width, height=height, fps=float(rate), num_frames=written,
                       duration_s=written / float(rate))


def _copy_clip(container, req: ClipRequest) -> EncodedClip:
    """Remuxes packets from the keyframe at or before the start up to the end: no quality loss, no re-encode."""
    src = container.streams.video[0]
    if req.start_pts is not None:
        container.seek(req.start_pts, stream=src, backward=True, any_frame=False)
    buf = io.BytesIO()
    out = av.open(buf, "w", format="mp4", container_options={"fflags": "+bitexact"})
    dst = out.add_stream_from_template(src)
    offset = first_pts = None
    count = lead = 0
    pts_seen = []
    try:
        for packet in container.demux(src):
            if packet.pts is None or packet.size == 0:
                continue
            if req.end_pts is not None:
                if packet.dts is not None and packet.dts >= req.end_pts:
                    break  # decode order has passed the span's end
                if packet.pts >= req.end_pts:
                    continue
            if offset is None:
                offset = packet.dts if packet.dts is not None else packet.pts
            first_pts = packet.pts if first_pts is None else min(first_pts, packet.pts)
            if req.start_pts is not None and packet.pts < req.start_pts:
                lead += 1
            pts_seen.append(packet.pts)
            packet.pts -= offset
            if packet.dts is not None:
                packet.dts -= offset
            packet.stream = dst
            out.mux(packet)
            count += 1
        if count == 0:
            raise VideoError("no packets in the clip's span")
    finally:
        out.close()
    fps = float(src.average_rate or 0) or 25.0
    tb = src.time_base
    end = req.end_pts if req.end_pts is not None else max(pts_seen) + round(1 / fps / tb)
    lead_s = float((req.start_pts - first_pts) * tb) if req.start_pts is not None else 0.0
    return EncodedClip(data=buf.getvalue(), codec=src.codec_context.name, width=src.codec_context.width,
                       height=src.codec_context.height, fps=fps, num_frames=count,
                       duration_s=float((end - first_pts) * tb), lead_frames=lead, lead_s=lead_s)
