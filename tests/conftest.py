"""Shared fixtures: the real test videos, the demo corpus, one Ray per session, one demo dataset (read-only: a
test that writes works on a copy of it)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# No weights can be downloaded on these machines: make hub lookups fail at once instead of retrying.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
TESTDATA = REPO.parent / "shared" / "testdata"


@pytest.fixture(scope="session")
def testdata() -> Path:
    if not (TESTDATA / "videos" / "bikes.mp4").is_file():
        pytest.fail(f"real test videos not found at {TESTDATA} (the repo expects ../shared beside it)")
    return TESTDATA


@pytest.fixture(scope="session")
def bikes_truth(testdata) -> dict:
    return json.loads((testdata / "videos" / "bikes.cuts.json").read_text())


@pytest.fixture(scope="session")
def demo_corpus(tmp_path_factory) -> Path:
    from curate.video.democorpus import make_demo_corpus

    d = tmp_path_factory.mktemp("demo_corpus")
    make_demo_corpus(d)
    return d


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for the whole session: starting it costs seconds and ~3 GB."""
    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True, logging_level="WARNING")
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def demo_dataset(demo_corpus, ray_session, tmp_path_factory):
    """The demo corpus curated once with the tiny profile: (output dir, summary). Shared by every module, so no
    test writes to it: tests that re-run, refilter, tag or clean up work on `demo_copy` (or `copy_demo`)."""
    import curate

    out = tmp_path_factory.mktemp("demo_dataset") / "ds"
    summary = curate.run([str(demo_corpus)], str(out), profile="tiny", progress=False)
    return out, summary


@pytest.fixture(scope="session")
def copy_demo(demo_dataset):
    """`copy_demo(parent)` copies the demo dataset to `parent / "ds"` and returns that path: a private dataset
    for a test or fixture that writes (a Lance dataset is a plain directory; its tags and versions come along)."""

    def copy(parent: Path) -> Path:
        out = Path(parent) / "ds"
        shutil.copytree(demo_dataset[0], out)
        return out

    return copy


@pytest.fixture()
def demo_copy(copy_demo, tmp_path) -> Path:
    """A private copy of the demo dataset in this test's tmp_path (`tmp_path / "ds"`)."""
    return copy_demo(tmp_path)
