"""The Python API, mirroring the CLI: `run` a curation job, read a dataset's `status`.

    import curate
    summary = curate.run(["videos/"], "out/", profile="tiny")
    print(summary.format())
    curate.status("out/")
"""

from __future__ import annotations

from typing import Any

from curate.job.run import run
from curate.store.lance_store import LanceStore

__all__ = ["run", "status"]


def status(uri: str, *, storage_options: dict[str, str] | None = None) -> dict[str, Any]:
    """Tables, row counts, versions, tags and the last runs of the dataset at `uri`.

    Raises:
        FileNotFoundError: no curated dataset at `uri`.
    """
    store = LanceStore(uri, storage_options)
    info = store.describe()
    if not info["tables"]:
        raise FileNotFoundError(f"no curated dataset at {uri} (expected videos.lance, candidates.lance, ...)")
    runs = store.open("runs")
    if runs is not None and runs.count_rows():
        cols = ["run_id", "status", "finished_at", "model_profile", "config_hash", "package_version",
                "videos_ok", "videos_failed", "kept"]
        info["runs"] = runs.to_table(columns=cols).to_pylist()[-10:]
    return info
