"""Scene detection against ground truth: the real bikes/bunny videos and the demo corpus."""

import pytest

from curate.config import Config
from curate.job.analyze import analyze_source
from curate.video.democorpus import load_truth
from curate.video.scenes import make_spans
from curate.video.sources import Source


def starts(path, detector="adaptive", **scenes):
    cfg = Config()
    cfg.scenes.detector = detector
    for k, v in scenes.items():
        setattr(cfg.scenes, k, v)
    rows = analyze_source(Source(str(path)), cfg)
    assert rows[0]["video"]["status"] == "ok", rows[0]["video"].get("error")
    return [r["start_frame"] for r in rows], rows


@pytest.mark.parametrize("detector", ["adaptive", "content", "transnetv2"])
def test_bikes_scene_starts_exact(testdata, bikes_truth, detector):
    found, rows = starts(testdata / "videos" / "bikes.mp4", detector)
    assert found == bikes_truth["scene_starts"] == [0, 30, 76, 137, 187, 242]
    # Spans tile the video exactly, with timestamps from the stream (25 fps).
    assert [r["end_frame"] for r in rows] == [30, 76, 137, 187, 242, 250]
    assert rows[1]["start_s"] == pytest.approx(30 / 25)
    assert rows[-1]["end_s"] == pytest.approx(10.0)


@pytest.mark.parametrize("detector", ["adaptive", "content"])
def test_bigbuckbunny_is_one_scene(testdata, detector):
    found, rows = starts(testdata / "videos" / "bigbuckbunny.mp4", detector)
    assert found == [0]
    assert rows[0]["num_frames"] == 132


def test_demo_corpus_cuts_within_one_frame_and_no_false_cuts(demo_corpus):
    for truth in load_truth(demo_corpus):
        found, rows = starts(demo_corpus / truth.file)
        assert rows[0]["video"]["num_frames"] == truth.num_frames, truth.file
        assert len(found) == len(truth.scene_starts), (truth.file, found, truth.scene_starts)
        for f, t in zip(found, truth.scene_starts):
            assert abs(f - t) <= 1, (truth.file, found, truth.scene_starts)
        inner = [f for f in found if f > 0]
        for a, b in truth.fades + truth.pans:
            assert not [c for c in inner if a < c < b - 1], (truth.file, "false cut inside fade/pan", found)


def test_demo_truth_covers_what_the_issue_lists(demo_corpus):
    truth = load_truth(demo_corpus)
    assert any(len(t.scene_starts) > 1 for t in truth)
    assert any(t.fades for t in truth) and any(t.pans for t in truth)
    assert any(t.logo for t in truth) and any(t.near_black for t in truth)
    kinds = {k for t in truth for k in t.scene_kinds}
    assert {"moving", "static", "pan", "fade", "dark"} <= kinds
    assert len({(t.width, t.height) for t in truth}) >= 4
    assert len({t.fps for t in truth}) >= 4
    assert len({t.file.rsplit(".", 1)[1] for t in truth}) >= 4
    assert any(t.num_frames / t.fps < Config().policy.min_clip_s for t in truth)


CFR = [i / 25 for i in range(101)]  # 100 frames + closing time


@pytest.mark.parametrize("cuts, trim, max_s, expected", [
    ([], 0, 30.0, [(0, 100)]),
    ([40], 0, 30.0, [(0, 40), (40, 100)]),
    ([40], 2, 30.0, [(0, 38), (42, 100)]),  # trimmed at the cut only, not at the video's ends
    ([40, 41], 1, 30.0, [(0, 39), (42, 100)]),  # a span trimmed to nothing disappears
    ([], 0, 1.0, [(0, 25), (25, 50), (50, 75), (75, 100)]),  # 4 s split into 1 s parts
    ([], 0, 1.5, [(0, 34), (34, 67), (67, 100)]),  # equal parts, never longer than max
    ([0, 100, 150], 0, 30.0, [(0, 100)]),  # out-of-range cuts ignored
])
def test_spans(cuts, trim, max_s, expected):
    spans = make_spans(cuts, 100, CFR, trim_frames=trim, max_scene_s=max_s)
    assert [(s.start, s.end) for s in spans] == expected
    for s in spans:
        assert CFR[s.end] - CFR[s.start] <= max_s + 1e-9


def test_split_uses_timestamps_for_variable_frame_rate():
    times = [0.0]
    for i in range(60):  # 20 ms and 60 ms frames alternating: 2.4 s
        times.append(times[-1] + (0.02 if i % 2 == 0 else 0.06))
    spans = make_spans([], 60, times, trim_frames=0, max_scene_s=1.2)
    assert len(spans) == 2
    durations = [times[s.end] - times[s.start] for s in spans]
    assert all(d <= 1.2 + 1e-9 for d in durations)
    assert durations[0] == pytest.approx(1.2, abs=0.07)


def test_long_scene_split_in_a_real_video(testdata):
    found, rows = starts(testdata / "videos" / "bigbuckbunny.mp4", max_scene_s=2.0)
    assert found == [0, 44, 88]  # 132 frames at 25 fps = 5.28 s -> three 1.76 s parts
    assert all(r["duration_s"] <= 2.0 for r in rows)


def test_transnetv2_in_windows_matches_the_whole_video_call(testdata):
    """Frames fed one at a time, the network run window by window: the same predictions as the package's own
    whole-video `predict_frames`, with never more than a window and a step of frames held."""
    import av
    import cv2
    import numpy as np
    import torch

    from curate.config import ScenesConfig
    from curate.video.scenes.transnet import INPUT_H, INPUT_W, STEP, WINDOW, TransNetV2Cuts

    with av.open(str(testdata / "videos" / "bikes.mp4")) as c:
        frames = [cv2.resize(f.to_ndarray(format="bgr24"), (INPUT_W, INPUT_H), interpolation=cv2.INTER_AREA)
                  for f in c.decode(video=0)]
    for n in (len(frames), 173, 50, 7):  # a multiple of the step, and not
        detector, held = TransNetV2Cuts(ScenesConfig()), 0
        for i, f in enumerate(frames[:n]):
            detector.push(i, f)
            held = max(held, detector.buffered())
        cuts = detector.finish()
        model = TransNetV2Cuts._load()
        whole = torch.from_numpy(np.stack([np.ascontiguousarray(f[:, :, ::-1]) for f in frames[:n]]))
        single, _ = model.predict_frames(whole, quiet=True)
        expected = sorted(int(s) for s, _ in model.predictions_to_scenes(single.numpy(), threshold=0.5) if s > 0)
        assert cuts == expected, n
        assert held <= WINDOW + STEP


@pytest.mark.parametrize("name", ["AdaptiveDetector", "ContentDetector"])
def test_opencv_frame_score_equals_pyscenedetects_own(testdata, name):
    """The OpenCV frame score (curate/video/scenes/pyscene.py) is PySceneDetect's, value for value, on real
    frames with cuts in them: the speed-up changes no cut anywhere."""
    import av
    import cv2
    import scenedetect.detectors as sd
    from scenedetect.common import FrameTimecode

    from curate.video.scenes import pyscene

    ours, theirs = getattr(pyscene, f"Fast{name}")(), getattr(sd, name)()
    with av.open(str(testdata / "videos" / "bikes.mp4")) as c:
        for i, frame in enumerate(c.decode(video=0)):
            small = cv2.resize(frame.to_ndarray(format="bgr24"), (256, 108), interpolation=cv2.INTER_AREA)
            tc = FrameTimecode(i, fps=25.0)
            assert ours._calculate_frame_score(tc, small) == theirs._calculate_frame_score(tc, small), i
    assert i == 249


def test_a_failure_in_the_per_frame_work_ends_the_pass_with_its_reason(testdata, monkeypatch):
    """The per-frame work runs on a thread of its own beside the decoder: an error there stops the pass (no hang,
    no half-read video passed on as whole) and becomes the video's one-line reason."""
    import curate.job.analyze as analyze
    from curate.video.scenes.base import CutDetector

    class Breaks(CutDetector):
        name = "breaks"

        def push(self, index, frame_bgr):
            if index == 40:
                raise RuntimeError("detector broke on frame 40")

        def finish(self):
            return []

    monkeypatch.setattr(analyze, "make_detector", lambda cfg, fps: Breaks())
    [row] = analyze_source(Source(str(testdata / "videos" / "bikes.mp4")), Config())
    assert row["clip_id"] is None and row["video"]["status"] == "failed"
    assert row["video"]["error"] == "RuntimeError: detector broke on frame 40"
