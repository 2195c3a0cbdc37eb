"""Inputs and output on an S3-compatible object store (moto's server on loopback), through the real CLI."""

import os
import subprocess
import sys

import lance
import pytest
from s3server import MotoServer, environ


@pytest.fixture(scope="module")
def s3():
    """A moto S3 server on 127.0.0.1 for this module only; env for boto-style clients, pyarrow and Lance."""
    server = MotoServer().start()
    try:
        fs = server.fs()
        fs.create_dir("raw")
        fs.create_dir("curated")
        yield fs, server.env
    finally:
        server.stop()


def test_job_reads_and_writes_object_storage(s3, demo_corpus, testdata, tmp_path):
    by_length = tmp_path / "by_length.yaml"  # only length decides, so the counts below are exact
    by_length.write_text("policy: {min_motion: null, max_watermark_prob: null, max_text_area: null,\n"
                         "         max_persistent_text_area: null, max_dark_fraction: null,\n"
                         "         max_bright_fraction: null, max_blank_fraction: null}\n")
    fs, env = s3
    for name in ("cuts_h264.mp4", "short_mpeg4.avi"):
        with fs.open_output_stream(f"raw/videos/{name}") as f:
            f.write((demo_corpus / name).read_bytes())
    with fs.open_output_stream("raw/videos/sub/bikes.mp4") as f:
        f.write((testdata / "videos" / "bikes.mp4").read_bytes())
    with fs.open_output_stream("raw/videos/broken.mp4") as f:
        f.write(b"not a video")

    cmd = [sys.executable, "-m", "curate.cli", "run", "s3://raw/videos", "-o", "s3://curated/v1", "-p", "tiny",
           "--quiet", "-c", str(by_length)]
    proc = subprocess.run(cmd, env={**os.environ, **env, "RAY_AUTH_MODE": "disabled"}, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "3 ok, 1 failed" in proc.stdout

    with environ(env):
        videos = lance.dataset("s3://curated/v1/videos.lance").to_table().to_pylist()
        clips = lance.dataset("s3://curated/v1/clips.lance")
        cands = lance.dataset("s3://curated/v1/candidates.lance").count_rows()
        blob = clips.take_blobs("video", indices=[0])[0].read()
    by_name = {v["uri"].rsplit("/", 1)[1]: v for v in videos}
    assert by_name["bikes.mp4"]["uri"] == "s3://raw/videos/sub/bikes.mp4"
    assert by_name["bikes.mp4"]["num_scenes"] == 6
    assert by_name["broken.mp4"]["status"] == "failed"
    assert cands == 6 + 3 + 1
    assert clips.count_rows() == 5 + 3  # the 10-frame video and bikes' 8-frame last scene are too short
    assert blob[4:8] == b"ftyp"  # an mp4
