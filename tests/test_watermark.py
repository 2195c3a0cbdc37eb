"""The logo/watermark heuristic on real footage: silent on clean real videos, sees a textless logo where the
picture around it changes, and boxes it in the right corner."""

import numpy as np
import pytest
from burnin import Overlay, burn, clean_videos, getty_mask, overlay_box

from curate.config import Config
from curate.job.analyze import analyze_source, decode_jpeg
from curate.video.sources import Source
from filters.picks import spread
from filters.watermark import FRAMES, OverlayDetector


def _probs(path) -> list[dict]:
    rows = [r for r in analyze_source(Source(str(path)), Config()) if r["clip_id"] is not None]
    return [OverlayDetector()([decode_jpeg(b) for b in spread(r["samples"], FRAMES)]) for r in rows]


def test_silent_on_every_labelled_real_video(testdata):
    """Static cameras with motion in part of the frame, flat animation, screens: no overlay found (the old
    persistent-edges detector scored 0.93-1.00 on eight of these)."""
    loud = {}
    for name, label in clean_videos(testdata).items():
        if label["overlay"] is True:
            continue  # planets and the slide carry text overlays: OCR's job (tests/test_filters_real.py)
        probs = [p["watermark_prob"] for p in _probs(testdata / "real" / name)]
        if max(probs) >= 0.5:
            loud[name] = probs
    assert not loud, loud


def _samples(path) -> list:
    rows = [r for r in analyze_source(Source(str(path)), Config()) if r["clip_id"] is not None]
    return [decode_jpeg(b) for b in rows[0]["samples"]]


@pytest.mark.parametrize("background", ["cartoon3d_msvideo1_3.mkv", "visualizer_2.mp4"])
def test_textless_emblem_wherever_the_picture_around_it_changes(background, testdata, tmp_path):
    """An emblem in each corner of a real animation: wherever the clean footage changes around that corner most of
    the time (measured on the same footage with the overlay fully transparent), it is found, in that corner; the
    clean footage itself never scores as an overlay."""
    from filters.watermark import surround_changes

    expected = found = 0
    for corner in ("tl", "tr", "bl", "br"):
        ov = Overlay("emblem", corner, size=0.15, opacity=0.6)
        clean = burn(testdata / "real" / background, tmp_path / f"clean-{corner}.mp4",
                     Overlay("emblem", corner, size=0.15, opacity=0.0), max_s=8.0)
        truth = overlay_box(ov, 320, 240)
        [clean_out] = _probs(clean)
        assert clean_out["watermark_prob"] < 0.5, (corner, clean_out)
        if surround_changes(_samples(clean), truth) < 0.7:
            continue  # a corner that stays still much of the time: the documented blind spot
        expected += 1
        [out] = _probs(burn(testdata / "real" / background, tmp_path / f"{corner}.mp4", ov, max_s=8.0))
        box = out["watermark_box"]
        if out["watermark_prob"] > 0.5 and box:
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            found += truth[0] - 0.05 <= cx <= truth[2] + 0.05 and truth[1] - 0.05 <= cy <= truth[3] + 0.05
    assert expected >= 1
    assert found >= 0.9 * expected, (found, expected)


@pytest.mark.parametrize("background", ["visualizer_1.mp4", "cartoon3d_msvideo1_2.mkv"])
def test_the_real_getty_watermark_where_the_picture_around_it_changes(background, testdata, tmp_path):
    """The real Getty Images text band, bottom right, where these animations change around it: found there. (Over
    the same four animations it is found in 2 of 16 corner placements: elsewhere it merges with the scene's own
    still structure, or the corner is still.)"""
    ov = Overlay("getty", "br", size=0.07, opacity=0.6)
    getty = getty_mask(testdata)
    [out] = _probs(burn(testdata / "real" / background, tmp_path / "getty.mp4", ov, max_s=8.0, getty=getty))
    assert out["watermark_prob"] > 0.5, out
    box, truth = out["watermark_box"], overlay_box(ov, 320, 240, getty)
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    assert truth[0] <= cx <= truth[2] and truth[1] <= cy <= truth[3], (box, truth)


def test_too_few_frames():
    assert OverlayDetector()([np.zeros((180, 320, 3), np.uint8)])["watermark_prob"] is None
