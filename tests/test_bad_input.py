"""Every kind of bad input gets a row with a readable reason (or `ok` with what was salvaged); nothing raises."""

import re

import pytest
from badfiles import make_bad_files

from curate.config import Config
from curate.job.analyze import analyze_source, decode_jpeg
from curate.video.sources import Source


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    return make_bad_files(tmp_path_factory.mktemp("bad"))


# name -> (status, pattern the error (failed) or warning (ok) must match; None: no warning)
EXPECTED = {
    "zero_byte": ("failed", r"^empty file \(0 bytes\)$"),
    "text": ("failed", r"not a readable video"),
    "truncated": ("failed", r"not a readable video"),
    "truncated_faststart": ("ok", r"salvaged \d+ frames; stream ended early"),
    "audio_only": ("failed", r"^no video stream: audio only \(aac\)$"),
    "one_frame": ("ok", None),
    "unsupported_codec": ("failed", r"unsupported video codec"),
    "corrupt_middle": ("ok", r"salvaged \d+ frames; \d+ packets failed to decode"),
    "rotated": ("ok", None),
    "vfr": ("ok", None),
    "huge": ("failed", r"frame size 8208x8208 exceeds input.max_pixels"),
    "directory": ("failed", r"^is a directory"),
    "missing": ("failed", r"^file not found"),
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_input_gets_a_clear_row(bad, name):
    rows = analyze_source(Source(str(bad[name])), Config())
    info = rows[0]["video"]
    status, pattern = EXPECTED[name]
    assert info["status"] == status, info
    message = info.get("error") if status == "failed" else info.get("warning")
    if pattern is None:
        assert message is None, message
    else:
        assert message and re.search(pattern, message), message
        assert "\n" not in message and len(message) <= 500
    if status == "failed":
        assert len(rows) == 1 and rows[0]["clip_id"] is None
    else:
        assert rows and all(r["clip_id"] for r in rows)
        assert sum(r["num_frames"] for r in rows) == info["num_frames"]


def test_salvaged_video_reports_its_damage(bad):
    info = analyze_source(Source(str(bad["corrupt_middle"])), Config())[0]["video"]
    assert info["decode_errors"] > 0
    assert 0 < info["num_frames"] < 100


def test_one_frame_video(bad):
    rows = analyze_source(Source(str(bad["one_frame"])), Config())
    assert len(rows) == 1 and rows[0]["num_frames"] == 1
    assert rows[0]["duration_s"] == pytest.approx(1 / 25)
    assert len(rows[0]["keyframes"]) == 1


def test_rotated_video_is_analysed_upright(bad):
    rows = analyze_source(Source(str(bad["rotated"])), Config())
    info = rows[0]["video"]
    assert (info["width"], info["height"], info["rotation"]) == (96, 160, 90)
    key = decode_jpeg(rows[0]["keyframes"][0])
    assert key.shape[:2] == (160, 96)  # portrait, as displayed
    # The source's red block sits top-left; turned 90 degrees counter-clockwise it is bottom-left.
    red = (key[..., 2] > 200) & (key[..., 1] < 60) & (key[..., 0] < 60)
    h, w = red.shape
    assert red[h // 2:, : w // 2].mean() > 0.2  # the block covers a quarter of that quadrant
    assert red[: h // 2, :].mean() < 0.02 and red[:, w // 2:].mean() < 0.02


def test_variable_frame_rate_uses_real_timestamps(bad):
    rows = analyze_source(Source(str(bad["vfr"])), Config())
    info = rows[0]["video"]
    assert info["is_vfr"] is True
    assert info["num_frames"] == 60
    # 30 pairs of 20 ms + 60 ms frames = 2.4 s (the last frame lasts the median 40 ms).
    assert info["duration_s"] == pytest.approx(2.4, abs=0.05)
    assert rows[0]["end_s"] == pytest.approx(info["duration_s"])


def test_unreadable_manifest_entries(tmp_path, bad):
    from curate.video.sources import expand_inputs

    manifest = tmp_path / "m.csv"
    manifest.write_text(f"uri,license\n{bad['missing']},cc-by\n{bad['one_frame']},cc0\n")
    sources = expand_inputs([str(manifest)], extensions=Config().input.extensions)
    assert [s.meta["license"] for s in sources] == ["cc-by", "cc0"]
    info = analyze_source(sources[0], Config())[0]["video"]
    assert info["status"] == "failed" and info["error"].startswith("file not found")
    assert '"license": "cc-by"' in info["source_meta"]
