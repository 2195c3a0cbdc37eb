"""From cut indices to scene spans: trimming at transitions and splitting scenes that are too long."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """Frames [start, end) of one scene."""

    start: int
    end: int

    @property
    def num_frames(self) -> int:
        return self.end - self.start


def make_spans(cuts: list[int], num_frames: int, frame_times: list[float], *, trim_frames: int,
               max_scene_s: float) -> list[Span]:
    """Turns cuts into spans covering the video.

    Args:
        cuts: indices of frames that start a new scene (0 and `num_frames` excluded).
        num_frames: frames decoded.
        frame_times: presentation time of each frame in seconds, plus one closing entry for the end of
            the last frame (so span durations are right for variable frame rate).
        trim_frames: frames dropped on each side of every cut (never at the video's own start or end).
        max_scene_s: longer scenes are split into the fewest equal parts that fit.

    Returns:
        Spans in order; a span trimmed to nothing is left out.
    """
    if num_frames <= 0:
        return []
    bounds = [0, *sorted(c for c in set(cuts) if 0 < c < num_frames), num_frames]
    spans = []
    for i in range(len(bounds) - 1):
        start = bounds[i] + (trim_frames if i > 0 else 0)
        end = bounds[i + 1] - (trim_frames if i + 1 < len(bounds) - 1 else 0)
        if end > start:
            spans.extend(_split(Span(start, end), frame_times, max_scene_s))
    return spans


def _split(span: Span, frame_times: list[float], max_scene_s: float) -> list[Span]:
    duration = frame_times[span.end] - frame_times[span.start]
    parts = max(1, math.ceil(duration / max_scene_s - 1e-9))
    if parts == 1 or span.num_frames < parts:
        return [span]
    # Equal durations: cut where each part's time budget runs out, so variable frame rate splits evenly too.
    t0 = frame_times[span.start]
    edges = [span.start]
    for k in range(1, parts):
        target = t0 + duration * k / parts
        idx = next(i for i in range(edges[-1] + 1, span.end) if frame_times[i] >= target - 1e-9)
        edges.append(idx)
    edges.append(span.end)
    return [Span(a, b) for a, b in zip(edges, edges[1:]) if b > a]
