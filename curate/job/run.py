"""A curation run from start to end: inputs expanded and sharded, models checked before any work, the run's
record and heartbeat in `runs.lance`, unfinished work of dead runs cleared, the Ray Data job executed and
committed as it goes, and the dataset compacted and tagged at the end. `curate.api.run` is its public face.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from curate.config import Config, resolve_config
from curate.job.summary import RunSummary, new_run_id, package_version
from curate.store.lance_store import LanceStore
from curate.video.sources import expand_inputs

log = logging.getLogger(__name__)


def run(inputs: list[str] | str, output: str, *, config: Config | str | Path | None = None,
        profile: str | None = None, address: str | None = None, progress: bool = True,
        shard: tuple[int, int] | None = None, retry_failed: bool = False, shared_fs: bool = False) -> RunSummary:
    """Curates `inputs` into the Lance dataset at `output`; a re-run resumes where the last one stopped.

    Args:
        inputs: files, directories, globs or manifests (CSV/Parquet with a `uri` column); local or object store.
        output: directory or object-store URI holding videos.lance, candidates.lance, clips.lance, runs.lance.
        config: a Config, or a YAML file of overrides over the embedded defaults.
        profile: `default` (real models) or `tiny` (tiny random models, for offline runs and tests).
        address: an existing Ray cluster; when None, the RAY_ADDRESS environment variable's (set inside a job that
            `ray job submit` started), else a local Ray is started.
        progress: show a progress bar of finished videos on stderr.
        shard: (i, n): only the inputs of shard i of n (a stable split by URI), so that n jobs fill one dataset.
        retry_failed: also redo videos whose failure was final (`retryable` ones are always redone).
        shared_fs: local paths are on a filesystem every node of the cluster mounts (checked by a probe).

    Returns:
        The run's summary (also recorded in runs.lance).

    Raises:
        ConfigError: a bad config field (named in the message).
        ValueError: no input videos were found; ClusterPathError (a ValueError): a local path on a cluster.
        WeightsError: a model's weights are missing or cannot be downloaded (the message says how to get them).
        ModelUnavailable: the OCR or NSFW model's package is missing (the message says how to install it).
        CaptionSetupError: the caption model cannot be had or its server does not answer (the message says how).
    """
    from curate.job.cluster import check_reachable, init_ray, worker_env
    from curate.job.models import preflight, prepare_every_node
    from curate.job.pipeline import Committer, build_dataset, execute

    started = time.monotonic()
    started_at = datetime.now(timezone.utc)
    cfg = resolve_config(config, profile)
    inputs = [inputs] if isinstance(inputs, str) else list(inputs)
    sources = expand_inputs(inputs, extensions=cfg.input.extensions)
    if not sources:
        raise ValueError(f"no input videos found in {', '.join(inputs)} (extensions: {' '.join(cfg.input.extensions)})")
    if shard is not None:
        sources = [s for s in sources if in_shard(s.uri, *shard)]
    preflight(cfg)
    address = address or os.environ.get("RAY_ADDRESS") or None  # inside a submitted job: its cluster
    if address:  # before any write: every node must reach the inputs and the output
        init_ray(address, env=worker_env([cfg.caption.openai.api_key_env]))
        check_reachable(output, sources, address=address, shared_fs=shared_fs)
        prepare_every_node(cfg)  # weights into every node's cache, before any write
    store = LanceStore(output, cfg.storage_options)
    store.ensure_tables()
    summary = RunSummary(run_id=new_run_id(), output=output, videos_seen=len(sources))
    live = store.live_runs(lease_s=cfg.run_lease_s)
    store.mark_interrupted(live=live)
    summary.partial_videos_redone = store.drop_unfinished(keep_runs=live)
    done = store.finished_uris(retry_failed=retry_failed)
    todo = [s for s in sources if s.uri not in done]
    summary.videos_skipped = len(sources) - len(todo)

    bar = _progress_bar(len(todo), progress)
    committer = Committer(store, run_id=summary.run_id, profile=cfg.profile,
                          interval_s=cfg.commit_interval_s, on_video=lambda row: bar.update(1) if bar else None)
    record = _RunRecord(store, summary, cfg, inputs, started_at)
    status = "failed"
    clock = _Clock(summary.timings, since=started)
    try:
        record.start()
        clock.lap("prepare_s")
        if todo:
            init_ray(address)
            clock.lap("ray_start_s")
            summary.stage_busy_s = execute(build_dataset(todo, cfg, store, run_id=summary.run_id), committer)
            clock.lap("execute_s")
        status = "completed"
    finally:
        if bar:
            bar.close()
        _tally(summary, committer.finished)
        for name in ("clips", "candidates"):  # copies left by a concurrent run that died before deduping
            store.dedupe(name)
        summary.timings["commit_s"] = committer.commit_s
        summary.wall_s = time.monotonic() - started
        record.finish(status)
        store.optimize()  # this run's small fragments compacted, the id indexes brought up to date
        summary.versions = store.tag_all(summary.tag)
        clock.lap("finish_s")
    if cfg.dedup.on_run:  # the whole dataset: this run's reposts of earlier runs' videos are caught too
        from curate.job.dedup import dedup

        summary.dedup = dedup(output, config=cfg, address=address).to_dict()
    return summary


class _Clock:
    """Records the seconds since the previous lap (or since it was made) under each lap's name."""

    def __init__(self, into: dict[str, float], *, since: float):
        self.into, self._last = into, since

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.into[name] = round(now - self._last, 3)
        self._last = now


def in_shard(uri: str, index: int, count: int) -> bool:
    """Whether `uri` belongs to shard `index` of `count`: a split by a hash of the URI, stable across runs and
    machines, so that `count` jobs with shards 0..count-1 together take every input exactly once."""
    if not (count >= 1 and 0 <= index < count):
        raise ValueError(f"shard {index}/{count}: the index must be in [0, {count})")
    return int(hashlib.sha1(uri.encode()).hexdigest(), 16) % count == index


class _RunRecord:
    """The run's row in runs.lance: written `running` at the start, its heartbeat refreshed from a thread while the
    job works (other runs leave a live run's rows alone), and its final status and counts at the end."""

    def __init__(self, store: LanceStore, summary: RunSummary, cfg: Config, inputs: list[str], started_at):
        self.store, self.summary, self.cfg, self.inputs, self.started_at = store, summary, cfg, inputs, started_at
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="curate-heartbeat", daemon=True)

    def _row(self, status: str) -> dict:
        return _run_row(self.summary, self.cfg, self.inputs, self.started_at, status)

    def start(self) -> None:
        self.store.upsert_rows("runs", [self._row("running")], key="run_id")
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.cfg.heartbeat_interval_s):
            try:
                self.store.upsert_rows("runs", [self._row("running")], key="run_id")
            except Exception as e:  # noqa: BLE001 - a missed beat is not fatal; the next one may pass
                log.warning("heartbeat of run %s failed: %s", self.summary.run_id, e)

    def finish(self, status: str) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.store.upsert_rows("runs", [self._row(status)], key="run_id")


def _progress_bar(total: int, enabled: bool):
    if not enabled or total == 0:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="video", desc="curating", file=sys.stderr, dynamic_ncols=True)


def _tally(summary: RunSummary, rows: list[dict]) -> None:
    for row in rows:
        if row["status"] == "ok":
            summary.videos_ok += 1
            summary.hours_in += (row.get("duration_s") or 0.0) / 3600
        else:
            if row["status"] == "retryable":
                summary.videos_retryable += 1
            else:
                summary.videos_failed += 1
            summary.failures.append((row["uri"], f"{row['status']}: {row.get('error') or 'unknown error'}"))
        summary.scenes += row.get("num_scenes") or 0
        summary.kept += row.get("num_kept") or 0
        summary.clips += row.get("num_clips") or 0
        progress = row.get("_progress") or {}
        summary.hours_out += progress.get("clips_s", 0.0) / 3600
        for key in ("captioned", "caption_retried", "caption_failed", "caption_tokens"):
            setattr(summary, key, getattr(summary, key) + (progress.get(key) or 0))
        summary.caption_gen_s += progress.get("caption_gen_s") or 0.0


def _run_row(summary: RunSummary, cfg: Config, inputs: list[str], started_at: datetime, status: str) -> dict:
    now = datetime.now(timezone.utc)
    return {
        "run_id": summary.run_id, "started_at": started_at, "finished_at": None if status == "running" else now,
        "heartbeat_at": now, "status": status, "package_version": package_version(), "config_hash": cfg.digest(),
        "config_yaml": cfg.to_yaml(redact=True), "model_profile": cfg.profile,
        "inputs": inputs, "videos_seen": summary.videos_seen, "videos_skipped": summary.videos_skipped,
        "videos_ok": summary.videos_ok, "videos_failed": summary.videos_failed,
        "videos_retryable": summary.videos_retryable, "scenes": summary.scenes,
        "kept": summary.kept, "hours_in": summary.hours_in, "hours_out": summary.hours_out,
        "wall_s": summary.wall_s,
    }
