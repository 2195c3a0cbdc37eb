"""Inputs and output on an S3-compatible object store (moto's server on loopback), through the real CLI."""

import os
import socket
import subprocess
import sys
import time

import lance
import pyarrow.fs as pafs
import pytest


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A moto S3 server on 127.0.0.1 for this module only; env for boto-style clients, pyarrow and Lance."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint, "AWS_ALLOW_HTTP": "true"}
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("moto server did not start")
                time.sleep(0.2)
        fs = pafs.S3FileSystem(endpoint_override=f"127.0.0.1:{port}", scheme="http", access_key="test",
                               secret_key="test", region="us-east-1", allow_bucket_creation=True)
        fs.create_dir("raw")
        fs.create_dir("curated")
        yield fs, env
    finally:
        server.terminate()
        server.wait(timeout=30)


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

    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        videos = lance.dataset("s3://curated/v1/videos.lance").to_table().to_pylist()
        clips = lance.dataset("s3://curated/v1/clips.lance")
        cands = lance.dataset("s3://curated/v1/candidates.lance").count_rows()
        blob = clips.take_blobs("video", indices=[0])[0].read()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    by_name = {v["uri"].rsplit("/", 1)[1]: v for v in videos}
    assert by_name["bikes.mp4"]["uri"] == "s3://raw/videos/sub/bikes.mp4"
    assert by_name["bikes.mp4"]["num_scenes"] == 6
    assert by_name["broken.mp4"]["status"] == "failed"
    assert cands == 6 + 3 + 1
    assert clips.count_rows() == 5 + 3  # the 10-frame video and bikes' 8-frame last scene are too short
    assert blob[4:8] == b"ftyp"  # an mp4
