"""Similarity search over a dataset's scenes: nearest to a text, an image or a stored scene.

Queries go through `embeddings.lance`'s vector index (curate/store/vectors.py), built on first use. Text and
image queries are embedded by the same open_clip model that embedded the scenes (the dataset's recorded
config names it), text through its text tower; a `--like` query reuses the stored vector of a scene.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.config import Config, config_for_dataset, resolve_config
from curate.store.lance_store import LanceStore, sql_in
from curate.store.vectors import TABLE, nearest, sync_index, vectors_of

# What a hit shows besides its distance.
HIT_COLUMNS = ["clip_id", "video_id", "start_s", "end_s", "duration_s", "keep", "drop_reasons", "aesthetic",
               "dup_group", "duplicate_of"]


def dataset_settings(uri: str, config: Config | str | None = None, profile: str | None = None) -> Config:
    """`config` resolved, or when None the config the dataset's latest run recorded (`config_for_dataset`)."""
    if config is not None:
        return resolve_config(config, profile)
    return config_for_dataset(LanceStore(uri).latest_run_config(), profile)


def search(store: LanceStore, cfg: Config, *, text: str | None = None, like: str | None = None,
           image: str | Path | None = None, k: int = 20, where: str | None = None) -> pa.Table:
    """The `k` scenes nearest the query (exactly one of `text`, `like` (a clip_id), `image` (a file)), nearest
    first: `HIT_COLUMNS` and `distance` (cosine), the source `uri` too. `where` is SQL over candidates columns.
    A `like` query leaves its own scene out.

    Raises:
        ValueError: not exactly one query, or a query the dataset cannot answer.
        KeyError: `like` names no scene with an embedding.
    """
    if sum(q is not None for q in (text, like, image)) != 1:
        raise ValueError("give exactly one of text, like, image")
    if store.open(TABLE) is None:
        sync_index(store)
        if store.open(TABLE) is None:
            raise ValueError(f"{store.uri} has no CLIP embeddings to search (scoring.aesthetic was off)")
    if like is not None:
        found = vectors_of(store, [like])
        if like not in found:
            raise KeyError(f"no scene {like!r} with an embedding in {store.uri}")
        query = found[like]
    else:
        query = _embed(store, cfg, text=text, image=image)
    hits = nearest(store, query, k=k + (like is not None), where=where)
    if like is not None:
        hits = hits.filter(pc.not_equal(hits.column("clip_id"), like)).slice(0, k)
    return _describe(store, hits)


def _embed(store: LanceStore, cfg: Config, *, text: str | None, image) -> np.ndarray:
    from filters.aesthetic import AestheticScorer, spec_from_config

    spec = spec_from_config(cfg.scoring.aesthetic, cfg.profile)
    stored = store.open(TABLE).to_table(columns=["model"], limit=1).column("model").to_pylist()
    if stored and stored[0] and stored[0] != spec.name:
        raise ValueError(f"the dataset's embeddings come from {stored[0]}, the config loads {spec.name}: "
                         "pass the config (and profile) the dataset was curated with")
    scorer = AestheticScorer(spec)
    scorer.setup()
    if text is not None:
        return scorer.embed_text([text])[0]
    from PIL import Image

    try:
        picture = Image.open(image).convert("RGB")
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot read image {image}: {e}") from None
    return scorer.embed([picture])[0]


def _describe(store: LanceStore, hits: pa.Table) -> pa.Table:
    """`hits` (clip_id, _distance) with the scenes' columns and source URIs, in the hits' order."""
    ids = hits.column("clip_id").to_pylist()
    if not ids:
        return pa.table({**{c: pa.array([], pa.string()) for c in ("clip_id", "uri")},
                         "distance": pa.array([], pa.float32())})
    cands = store.open("candidates")
    columns = [c for c in HIT_COLUMNS if c in cands.schema.names]
    rows = {r["clip_id"]: r for r in cands.to_table(columns=columns, filter=sql_in("clip_id", ids)).to_pylist()}
    videos = store.open("videos").to_table(columns=["video_id", "uri"], filter=sql_in(
        "video_id", sorted({r["video_id"] for r in rows.values()}))).to_pylist() if rows else []
    uris = {v["video_id"]: v["uri"] for v in videos}
    out = [{**rows[c], "uri": uris.get(rows[c]["video_id"]), "distance": d}
           for c, d in zip(ids, hits.column("_distance").to_pylist()) if c in rows]
    return pa.Table.from_pylist(out)


def format_hits(hits: pa.Table) -> str:
    """One line a hit, for the command line."""
    lines = []
    for i, r in enumerate(hits.to_pylist(), 1):
        state = "kept" if r.get("keep") else "dropped: " + ", ".join(r.get("drop_reasons") or [])
        dup = f", duplicate of {r['duplicate_of'][:8]}" if r.get("duplicate_of") else ""
        lines.append(f"{i:>3}. {r['distance']:.4f}  {r['clip_id']}  {Path(r['uri'] or '').name} "
                     f"{r['start_s']:.2f}-{r['end_s']:.2f}s  {state}{dup}")
    return "\n".join(lines) or "no hits"
