"""The Lance store under one output URI: `videos`, `candidates`, `clips` and `runs` tables.

Workers write data files (`write_fragments`) next to the tables and hand back small fragment descriptions; the
driver alone commits them, in order: clips and candidates first, then the `videos` rows of the videos whose
every scene is in. A `videos` row is therefore the proof that its video is complete, which is what resume
relies on: rows of videos without one are removed before a re-run redoes them, unless a run that is still alive
(its `runs` row's heartbeat is fresh) wrote them.

Several runs may write one dataset at once (a resubmitted job, overlapping shards) and no id may end up twice:
- `videos` and `runs` rows are upserted with `merge_insert` on their key, which carries Lance's primary-key
  metadata: two writers inserting one key at once conflict, and the later is retried as an update.
- `candidates` and `clips` rows are appended as the workers wrote them, then `dedupe` removes every copy of a
  clip_id but the one from the run whose id sorts first. Rows are deterministic, so the copies are equal, and
  every run that dedupes keeps the same one: concurrent runs converge on one row per clip.

As it grows, a dataset stays quick to open, resume, refilter and diff: every run ends with `optimize` (the
small fragments its workers wrote compacted, BTREE indexes on the ids brought up to date), and whole-table
operations join on the ids (Arrow `is_in`, Lance `merge_insert`) instead of spelling them out in SQL `IN` lists.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from typing import Any

# Ray starts its workers as fresh processes, never by forking a process that holds Lance state.
warnings.filterwarnings("ignore", message="lance is not fork-safe")
import lance  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
from lance.fragment import FragmentMetadata, write_fragments  # noqa: E402

from curate.common.uris import is_remote  # noqa: E402
from curate.store.schema import TABLES  # noqa: E402

log = logging.getLogger(__name__)

# Scalar (BTREE) indexes `optimize` keeps: the ids that resume, refilter, diff and notebooks look up and join on.
INDEXED = {"videos": ("video_id", "uri"), "candidates": ("clip_id", "video_id"), "clips": ("clip_id", "video_id")}
# Rows per fragment that compaction aims at: fewer where rows carry media (keyframe JPEGs, clip mp4s), so that a
# run's compaction rewrites its own small fragments, not the media of the whole dataset.
TARGET_ROWS = {"videos": 1 << 20, "runs": 1 << 20, "candidates": 1 << 16, "clips": 1 << 12}
# Tables whose deleted rows stay marked instead of being compacted away: that would rewrite their media.
KEEP_DELETION_FILES = {"candidates", "clips"}


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
        """Creates missing tables empty, so that workers write fragments against a known schema. Another run
        creating the same table at the same moment is fine: its table is the same."""
        for name, schema in TABLES.items():
            if self.exists(name):
                self._add_missing_columns(name, schema)
                continue
            try:
                lance.write_dataset(schema.empty_table(), self.table_uri(name), schema=schema, mode="create",
                                    storage_options=self.storage_options)
            except (OSError, ValueError):
                if not self.exists(name):
                    raise

    def _add_missing_columns(self, name: str, schema: pa.Schema) -> None:
        """Columns a newer version of the schema added (dedup's, for example) join an older table as nulls:
        a metadata-only commit, no data rewritten. A concurrent run adding them first is fine."""
        have = set(self.open(name).schema.names)
        missing = [f for f in schema if f.name not in have]
        if missing:
            try:
                self.open(name).add_columns(missing)
                log.info("%s: added columns %s", name, ", ".join(f.name for f in missing))
            except (OSError, ValueError, RuntimeError):
                if set(schema.names) - set(self.open(name).schema.names):
                    raise

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

    def upsert_rows(self, name: str, rows: list[dict[str, Any]], *, key: str) -> int | None:
        """Inserts `rows`, replacing the rows with the same `key`; returns the new version. Safe against other
        writers of the same keys at the same time (see the module docstring)."""
        if not rows:
            return None
        table = pa.Table.from_pylist(rows, schema=TABLES[name])
        (self.open(name).merge_insert(key).when_matched_update_all().when_not_matched_insert_all()
         .conflict_retries(50).execute(table))
        return self.open(name).version

    def update_columns(self, name: str, table: pa.Table, *, key: str) -> None:
        """Sets `table`'s columns on the rows of `name` with the same `key` (a join; other columns stay)."""
        if table.num_rows:
            self.open(name).merge_insert(key).when_matched_update_all().conflict_retries(50).execute(table)

    def delete_keys(self, name: str, key: str, values: pa.Array | list[str]) -> None:
        """Deletes the rows of `name` whose `key` is in `values` (a join, however many)."""
        values = pa.array(values, pa.string()) if isinstance(values, list) else values
        if len(values):
            (self.open(name).merge_insert(key).when_matched_delete().conflict_retries(50)
             .execute(pa.table({key: values})))

    def dedupe(self, name: str, *, video_ids: list[str] | None = None) -> int:
        """Deletes the copies of a clip_id that more than one run wrote (within `video_ids`, or everywhere),
        keeping the copy of the run whose id sorts first; returns the rows deleted."""
        ds = self.open(name)
        if ds is None:
            return 0
        table = ds.to_table(columns=["clip_id", "run_id"],
                            filter=sql_in("video_id", video_ids) if video_ids else None)
        counts = table.group_by("clip_id").aggregate([("run_id", "count_distinct")])
        twice = counts.filter(pc.greater(counts.column("run_id_count_distinct"), 1)).column("clip_id")
        if not len(twice):
            return 0
        runs: dict[str, set[str]] = defaultdict(set)
        for row in table.filter(pc.is_in(table.column("clip_id"), value_set=twice)).to_pylist():
            runs[row["clip_id"]].add(row["run_id"])
        losers: dict[str, list[str]] = defaultdict(list)  # run -> clip ids of which it holds a surplus copy
        for clip_id, by in runs.items():
            for run_id in sorted(by)[1:]:
                losers[run_id].append(clip_id)
        deleted = 0
        for run_id, clip_ids in losers.items():
            ds.delete(f"run_id = {run_id!r} AND {sql_in('clip_id', clip_ids)}")
            deleted += len(clip_ids)
        return deleted

    def column(self, name: str, column: str, *, version: int | str | None = None) -> list:
        """One column of a table as a list (empty if the table does not exist yet)."""
        ds = self.open(name, version=version)
        return ds.to_table(columns=[column]).column(column).to_pylist() if ds is not None else []

    def finished_uris(self, *, retry_failed: bool = False) -> set[str]:
        """Sources a re-run skips: `ok` ones, and `failed` ones unless `retry_failed`; `retryable` ones never."""
        ds = self.open("videos")
        if ds is None:
            return set()
        final = ("ok",) if retry_failed else ("ok", "failed")
        t = ds.to_table(columns=["uri"], filter=f"status IN ({', '.join(repr(s) for s in final)})")
        return set(t.column("uri").to_pylist())

    def latest_run_config(self) -> str | None:
        """The config YAML the latest completed run recorded (None for a dataset with none)."""
        ds = self.open("runs")
        if ds is None:
            return None
        done = [r for r in ds.to_table(columns=["config_yaml", "finished_at"], filter="status = 'completed'")
                .to_pylist() if r["config_yaml"] and r["finished_at"] is not None]
        return max(done, key=lambda r: r["finished_at"])["config_yaml"] if done else None

    def live_runs(self, *, lease_s: float) -> set[str]:
        """Runs still at work: status `running` and a heartbeat younger than `lease_s`."""
        ds = self.open("runs")
        if ds is None:
            return set()
        t = ds.to_table(columns=["run_id", "heartbeat_at"], filter="status = 'running'").to_pylist()
        fresh = datetime.now(timezone.utc) - timedelta(seconds=lease_s)
        return {r["run_id"] for r in t if r["heartbeat_at"] is not None and r["heartbeat_at"] >= fresh}

    def mark_interrupted(self, *, live: set[str]) -> list[str]:
        """Records `running` runs that are not in `live` (see `live_runs`: their heartbeat stopped; killed,
        crashed, their machine lost) as `interrupted`; returns their ids."""
        ds = self.open("runs")
        if ds is None:
            return []
        dead = [r for r in ds.to_table(filter="status = 'running'").to_pylist() if r["run_id"] not in live]
        for r in dead:
            r["status"] = "interrupted"
        self.upsert_rows("runs", dead, key="run_id")
        return [r["run_id"] for r in dead]

    def drop_unfinished(self, *, keep_runs: set[str] | frozenset[str] = frozenset()) -> int:
        """Deletes candidates and clips of videos that have no `videos` row (cut off by a crash), except rows
        that runs in `keep_runs` (alive, still writing) wrote.

        Returns:
            The number of videos whose partial rows were removed.
        """
        videos = self.open("videos")
        if videos is None:
            return 0
        done = videos.to_table(columns=["video_id"]).column("video_id")
        alive = pa.array(sorted(keep_runs), pa.string())
        orphans: set[str] = set()
        for name in ("candidates", "clips"):
            ds = self.open(name)
            if ds is not None:
                t = ds.to_table(columns=["video_id", "run_id"])
                cut = pc.invert(pc.or_(pc.is_in(t.column("video_id"), value_set=done),
                                       pc.is_in(t.column("run_id"), value_set=alive)))
                orphans |= set(pc.unique(t.column("video_id").filter(cut)).to_pylist())
        if orphans:  # only the videos that were in flight when a run died: a short list
            live = f" AND run_id NOT IN ({', '.join(repr(r) for r in sorted(keep_runs))})" if keep_runs else ""
            for name in ("candidates", "clips"):
                ds = self.open(name)
                if ds is not None:
                    ds.delete(sql_in("video_id", sorted(orphans)) + live)
        return len(orphans)

    def optimize(self) -> dict[str, int]:
        """Compacts each table's small fragments and brings its id indexes up to date (creating them on first
        use); returns table -> fragments removed. Only an optimisation: a concurrent writer's conflicting commit
        makes it skip a table (the next run compacts it), never fail the run."""
        removed = {}
        for name in TABLES:
            ds = self.open(name)
            if ds is None or ds.count_rows() == 0:
                continue
            try:
                metrics = ds.optimize.compact_files(target_rows_per_fragment=TARGET_ROWS[name],
                                                    materialize_deletions=name not in KEEP_DELETION_FILES)
                removed[name] = metrics.fragments_removed - metrics.fragments_added
                ds = self.open(name)
                have = {field for index in ds.describe_indices() for field in index.field_names}
                for column in INDEXED.get(name, ()):
                    if column not in have:
                        ds.create_scalar_index(column, index_type="BTREE")
                ds.optimize.optimize_indices()
            except (OSError, ValueError, RuntimeError) as e:  # lance raises these on a commit conflict
                log.warning("left %s unoptimised this time: %s", name, str(e).splitlines()[0][:200])
        return removed

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
