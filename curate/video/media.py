"""Video I/O on PyAV: opening, probing, and a decode loop that survives damaged streams.

PyAV (rather than decord) reads the analysis pass because it gives each frame's own timestamp (correct for
variable frame rate), its display rotation, and decodes files without duration metadata; decord's index-based
access assumes a constant rate.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
from av.video.reformatter import Interpolation, VideoReformatter

# Give up on a stream after this many undecodable packets in a row: it is not damage, it is garbage.
MAX_CONSECUTIVE_DECODE_ERRORS = 100


class VideoError(Exception):
    """A source cannot be used; the message is one readable line stored in `videos.lance`."""


def one_line(exc: BaseException) -> str:
    """A single readable line for any error raised while reading a video."""
    if isinstance(exc, VideoError):
        text = str(exc)
    elif isinstance(exc, av.error.FFmpegError):
        text = f"{exc.strerror or type(exc).__name__}"
        if isinstance(exc, av.error.InvalidDataError):
            text = f"not a readable video ({text})"
    elif isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError)):
        text = str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())[:500]


def open_container(target, uri: str, *, gpu: bool = False) -> av.container.InputContainer:
    """Opens a source for reading, mapping FFmpeg's errors to one readable line; `gpu`: decode with NVDEC where
    this worker has it (curate/video/gpu.py), on the CPU otherwise.

    Raises:
        VideoError: not a media file FFmpeg can read.
    """
    try:
        if gpu:
            from curate.video.gpu import open_on_gpu

            return open_on_gpu(target)
        return av.open(target, mode="r", metadata_errors="ignore")
    except av.error.FFmpegError as e:
        raise VideoError(f"cannot open {uri.rsplit('/', 1)[-1]}: {one_line(e)}") from None


@dataclass
class Probe:
    """What the container says before decoding. Frame count and VFR are measured later by the decode."""

    container: str
    codec: str
    pix_fmt: str | None
    coded_width: int
    coded_height: int
    avg_fps: float
    real_fps: float
    duration_s: float | None
    time_base: Fraction
    expected_frames: int  # what the container claims; 0 when it does not say
    bit_rate: int | None
    has_audio: bool
    audio_codec: str | None


def probe(container: av.container.InputContainer, *, max_pixels: int) -> Probe:
    """Reads stream metadata and refuses what cannot be analysed.

    Raises:
        VideoError: no video stream, no decoder for its codec, no frame size, or a frame over `max_pixels`.
    """
    audio = container.streams.audio
    audio_codec = audio[0].codec_context.name if audio and audio[0].codec_context else None
    if not container.streams.video:
        what = f"audio only ({audio_codec})" if audio else "no streams FFmpeg can read"
        raise VideoError(f"no video stream: {what}")
    stream = container.streams.video[0]
    cc = stream.codec_context
    codec = cc.name if cc is not None else None
    if not codec or codec == "none":
        raise VideoError("unsupported video codec: FFmpeg has no decoder for this stream")
    width, height = cc.width, cc.height
    if width <= 0 or height <= 0:
        raise VideoError(f"video stream has no frame size ({codec}, {width}x{height})")
    if width * height > max_pixels:
        raise VideoError(f"frame size {width}x{height} exceeds input.max_pixels ({max_pixels})")
    avg = _rate(stream.average_rate) or _rate(stream.guessed_rate) or _rate(stream.base_rate)
    duration = None
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / av.time_base
    return Probe(
        container=container.format.name,
        codec=codec,
        pix_fmt=cc.format.name if cc.format is not None else None,
        coded_width=width,
        coded_height=height,
        avg_fps=avg,
        real_fps=_rate(stream.base_rate) or avg,
        duration_s=duration,
        time_base=stream.time_base or Fraction(1, 90000),
        expected_frames=int(stream.frames or 0),
        bit_rate=container.bit_rate or None,
        has_audio=bool(audio),
        audio_codec=audio_codec,
    )


def _rate(value) -> float:
    try:
        r = float(value) if value is not None else 0.0
    except ZeroDivisionError:
        return 0.0
    return r if math.isfinite(r) and 0 < r < 1000 else 0.0


@dataclass
class DecodeStats:
    """Damage seen while decoding: counted, kept with the video's row, never fatal on its own."""

    errors: int = 0
    first_error: str | None = None
    truncated: str | None = None


def decode_frames(container: av.container.InputContainer, stream, stats: DecodeStats) -> Iterator[av.VideoFrame]:
    """Yields decoded frames in presentation order, skipping packets that fail to decode.

    A damaged packet costs its frame(s), not the video. A demuxer error (truncated or corrupt container)
    ends the stream early with what was decoded so far. Garbage (many failures in a row) raises.

    Raises:
        VideoError: more than `MAX_CONSECUTIVE_DECODE_ERRORS` packets in a row failed.
    """
    consecutive = 0
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except av.error.FFmpegError as e:
            stats.truncated = one_line(e)
            packet = None
        try:
            frames = packet.decode() if packet is not None else stream.codec_context.decode(None)
        except av.error.FFmpegError as e:
            stats.errors += 1
            stats.first_error = stats.first_error or one_line(e)
            consecutive += 1
            if consecutive > MAX_CONSECUTIVE_DECODE_ERRORS:
                raise VideoError(f"stream does not decode: {stats.first_error}") from None
            continue
        if frames:
            consecutive = 0
        yield from frames
        if packet is None:
            return  # flushed after a demuxer error


def display_rotation(frame: av.VideoFrame) -> int:
    """Degrees counter-clockwise the frame is turned for display, snapped to 0/90/180/270."""
    return int(round((frame.rotation or 0) / 90.0)) % 4 * 90


def rotated_size(width: int, height: int, rotation: int) -> tuple[int, int]:
    return (height, width) if rotation in (90, 270) else (width, height)


def fit_within(width: int, height: int, max_side: int) -> tuple[int, int]:
    """Scales (width, height) down so the long side is at most `max_side`; even sizes; never up."""
    scale = min(1.0, max_side / max(width, height))
    return max(2, int(round(width * scale / 2)) * 2), max(2, int(round(height * scale / 2)) * 2)


class FrameScaler:
    """Converts frames to upright BGR arrays of one size, reusing one swscale context.

    `frame.reformat` builds a new scaler on every call, which costs as much as the decode itself; a kept
    `VideoReformatter` brings resizing to a few percent of it (measured on bikes.mp4: 0.48 s vs 0.28 s).
    """

    def __init__(self, display_width: int, display_height: int, rotation: int):
        self.rotation = rotation
        self.width, self.height = display_width, display_height
        self._coded = rotated_size(display_width, display_height, rotation)  # the size before turning
        self._reformatter = VideoReformatter()

    def __call__(self, frame: av.VideoFrame, fmt: str = "bgr24") -> np.ndarray:
        w, h = self._coded
        out = self._reformatter.reformat(frame, width=w, height=h, format=fmt,
                                         interpolation=Interpolation.AREA).to_ndarray()
        if self.rotation:
            out = np.ascontiguousarray(np.rot90(out, k=self.rotation // 90))
        return out

    def to_frame(self, frame: av.VideoFrame) -> av.VideoFrame:
        """An upright yuv420p frame for an encoder (turned through RGB only when the source is rotated)."""
        if self.rotation:
            return av.VideoFrame.from_ndarray(self(frame, "rgb24"), format="rgb24").reformat(format="yuv420p")
        w, h = self._coded
        return self._reformatter.reformat(frame, width=w, height=h, format="yuv420p",
                                          interpolation=Interpolation.AREA)
