"""Failures that may pass and failures that are final (issue 12): an object store that is down for the first run
is redone by the next one; a corrupt file is not, unless asked (`--retry-failed`)."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import lance
import pytest
import yaml
from s3server import MotoServer

from curate.job.failures import is_transient, with_retries

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("exc,transient", [
    (OSError("AWS Error NETWORK_CONNECTION during HeadObject operation: curlCode: 7, Couldn't connect to server"),
     True),
    (OSError(errno.EIO, "Input/output error"), True),
    (ConnectionResetError(), True),
    (TimeoutError("read timed out"), True),
    (MemoryError(), True),
    (OSError("When reading information for key 'x' in bucket 'raw': AWS Error SLOW_DOWN"), True),
    (FileNotFoundError("file not found: s3://raw/x.mp4"), False),
    (PermissionError("permission denied: /x.mp4"), False),
    (ValueError("Invalid data found when processing input"), False),
    (RuntimeError("decoded 500 of the 600 frames the container lists"), False),
])
def test_which_failures_may_pass(exc, transient):
    assert is_transient(exc) is transient


def test_with_retries_backs_off_then_gives_up():
    calls, waits = [], []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionResetError("connection reset by peer")
        return "ok"

    assert with_retries(flaky, retries=2, backoff_s=0.5, sleep=waits.append) == "ok"
    assert waits == [0.5, 1.0]
    with pytest.raises(ValueError):  # final: not retried
        with_retries(lambda: (_ for _ in ()).throw(ValueError("corrupt")), retries=5, backoff_s=1, sleep=waits.append)
    assert waits == [0.5, 1.0]


def test_object_store_down_then_up(demo_corpus, tmp_path):
    server = MotoServer()  # not started: the endpoint refuses connections
    manifest = tmp_path / "inputs.csv"
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4000))
    manifest.write_text("uri\n" + "\n".join(["s3://raw/cuts_h264.mp4", "s3://raw/short_mpeg4.avi", str(corrupt)]))
    config = tmp_path / "quick.yaml"
    config.write_text(yaml.safe_dump({"input": {"retries": 1, "retry_backoff_s": 0.1},
                                      "scoring": {"aesthetic": {"enabled": False}}, "caption": {"enabled": False}}))
    out = tmp_path / "ds"
    env = {**os.environ, **server.env, "RAY_AUTH_MODE": "disabled"}

    def run(*extra) -> str:
        proc = subprocess.run([sys.executable, "-m", "curate.cli", "run", str(manifest), "-o", str(out), "-p", "tiny",
                               "-c", str(config), "--quiet", *extra], env=env, capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        return proc.stdout

    first = run()
    assert "0 ok, 1 failed, 2 retryable" in first
    videos = {v["uri"]: v for v in lance.dataset(str(out / "videos.lance")).to_table().to_pylist()}
    assert {videos[f"s3://raw/{n}"]["status"] for n in ("cuts_h264.mp4", "short_mpeg4.avi")} == {"retryable"}
    assert videos[str(corrupt)]["status"] == "failed" and videos[str(corrupt)]["error"]

    server.start()
    try:
        server.fs().create_dir("raw")
        for name in ("cuts_h264.mp4", "short_mpeg4.avi"):
            server.upload(demo_corpus / name, f"raw/{name}")
        second = run()
        assert "2 ok, 0 failed, 0 retryable" in second and "1 skipped" in second  # the corrupt file is final
        third = run("--retry-failed")
        assert "0 ok, 1 failed, 0 retryable" in third and "2 skipped" in third
    finally:
        server.stop()
    videos = lance.dataset(str(out / "videos.lance")).to_table().to_pylist()
    assert len(videos) == 3 and sorted(v["status"] for v in videos) == ["failed", "ok", "ok"]
    cands = lance.dataset(str(out / "candidates.lance")).to_table(columns=["clip_id"]).column("clip_id").to_pylist()
    assert len(cands) == len(set(cands)) == 3 + 1  # cuts_h264 has three scenes, short_mpeg4 one
