"""vidcurate's spine: raw videos -> scenes -> scores -> captions -> versioned Lance datasets, on Ray Data.

The Python API mirrors the CLI:

    import curate
    summary = curate.run(["videos/"], "out/", profile="tiny")
    curate.status("out/")
    curate.refilter("out/", config="stricter.yaml")
    curate.dedup("out/", levels=["exact", "near"])   # duplicate groups, the best of each kept
    ds = curate.open("out/", version="run-...")   # tables as pandas/Arrow, previews (curate/explore/notebook.py)

Where things are (each folder's docstring says its one job and what it may import; tests/test_layout.py
checks the rules against the modules' own imports):

    cli.py, api.py, config.py   the command line, its Python twin, the one config model
    common/    leaf helpers every package may use (compatibility shims, typed configs, URI kinds)
    video/     inputs, probe and decode, scene cuts, the demo corpus
    job/       the Ray job: the analysis pass, stages, their wiring, encoding, refilter, dedup, the run itself
    store/     Lance tables: schemas, ids, writes and commits, versions and tags, the vector index
    explore/   reading results: the notebook API, previews and plots, the HTML report, similarity search
"""

from __future__ import annotations

from typing import Any

__all__ = ["run", "status", "refilter", "dedup", "open", "load_config", "Config", "ConfigError", "make_demo_corpus"]


def __getattr__(name: str) -> Any:
    # Lazy: `import curate` stays cheap in Ray workers and the CLI's --help.
    if name in ("run", "status"):
        from curate import api

        return getattr(api, name)
    if name in ("load_config", "Config", "ConfigError"):
        from curate import config

        return getattr(config, name)
    if name == "open":
        from curate.explore.notebook import open_dataset

        return open_dataset
    if name == "refilter":
        from curate.job.refilter import refilter

        return refilter
    if name == "dedup":
        from curate.job.dedup import dedup

        return dedup
    if name == "make_demo_corpus":
        from curate.video.democorpus import make_demo_corpus

        return make_demo_corpus
    raise AttributeError(f"module 'curate' has no attribute {name!r}")
