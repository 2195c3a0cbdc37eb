"""notebooks/explore.ipynb runs headless (nbclient) on the demo dataset, at a tag, and shows what it should."""

import json
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

import curate

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "explore.ipynb"


@pytest.fixture()
def python3_kernel(tmp_path, monkeypatch):
    """A `python3` kernel spec that runs this interpreter (the venv's), whatever kernels the user has installed:
    JUPYTER_PATH comes first in the kernel search."""
    spec = tmp_path / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (vidcurate)", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return "python3"


def test_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


def test_explore_runs_on_the_demo_dataset(demo_dataset, python3_kernel, monkeypatch):
    out, summary = demo_dataset
    monkeypatch.setenv("VIDCURATE_DATASET", str(out))
    monkeypatch.setenv("VIDCURATE_VERSION", summary.tag)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, kernel_name=python3_kernel, timeout=300,
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()  # raises on a cell error

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    rich = [o.get("data", {}) for o in outputs]
    html = "".join(d.get("text/html", "") for d in rich)
    funnel = curate.open(str(out), version=summary.tag).funnel()
    assert funnel["scenes"] == summary.scenes and funnel["kept"] == summary.kept
    assert f"{out} at {summary.tag}" in text
    assert "funnel: " + " -> ".join(f"{k} {v}" for k, v in funnel.items()) in text
    assert sum("image/png" in d for d in rich) >= 2  # score histograms, and again under the what-if thresholds
    assert 'src="data:image/webp;base64,' in html  # animated previews per drop reason
    assert "curate-captions" in html and ("no captions" in html) == (funnel["captioned"] == 0)
    assert f"what-if: {funnel['scenes']} scenes: kept {funnel['kept']} -> " in text
    assert "duplicate groups: 0" in text and "no duplicate groups" in html  # no dedup ran on the demo dataset
