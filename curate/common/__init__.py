"""Leaf helpers every package may use: compatibility shims (`compat.py`), typed configs from YAML mappings
(`typed_config.py`), URI kinds (`uris.py`) and messages logged once per process (`once.py`).

May import: nothing of the project (a test checks it), so that `filters`, `captioner` and `train` can use it
without reaching into the rest of `curate`.
"""
