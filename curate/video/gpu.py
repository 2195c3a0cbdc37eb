"""NVIDIA's video engines through PyAV's bundled FFmpeg: NVDEC (FFmpeg's CUDA hwaccel) for decoding and NVENC
(`h264_nvenc`) for encoding, chosen by config, with a clean fallback to the CPU.

`auto` uses the GPU where the stage was given one (`resources.<stage>.num_gpus > 0`): a stage with no GPU never
tries. Where the engine cannot be had (no driver, no device, a GPU without NVENC sessions left, a stream NVDEC
does not take), the stage says why once per worker process and goes on with the CPU codecs: the job never fails
for it. Decoded frames come back to system memory (as NV12 or YUV 4:2:0), so everything after the decoder is the
same code on both paths.
"""

from __future__ import annotations

import io
from functools import lru_cache

import av

from curate.common.once import say_once


def wants_gpu(device: str, stage_gpus: float) -> bool:
    """Whether a stage should try the GPU engines: `cuda` always, `auto` where the stage has a GPU."""
    return device == "cuda" or (device == "auto" and stage_gpus > 0)


def open_on_gpu(target):
    """`av.open` with NVDEC (software decoding where NVDEC does not take the stream). Where CUDA decoding cannot be
    had here, the source is opened for the CPU and the reason logged once; a source that does not open either way
    raises FFmpeg's error (it is the file, not the GPU)."""
    from av.codec.hwaccel import HWAccel

    try:
        return av.open(target, mode="r", metadata_errors="ignore",
                       hwaccel=HWAccel("cuda", allow_software_fallback=True))
    except (av.error.FFmpegError, OSError) as e:
        reason = _reason(e)
    if hasattr(target, "seek"):
        target.seek(0)
    container = av.open(target, mode="r", metadata_errors="ignore")
    say_once(f"NVDEC (CUDA decoding) is not available in this worker ({reason}): decoding on the CPU")
    return container


@lru_cache(maxsize=4)
def encoder_available(codec: str) -> str | None:
    """None when `codec` opens and encodes a frame in this process, else the reason (cached per process: an
    NVENC session is opened once to find out)."""
    import numpy as np

    try:
        with av.open(io.BytesIO(), "w", format="mp4") as out:
            stream = out.add_stream(codec, rate=30)
            stream.width, stream.height, stream.pix_fmt = 256, 144, "yuv420p"
            frame = av.VideoFrame.from_ndarray(np.zeros((144 * 3 // 2, 256), np.uint8), format="yuv420p")
            for packet in [*stream.encode(frame), *stream.encode()]:
                out.mux(packet)
    except (av.error.FFmpegError, OSError, ValueError) as e:
        return _reason(e)
    return None


def gpu_encoder(codec: str) -> bool:
    """Whether `codec` (h264_nvenc) can be used here; logs the fallback once when it cannot."""
    reason = encoder_available(codec)
    if reason is not None:
        say_once(f"{codec} (NVENC) is not available in this worker ({reason}): encoding with libx264")
    return reason is None


def _reason(e: BaseException) -> str:
    text = getattr(e, "strerror", None) or str(e) or type(e).__name__
    return " ".join(str(text).split())[:200]
