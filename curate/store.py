"""The Lance store under one output URI: `videos`, `candidates`, `clips` and `runs` tables.

Workers write data files (`write_fragments`) next to the tables and hand back small fragment descriptions; the
driver alone commits them, in order: clips and candidates first, then the `videos` rows of the videos whose
every scene is in. A `videos` row is therefore the proof that its video is complete, which is what resume
relies on: rows of videos without one are removed before a re-run redoes them.
"""

from __future__ import annotations

import json
import os
import warnings
from typing import Any

# Ray starts its workers as fresh processes, never by forking a process that holds Lance state.
warnings.filterwarnings("ignore", message="lance is not fork-safe")
import lance  # noqa: E402
import pyarrow as pa  # noqa: E402
from lance.fragment import FragmentMetadata, write_fragments  # noqa: E402

from curate.schema import TABLES  # noqa: E402
from curate.sources import is_remote  # noqa: E402


def sql_in(column: str, values: list[str]) -> str:
    """A Lance filter `column IN ('a', 'b', ...)` for string ids."""
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


class LanceStore:
    """Tables of one curated dataset.

    Args:
        uri: a local directory or an object-store URI (s3://bucket/prefix, gs://..., az://...).
        storage_options: passed to Lance for object stores (credentials, region, endpoint).
    """

    def __init__(self, uri: str, storage_options: dict[str, str] | None = None):
        self.uri = uri.rstrip("/")
        self.storage_options = storage_options or None

    def table_uri(self, name: str) -> str:
        return f"{self.uri}/{name}.lance"

    def open(self, name: str, version: int | str | None = None) -> lance.LanceDataset | None:
        """The table at `version` (a number or a tag), or None if it does not exist yet."""
        if not self.exists(name):
            return None
        return lance.dataset(self.table_uri(name), version=version, storage_options=self.storage_options)

    def exists(self, name: str) -> bool:
        uri = self.table_uri(name)
        if not is_remote(uri):
            return os.path.isdir(os.path.join(uri, "_versions"))
        try:
            lance.dataset(uri, storage_options=self.storage_options)
            return True
        except (ValueError, OSError):
            return False

    def ensure_tables(self) -> None:
        """Creates missing tables empty, so that workers write fragments against a known schema."""
        for name, schema in TABLES.items():
            if not self.exists(name):
                lance.write_dataset(schema.empty_table(), self.table_uri(name), schema=schema, mode="create",
                                    storage_options=self.storage_options)

    # Worker side -------------------------------------------------------------------------------------------
    def write_fragments(self, name: str, table: pa.Table) -> list[str]:
        """Writes data files for `table` without committing; returns their descriptions as JSON strings."""
        if table.num_rows == 0:
            return []
        frags = write_fragments(table, self.table_uri(name), schema=TABLES[name],
                                storage_options=self.storage_options)
        return [json.dumps(f.to_json()) for f in frags]

    # Driver side -------------------------------------------------------------------------------------------
    def commit_fragments(self, name: str, fragments: list[str], *, message: str) -> int | None:
        """Appends written fragments to `name` in one commit; returns the new version."""
        if not fragments:
            return None
        op = lance.LanceOperation.Append([FragmentMetadata.from_json(f) for f in fragments])
        ds = lance.LanceDataset.commit(self.table_uri(name), op, read_version=self.open(name).version,
                                       storage_options=self.storage_options, commit_message=message)
        return ds.version

    def append_rows(self, name: str, rows: list[dict[str, Any]]) -> int | None:
        """Appends small rows (videos, runs) written by the driver itself."""
        if not rows:
            return None
        table = pa.Table.from_pylist(rows, schema=TABLES[name])
        ds = lance.write_dataset(table, self.table_uri(name), schema=TABLES[name], mode="append",
                                 storage_options=self.storage_options)
        return ds.version

    def column(self, name: str, column: str, *, version: int | str | None = None) -> list:
        """One column of a table as a list (empty if the table does not exist yet)."""
        ds = self.open(name, version=version)
        return ds.to_table(columns=[column]).column(column).to_pylist() if ds is not None else []

    def finished_uris(self) -> set[str]:
        """Sources that already have a final status (ok or failed): a re-run skips them."""
        return set(self.column("videos", "uri"))

    def drop_unfinished(self) -> int:
        """Deletes candidates and clips of videos that have no `videos` row (cut off by a crash).

        Returns:
            The number of videos whose partial rows were removed.
        """
        done = set(self.column("videos", "video_id"))
        orphans = {v for name in ("candidates", "clips") for v in self.column(name, "video_id") if v not in done}
        if orphans:
            for name in ("candidates", "clips"):
                ds = self.open(name)
                if ds is not None:
                    ds.delete(sql_in("video_id", sorted(orphans)))
        return len(orphans)

    def tag_all(self, tag: str) -> dict[str, int]:
        """Tags the latest version of every table; returns table -> version."""
        tagged = {}
        for name in TABLES:
            ds = self.open(name)
            if ds is None:
                continue
            if tag in ds.tags.list():
                ds.tags.update(tag, ds.version)
            else:
                ds.tags.create(tag, ds.version)
            tagged[name] = ds.version
        return tagged

    def describe(self) -> dict[str, Any]:
        """Tables, row counts, versions and tags: what `curate status` prints."""
        out: dict[str, Any] = {"uri": self.uri, "tables": {}}
        for name in TABLES:
            ds = self.open(name)
            if ds is None:
                continue
            tags = {t: v["version"] for t, v in ds.tags.list().items()}
            out["tables"][name] = {"rows": ds.count_rows(), "version": ds.version,
                                   "versions": len(ds.versions()), "tags": tags}
        return out
