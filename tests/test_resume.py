"""Kill a real run with SIGKILL partway (twice), run it again: the same rows as an uninterrupted run."""

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time

import lance
import pytest

import curate
from curate.config import load_config

IGNORED = {"run_id", "processed_at"}  # differ between runs by design
KEYS = {"videos": "video_id", "candidates": "clip_id", "clips": "clip_id"}
LEASE_S = 1.5


@pytest.fixture(scope="module")
def big_corpus(demo_corpus, tmp_path_factory):
    """Three copies of the demo corpus (21 videos): enough work to be killed in the middle of."""
    root = tmp_path_factory.mktemp("big")
    for i in range(3):
        shutil.copytree(demo_corpus, root / f"copy{i}")
    return root


@pytest.fixture(scope="module")
def config_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("cfg") / "resume.yaml"
    # Commit after every finished video, and let the model actors take blocks as they come (their default
    # batches release videos in bursts), so a kill lands between small steps. A short run lease, so that the
    # next run may take a killed one for dead at once (LEASE_S).
    p.write_text(f"profile: tiny\ncommit_interval_s: 0\nheartbeat_interval_s: 0.5\nrun_lease_s: {LEASE_S}\n"
                 "resources: {aesthetic: {batch_size: null}, caption: {batch_size: null}}\n")
    return p


def snapshot(out):
    """Every table as {id: row}, blobs replaced by their hash."""
    snap = {}
    for name, key in KEYS.items():
        ds = lance.dataset(str(out / f"{name}.lance"))
        cols = [c for c in ds.schema.names if c not in IGNORED and c != "video"]
        rows = {r[key]: r for r in ds.to_table(columns=cols).to_pylist()}
        assert len(rows) == ds.count_rows(), f"duplicate {key} in {name}"
        if name == "clips":
            ids = ds.to_table(columns=["clip_id"]).column("clip_id").to_pylist()
            for cid, blob in zip(ids, ds.take_blobs("video", indices=list(range(len(ids))))):
                rows[cid]["video_sha"] = hashlib.sha256(blob.read()).hexdigest()
        snap[name] = rows
    return snap


def start_run(corpus, out, config_file):
    cmd = [sys.executable, "-m", "curate.cli", "run", str(corpus), "-o", str(out), "-c", str(config_file),
           "--quiet"]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    # Own process group, so the kill takes Ray's local processes (raylet, workers) down with the driver.
    return subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)


def finished_videos(out) -> int:
    try:
        return lance.dataset(str(out / "videos.lance")).count_rows()
    except (ValueError, OSError):
        return 0


def kill_after(proc, out, at_least: int, timeout_s: float = 300) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if finished_videos(out) >= at_least:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            time.sleep(LEASE_S)  # its heartbeat is now stale: the next run takes it for dead
            return finished_videos(out)  # what was really committed when the kill landed
        if proc.poll() is not None:
            pytest.fail(f"run ended before it could be killed:\n{proc.stdout.read().decode()[-3000:]}")
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    pytest.fail("run made no progress to kill")


def test_sigkill_and_resume_gives_the_same_rows(big_corpus, config_file, tmp_path, ray_session):
    reference = tmp_path / "reference"
    curate.run([str(big_corpus)], str(reference), config=load_config(config_file), progress=False)
    expected = snapshot(reference)
    assert len(expected["videos"]) == 21

    out = tmp_path / "killed"
    first = kill_after(start_run(big_corpus, out, config_file), out, at_least=2)
    second = kill_after(start_run(big_corpus, out, config_file), out, at_least=first + 2)
    assert 2 <= first < second < 21, (first, second)

    final = start_run(big_corpus, out, config_file)
    log = final.communicate(timeout=600)[0].decode()
    assert final.returncode == 0, log[-3000:]
    assert f"{second} skipped" in log

    got = snapshot(out)
    for name in KEYS:
        assert got[name].keys() == expected[name].keys(), name
        for key, row in expected[name].items():
            assert got[name][key] == row, (name, key)
    runs = lance.dataset(str(out / "runs.lance")).to_table().to_pylist()
    # The killed runs were recorded as running; the next run found their heartbeats stale.
    assert sorted(r["status"] for r in runs) == ["completed", "interrupted", "interrupted"]
