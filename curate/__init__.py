"""vidcurate's spine: raw videos -> scenes -> scores -> captions -> versioned Lance datasets, on Ray Data.

The Python API mirrors the CLI:

    import curate
    summary = curate.run(["videos/"], "out/", profile="tiny")
    curate.status("out/")
    curate.refilter("out/", config="stricter.yaml")
    ds = curate.open("out/", version="run-...")   # tables as pandas/Arrow, previews (curate/notebook.py)
"""

from __future__ import annotations

from typing import Any

__all__ = ["run", "status", "refilter", "open", "load_config", "Config", "ConfigError", "make_demo_corpus"]


def __getattr__(name: str) -> Any:
    # Lazy: `import curate` stays cheap in Ray workers and the CLI's --help.
    if name in ("run", "status"):
        from curate import api

        return getattr(api, name)
    if name in ("load_config", "Config", "ConfigError"):
        from curate import config

        return getattr(config, name)
    if name == "open":
        from curate.notebook import open_dataset

        return open_dataset
    if name == "refilter":
        from curate.refiltering import refilter

        return refilter
    if name == "make_demo_corpus":
        from curate.democorpus import make_demo_corpus

        return make_demo_corpus
    raise AttributeError(f"module 'curate' has no attribute {name!r}")
