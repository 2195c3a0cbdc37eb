"""`embeddings.lance`: every scene's CLIP embedding as a fixed-size vector under a Lance vector index.

Lance indexes only fixed-size vector columns, while `candidates.clip_embedding` is a plain list: its width depends
on the run's CLIP model, and the candidates schema does not. So the vectors live in a table of their own, keyed
by `clip_id` and derived from candidates: `sync_index` appends the scenes not in it yet, removes those gone from
candidates, and keeps an IVF_PQ index (cosine) up to date incrementally: new rows join the index's delta through
`optimize_indices`, and the index is trained again only once the table has grown past twice the rows it was
trained on. Small tables (under `INDEX_MIN_ROWS`) are searched exactly, with no index. One embedding model per
dataset: rows of another width are left out and counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.store.lance_store import LanceStore, sql_in

TABLE = "embeddings"
VECTOR = "vector"
INDEX_MIN_ROWS = 4096  # below this an exact scan is as fast as the index, and IVF has too little to train on
BATCH_ROWS = 65536


def embeddings_schema(dim: int) -> pa.Schema:
    return pa.schema([pa.field("clip_id", pa.string(), nullable=False), pa.field("video_id", pa.string()),
                      pa.field("model", pa.string()), pa.field(VECTOR, pa.list_(pa.float32(), dim))])


@dataclass
class IndexSummary:
    rows: int = 0
    added: int = 0
    removed: int = 0
    other_width: int = 0  # embeddings of another model's width, left out
    indexed: bool = False
    trained: bool = False


def sync_index(store: LanceStore, *, index_min_rows: int = INDEX_MIN_ROWS) -> IndexSummary:
    """Brings `embeddings.lance` and its index up to date with candidates (see module docstring)."""
    out = IndexSummary()
    cands = store.open("candidates")
    if cands is None:
        return out
    table_uri = store.table_uri(TABLE)
    vectors = store.open(TABLE)
    have = vectors.to_table(columns=["clip_id"]).column("clip_id") if vectors is not None else pa.array([], pa.string())
    dim = vectors.schema.field(VECTOR).type.list_size if vectors is not None else None
    current = []
    for batch in cands.to_batches(columns=["clip_id", "video_id", "aesthetic_model", "clip_embedding"],
                                  filter="clip_id IS NOT NULL AND clip_embedding IS NOT NULL", batch_size=BATCH_ROWS):
        current.append(batch.column("clip_id"))
        new = batch.filter(pc.invert(pc.is_in(batch.column("clip_id"), value_set=have)))
        if not new.num_rows:
            continue
        widths = pc.list_value_length(new.column("clip_embedding"))
        dim = dim or int(pc.mode(widths)[0]["mode"].as_py())
        fits = pc.equal(widths, dim)
        out.other_width += new.num_rows - (pc.sum(fits).as_py() or 0)
        new = new.filter(fits)
        if not new.num_rows:
            continue
        flat = pc.list_flatten(new.column("clip_embedding")).cast(pa.float32())
        rows = pa.table({"clip_id": new.column("clip_id"), "video_id": new.column("video_id"),
                         "model": new.column("aesthetic_model"),
                         VECTOR: pa.FixedSizeListArray.from_arrays(flat, dim)}, schema=embeddings_schema(dim))
        import lance

        lance.write_dataset(rows, table_uri, mode="append" if store.exists(TABLE) else "create",
                            storage_options=store.storage_options)
        out.added += rows.num_rows
    vectors = store.open(TABLE)
    if vectors is None:
        return out
    stored = vectors.to_table(columns=["clip_id"]).column("clip_id")
    gone = pc.invert(pc.is_in(stored, value_set=pa.chunked_array(current, pa.string())))
    if pc.any(gone).as_py():
        removed = stored.filter(gone)
        store.delete_keys(TABLE, "clip_id", removed.combine_chunks())
        out.removed = len(removed)
    vectors = store.open(TABLE)
    out.rows = vectors.count_rows()
    _update_index(vectors, out, index_min_rows)
    return out


def _update_index(vectors, out: IndexSummary, index_min_rows: int) -> None:
    indices = [i for i in vectors.describe_indices() if VECTOR in i.field_names]
    if out.rows < index_min_rows:
        return
    trained_on = int(indices[0].num_rows_indexed) if indices else 0
    if not indices or out.rows > 2 * trained_on:
        dim = vectors.schema.field(VECTOR).type.list_size
        vectors.create_index(VECTOR, index_type="IVF_PQ", metric="cosine", replace=True,
                             num_partitions=_partitions(out.rows), num_sub_vectors=_sub_vectors(dim))
        out.trained = True
    elif out.added:
        vectors.optimize.optimize_indices()
    out.indexed = True


def _partitions(rows: int) -> int:
    """IVF partitions: about sqrt(rows) (1000 at a million), with the 256 rows each that k-means trains on."""
    return max(1, min(int(np.sqrt(rows)), rows // 256))


def _sub_vectors(dim: int) -> int:
    """PQ sub-vectors: 8 dimensions each where the width allows (4 bytes a vector per 32 dimensions)."""
    for size in (8, 4, 2, 1):
        if dim % size == 0:
            return dim // size
    return 1


def nearest(store: LanceStore, query: np.ndarray, *, k: int = 20, where: str | None = None,
            nprobes: int = 20, refine_factor: int = 40) -> pa.Table:
    """The `k` scenes nearest `query` (cosine): clip_id and `_distance`, nearest first. `where` is a SQL filter
    over candidates columns (for example "keep AND aesthetic > 5"): the scenes it admits are searched. The index
    looks into `nprobes` partitions and re-ranks `refine_factor` * k candidates by their exact distance.

    Raises:
        FileNotFoundError: the dataset has no embeddings table (run `curate dedup` or `curate search` once).
        ValueError: the query's width is not the table's.
    """
    vectors = store.open(TABLE)
    if vectors is None:
        raise FileNotFoundError(f"{store.uri} has no {TABLE}.lance yet (`sync_index` builds it; `curate search` "
                                "and `curate dedup` call it)")
    dim = vectors.schema.field(VECTOR).type.list_size
    query = np.asarray(query, np.float32).reshape(-1)
    if len(query) != dim:
        raise ValueError(f"query has {len(query)} dimensions, the dataset's embeddings {dim} (another CLIP model?)")
    allowed = None
    if where:
        allowed = store.open("candidates").to_table(columns=["clip_id"], filter=where).column("clip_id")
        if not len(allowed):
            return pa.table({"clip_id": pa.array([], pa.string()), "_distance": pa.array([], pa.float32())})
    total = vectors.count_rows()
    want = k if allowed is None else min(total, k * 8)
    while True:  # with a filter: fetch more until k admitted scenes are in, or everything was
        found = vectors.to_table(columns=["clip_id", "_distance"], nearest={
            "column": VECTOR, "q": query, "k": want, "metric": "cosine", "nprobes": nprobes,
            "refine_factor": refine_factor})
        if allowed is not None:
            found = found.filter(pc.is_in(found.column("clip_id"), value_set=allowed))
        if found.num_rows >= k or want >= total:
            return found.slice(0, k)
        want = min(total, want * 4)


def vectors_of(store: LanceStore, clip_ids: list[str]) -> dict[str, np.ndarray]:
    """clip_id -> stored vector, for a few scenes (a `--like` query)."""
    vectors = store.open(TABLE)
    if vectors is None or not clip_ids:
        return {}
    t = vectors.to_table(columns=["clip_id", VECTOR], filter=sql_in("clip_id", clip_ids))
    return {c: np.asarray(v, np.float32) for c, v in zip(t.column("clip_id").to_pylist(),
                                                         t.column(VECTOR).to_pylist())}
