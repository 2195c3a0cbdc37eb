"""The Lance datasets: table schemas (`schema.py`), deterministic ids (`ids.py`), fragment writes, commits and
keyed upserts (`lance_store.py`), and versions, tags and diffs (`versions.py`).

May import: `curate.common` only. Never video I/O, the job or the notebook side: the trainer reads the store
through it.
"""
