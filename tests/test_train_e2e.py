"""End to end on the real curation job's output: the trainer's CLI, Ray Train, and notebooks/train.ipynb."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import lance
import pytest
from click.testing import CliRunner

from curate.store.lance_store import LanceStore
from curate.store.versions import resolve
from train import checkpoint
from train.__main__ import main

REPO = Path(__file__).resolve().parent.parent
TINY = str(REPO / "configs" / "train_tiny.yaml")
FILTER = "num_frames >= 40"


def _selection(demo_dataset) -> tuple[Path, str, int, int]:
    """(dataset dir, run tag, clips.lance version of the tag, clips matching FILTER there)."""
    out, summary = demo_dataset
    version = resolve(LanceStore(str(out)), summary.tag)["clips"]
    clips = lance.dataset(str(out / "clips.lance"), version=summary.tag)
    expected = clips.count_rows(filter=FILTER)
    assert 0 < expected < clips.count_rows(), "the filter should keep some clips and drop others"
    return out, summary.tag, version, expected


@pytest.mark.slow
def test_cli_trains_on_the_demo_job_through_a_tag_and_a_filter(demo_dataset, tmp_path):
    out, tag, version, expected = _selection(demo_dataset)
    runner = CliRunner()
    common = ["-c", TINY, "--dataset", str(out), "--filter", FILTER, "--steps", "3", "--set", "run.log_every=1"]
    r = runner.invoke(main, ["vae", *common, "--tag", tag, "--out", str(tmp_path / "vae")])
    assert r.exit_code == 0, r.output
    assert f"{expected} clips from {out} (clips.lance v{version}, filter '{FILTER}')" in r.output
    assert "step 3/3" in r.output and "latent_scale" in r.output
    vae_ckpt = tmp_path / "vae" / "checkpoints" / "last.pt"

    # The DiT reads the same selection by version number, decoding in two spawned loader workers.
    r = runner.invoke(main, ["dit", *common, "--version", str(version), "--vae", str(vae_ckpt),
                             "--out", str(tmp_path / "dit"), "--set", "data.num_workers=2"])
    assert r.exit_code == 0, r.output
    state = checkpoint.load(tmp_path / "dit" / "checkpoints" / "last.pt")
    assert state["step"] == 3 and state["model_profile"] == "tiny"
    assert state["dataset"] == {"uri": str(out), "ref": version, "clips_version": version, "filter": FILTER,
                                "latents": None}

    r = runner.invoke(main, ["sample", str(tmp_path / "dit" / "checkpoints" / "last.pt"), "--prompt", "a street",
                             "--out", str(tmp_path / "samples"), "--steps", "2", "--width", "48"])
    assert r.exit_code == 0, r.output
    with av.open(r.output.strip().splitlines()[-1]) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == 9 and (frames[0].width, frames[0].height) == (48, 32)

    r = runner.invoke(main, ["vae", *common, "--tag", "no-such-tag", "--out", str(tmp_path / "bad")])
    assert r.exit_code == 2 and "error: no tag 'no-such-tag'" in r.output


def test_python_m_train_and_config_errors():
    r = subprocess.run([sys.executable, "-m", "train", "--help"], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0 and all(cmd in r.stdout for cmd in ("vae", "dit", "fit", "cache-latents", "sample"))
    r = CliRunner().invoke(main, ["config", "-c", TINY, "--set", "data.num_frames=8"])
    assert r.exit_code == 2 and "num_frames must be 1 + k * 4" in r.output
    r = CliRunner().invoke(main, ["dit", "-c", TINY, "--version", "3", "--tag", "x"])
    assert r.exit_code == 2 and "not both" in r.output


@pytest.mark.slow
def test_ray_train_runs_the_same_loop(demo_dataset, ray_session, tmp_path):
    """One CPU worker through ray.train.torch.TorchTrainer, two steps."""
    from train.config import load_config
    from train.ray_train import fit_with_ray

    out, tag, _, _ = _selection(demo_dataset)
    cfg = load_config(TINY, {"data.dataset": str(out), "data.version": tag, "data.filter": FILTER,
                             "run.out_dir": str(tmp_path / "ray"), "run.steps": 2, "run.log_every": 1})
    result = fit_with_ray(cfg, "vae", num_workers=1)
    assert result.error is None
    state = checkpoint.load(tmp_path / "ray" / "checkpoints" / "last.pt")
    assert state["step"] == 2 and state["kind"] == "vae"
    assert len((tmp_path / "ray" / "log.jsonl").read_text().splitlines()) == 2


@pytest.mark.slow
def test_train_notebook_runs_headless(demo_dataset, tmp_path, monkeypatch):
    import nbclient
    import nbformat

    out, tag, _, _ = _selection(demo_dataset)
    monkeypatch.setenv("VIDCURATE_DATASET", str(out))
    monkeypatch.setenv("VIDCURATE_VERSION", tag)
    monkeypatch.setenv("VIDCURATE_FILTER", "width <= 640")  # leave the 720p clip out: faster on CPU
    monkeypatch.setenv("VIDCURATE_TRAIN_STEPS", "4")
    monkeypatch.setenv("VIDCURATE_TRAIN_OUT", str(tmp_path))
    nb = nbformat.read(REPO / "notebooks" / "train.ipynb", as_version=4)
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=600,
                            resources={"metadata": {"path": str(REPO / "notebooks")}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    text = "".join(o.get("text", "") for o in outputs)
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert f"version {tag}" in text and "step 4/4" in text and "9 frames of 32x32" in text
    assert any("samples_per_s" in h and "<table" in h for h in html), "no loss table"
    assert any("<video" in h and "base64" in h for h in html), "no sample video"
    assert len(images) == 2  # the loss plot and the sample's frames
    assert (tmp_path / "dit" / "checkpoints" / "last.pt").is_file()
