"""Weight-free scorers on frames with known properties."""

import numpy as np
import pytest
from synthetic import H, W, camera, times

from filters.motion import motion_scores
from filters.quality import quality_scores


@pytest.mark.parametrize("kind", ["pan_right", "pan_left", "tilt_up", "tilt_down", "zoom_in", "zoom_out"])
def test_camera_motion_labels(kind):
    speed = 0.04 if kind.startswith("zoom") else 6
    frames = camera(kind, speed)
    assert motion_scores(frames, times(len(frames)))["camera_motion"] == kind


def test_static_scene_scores_near_zero():
    frames = camera("static", 0)
    m = motion_scores(frames, times(len(frames)))
    assert m["camera_motion"] == "static"
    assert m["motion"] < 0.002 and m["moving_fraction"] < 0.01


def test_motion_increases_with_translation_speed():
    scores = [motion_scores(f, times(len(f)))["motion"] for f in (camera("pan_right", v) for v in (1, 3, 6, 12))]
    assert all(b > a for a, b in zip(scores, scores[1:])), scores
    # Normalised: 6 px/frame at 4 samples/s over a 367 px diagonal is about 0.065 diagonals per second.
    assert scores[2] == pytest.approx(6 * 4 / np.hypot(W, H), rel=0.25)


def test_jitter_separates_shake_from_a_smooth_pan():
    smooth = camera("pan_right", 6, n=12)
    rng = np.random.default_rng(3)
    big = camera("static", 0, n=1)[0]
    pad = np.pad(big, ((20, 20), (20, 20), (0, 0)), mode="reflect")
    shaky = []
    for _ in range(12):
        dx, dy = rng.integers(-8, 9, size=2)
        shaky.append(np.ascontiguousarray(pad[20 + dy:20 + dy + H, 20 + dx:20 + dx + W]))
    j_smooth = motion_scores(smooth, times(12))["jitter"]
    j_shaky = motion_scores(shaky, times(12))["jitter"]
    assert j_smooth < 0.3 < j_shaky


def test_too_few_frames_give_no_motion():
    assert motion_scores(camera("static", 0, n=1), [0.0])["motion"] is None


def test_quality_measures():
    sharp = camera("static", 0, n=4)
    blurred = [np.ascontiguousarray(np.repeat(np.repeat(f[::4, ::4], 4, 0), 4, 1)) for f in sharp]
    q_sharp, q_blur = quality_scores(sharp), quality_scores(blurred)
    assert q_sharp["sharpness"] > 2 * q_blur["sharpness"]
    assert q_sharp["frozen_fraction"] == 1.0  # identical samples
    assert quality_scores(camera("pan_right", 6, n=4))["frozen_fraction"] == 0.0

    black = [np.zeros((H, W, 3), np.uint8)] * 3
    q = quality_scores(black)
    assert q["dark_fraction"] == 1.0 and q["blank_fraction"] == 1.0 and q["content_box"] == [0, 0, 1, 1]
    white = [np.full((H, W, 3), 255, np.uint8)]
    assert quality_scores(white)["bright_fraction"] == 1.0


def test_letterbox_and_pillarbox_bars_give_the_content_box():
    frames = [f.copy() for f in camera("pan_right", 6, n=4)]
    for f in frames:
        f[:20] = 0
        f[-20:] = 0  # letterbox: 20 px of 180 top and bottom
        f[:, :32] = 0  # pillarbox on the left only: 32 px of 320
    box = quality_scores(frames)["content_box"]
    assert box == pytest.approx([32 / W, 20 / H, 1.0, 1 - 20 / H])
    assert quality_scores(camera("pan_right", 6, n=4))["content_box"] == [0.0, 0.0, 1.0, 1.0]


def test_no_frames():
    assert quality_scores([])["sharpness"] is None
