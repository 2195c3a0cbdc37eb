"""`curate`: the command line. Every command has a Python twin in `curate.api`."""

from __future__ import annotations

import json
import sys

import click

from curate.common.extras import MissingExtra
from curate.config import PROFILES, ConfigError


def _fail(message: str, code: int = 2) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vidcurate")
def main() -> None:
    """Video data curation: scenes, scores, clips and captions as versioned Lance datasets, on Ray Data."""


@main.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", required=True, help="Dataset directory or object-store URI (s3://..., gs://...).")
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="YAML file of settings over the embedded defaults (see `curate config`).")
@click.option("-p", "--profile", type=click.Choice(PROFILES), default=None,
              help="Models: `default` (real weights) or `tiny` (tiny random models, offline).")
@click.option("--address", default=None,
              help="Existing Ray cluster ('auto', 'HOST:6379', 'ray://head:10001'); local if unset.")
@click.option("--shard", default=None, metavar="I/N",
              help="Only shard I of N of the inputs (a stable split by URI): N jobs with I = 0..N-1 fill one dataset.")
@click.option("--retry-failed", is_flag=True, help="Also redo videos whose failure was final (corrupt, unsupported).")
@click.option("--shared-fs", is_flag=True,
              help="Local paths are on a filesystem every cluster node mounts (a probe checks it).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def run(inputs, output, config_path, profile, address, shard, retry_failed, shared_fs, quiet, as_json):
    """Curate INPUTS (files, directories, globs, CSV/Parquet manifests) into the dataset at --output.

    Running the same command again resumes: finished videos are skipped, interrupted ones and those whose
    failure may pass (`retryable`: network, object store) redone. Several runs may write one dataset at once.
    """
    from curate.api import run as run_job

    try:
        summary = run_job(list(inputs), output, config=config_path, profile=profile, address=address,
                          progress=not quiet, shard=_shard(shard), retry_failed=retry_failed, shared_fs=shared_fs)
    except (ConfigError, ValueError, FileNotFoundError, MissingExtra) as e:  # WeightsError: a FileNotFoundError
        _fail(str(e))
    click.echo(json.dumps(summary.to_dict(), indent=2, default=str) if as_json else summary.format())
    click.echo(f"result: {output}  (curate status {output})", err=as_json)


def _shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        _fail(f"--shard {text}: expected I/N, for example 0/4")
    return index, count  # the range is checked by curate.job.run.in_shard


@main.command()
@click.argument("uri")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def status(uri, as_json):
    """Tables, row counts, versions, tags and recent runs of the dataset at URI."""
    from curate.api import status as get_status

    try:
        info = get_status(uri)
    except FileNotFoundError as e:
        _fail(str(e), 1)
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
        return
    click.echo(f"dataset {info['uri']}")
    for name, t in info["tables"].items():
        tags = ", ".join(f"{k}=v{v}" for k, v in sorted(t["tags"].items())) or "none"
        click.echo(f"  {name + '.lance':18} {t['rows']:>8} rows  version {t['version']:>4}  tags: {tags}")
    for r in info.get("runs", []):
        click.echo(f"  run {r['run_id']}: {r['status']}, profile {r['model_profile']}, config {r['config_hash']}, "
                   f"{r['videos_ok']} ok / {r['videos_failed']} failed, {r['kept']} kept, v{r['package_version']}")


@main.command()
@click.argument("uri")
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False), required=True,
              help="YAML with the new `policy:` thresholds (other sections: encode settings for new clips).")
@click.option("-p", "--profile", type=click.Choice(PROFILES), default=None, help="Profile the config applies under.")
@click.option("--address", default=None, help="Ray cluster for encoding newly kept clips; local if unset.")
@click.option("--dry-run", is_flag=True, help="Only say what would change.")
def refilter(uri, config_path, profile, address, dry_run):
    """Apply new thresholds to the stored scores of URI: no decoding or scoring again.

    Clips that become kept are encoded, clips that become dropped are removed, and the result is a new tagged
    version of every table.
    """
    from curate.job.refilter import refilter as run_refilter

    try:
        summary = run_refilter(uri, config=config_path, profile=profile, address=address, dry_run=dry_run)
    except (ConfigError, FileNotFoundError) as e:
        _fail(str(e), 1 if isinstance(e, FileNotFoundError) else 2)
    click.echo(summary.format())


@main.command()
@click.argument("uri")
@click.option("--level", "levels", multiple=True, type=click.Choice(["exact", "near", "semantic"]),
              help="Duplicate level (repeat to union several). Default: the config's dedup.levels (exact, near).")
@click.option("--threshold", type=float, default=None,
              help="Distance within which two scenes are duplicates, for the one --level given (near: share of "
                   "differing hash bits, default 0.12; semantic: cosine distance, default 0.05).")
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="YAML over the defaults (dedup, policy, encode). Default: the config of the dataset's last run.")
@click.option("-p", "--profile", type=click.Choice(PROFILES), default=None, help="Profile the config applies under.")
@click.option("--address", default=None, help="Ray cluster for the grouping and any encoding; local if unset.")
@click.option("--dry-run", is_flag=True, help="Only say what would be marked and dropped.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def dedup(uri, levels, threshold, config_path, profile, address, dry_run, as_json):
    """Group duplicate scenes across the whole dataset at URI and keep the best of each group.

    Exact (the same decoded frames), near (perceptual hashes: re-encodes, rescales, crops, bars, watermarks)
    and semantic (CLIP embeddings) duplicates, all from the stored signatures: nothing is decoded again. The
    others of a group get `duplicate_of` and the drop reason `duplicate`; their clips are removed and every
    table gets a new tagged version (`curate diff` shows it).
    """
    from curate.job.dedup import dedup as run_dedup

    try:
        summary = run_dedup(uri, config=config_path, profile=profile, levels=levels or None, threshold=threshold,
                            address=address, dry_run=dry_run)
    except (ConfigError, FileNotFoundError, ValueError) as e:
        _fail(str(e), 1 if isinstance(e, FileNotFoundError) else 2)
    click.echo(json.dumps(summary.to_dict(), indent=2, default=str) if as_json else summary.format())


@main.command()
@click.argument("uri")
@click.option("--text", default=None, help="Scenes that match this text (CLIP's text tower).")
@click.option("--like", default=None, metavar="CLIP_ID", help="Scenes that look like this stored scene.")
@click.option("--image", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Scenes that look like this image file.")
@click.option("-k", "k", type=click.IntRange(1), default=20, show_default=True, help="How many hits.")
@click.option("--where", default=None, help="SQL filter over candidates columns, e.g. \"keep AND aesthetic > 5\".")
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="Config naming the CLIP model (default: the dataset's last run's).")
@click.option("-p", "--profile", type=click.Choice(PROFILES), default=None, help="Profile the config applies under.")
@click.option("--json", "as_json", is_flag=True, help="Print the hits as JSON.")
def search(uri, text, like, image, k, where, config_path, profile, as_json):
    """Nearest scenes of the dataset at URI to a text, a scene or an image, through a Lance vector index on the
    CLIP embeddings (built on first use, kept up to date by `curate dedup`)."""
    from curate.explore.search import dataset_settings, format_hits
    from curate.explore.search import search as run_search
    from curate.store.lance_store import LanceStore

    try:
        cfg = dataset_settings(uri, config_path, profile)
        store = LanceStore(uri, cfg.storage_options or None)
        if store.open("candidates") is None:
            raise FileNotFoundError(f"no curated dataset at {uri}")
        hits = run_search(store, cfg, text=text, like=like, image=image, k=k, where=where)
    except FileNotFoundError as e:
        _fail(str(e), 1)
    except (ConfigError, ValueError, KeyError, MissingExtra) as e:
        _fail(str(e).strip("'\""))
    click.echo(json.dumps(hits.to_pylist(), indent=2, default=str) if as_json else format_hits(hits))


@main.command()
@click.argument("uri")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def versions(uri, as_json):
    """Every table's versions with their time, row count and tags (run ids are tags `run-<id>`)."""
    from curate.store.lance_store import LanceStore
    from curate.store.versions import list_versions

    info = list_versions(LanceStore(uri))
    if not info:
        _fail(f"no curated dataset at {uri}", 1)
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
        return
    for name, vs in info.items():
        click.echo(f"{name}.lance")
        for v in vs:
            tags = f"  [{', '.join(v['tags'])}]" if v["tags"] else ""
            click.echo(f"  v{v['version']:<4} {v['timestamp']:%Y-%m-%d %H:%M:%S}  {v['rows']:>8} rows{tags}")


@main.command("tag")
@click.argument("uri")
@click.argument("name")
@click.option("--version", "at", default=None,
              help="A tag, or a clips.lance version number (other tables as of that commit). Default: latest.")
def tag_cmd(uri, name, at):
    """Tag the dataset at URI (every table) as NAME, to read it back later by that name."""
    from curate.store.lance_store import LanceStore
    from curate.store.versions import tag

    try:
        tagged = tag(LanceStore(uri), name, at=at)
    except ValueError as e:
        _fail(str(e), 1)
    click.echo(f"tagged {name}: " + ", ".join(f"{k}=v{v}" for k, v in tagged.items()))


@main.command("diff")
@click.argument("uri")
@click.argument("a")
@click.argument("b")
def diff_cmd(uri, a, b):
    """Clips added and removed between versions A and B (tags or clips.lance numbers), and why."""
    from curate.store.lance_store import LanceStore
    from curate.store.versions import diff

    try:
        click.echo(diff(LanceStore(uri), a, b).format())
    except ValueError as e:
        _fail(str(e), 1)


@main.command()
@click.argument("uri")
@click.option("--older-than-days", type=float, default=7.0, show_default=True,
              help="Only versions older than this are removed.")
def cleanup(uri, older_than_days):
    """Remove untagged old versions (and the files only they use). Tagged versions stay readable."""
    from datetime import timedelta

    from curate.store.lance_store import LanceStore
    from curate.store.versions import cleanup as run_cleanup

    removed = run_cleanup(LanceStore(uri), older_than=timedelta(days=older_than_days))
    click.echo("removed versions: " + ", ".join(f"{k}={v}" for k, v in removed.items()))


@main.command()
@click.argument("uri")
@click.option("-o", "--output", default="report.html", show_default=True, type=click.Path(dir_okay=False),
              help="Where the HTML file goes.")
@click.option("--version", "version", default=None,
              help="A tag or clips.lance version number (other tables as of that commit). Default: latest.")
@click.option("--tag", default=None, help="A tag name (`curate versions` lists them; runs are `run-<id>`).")
@click.option("--samples", type=click.IntRange(0), default=4, show_default=True,
              help="Previews of kept clips and of dropped scenes per reason.")
def report(uri, output, version, tag, samples):
    """Write a self-contained HTML report of the dataset at URI: run summary, funnel, score histograms with the
    thresholds, drop reasons, animated sample clips per reason, captions. Opens offline; no JavaScript."""
    from curate.explore.report import write_report

    if version is not None and tag is not None:
        _fail("give --version or --tag, not both")
    try:
        path = write_report(uri, output, version=tag if tag is not None else version, samples=samples)
    except (FileNotFoundError, ValueError) as e:
        _fail(str(e), 1)
    click.echo(f"report: {path}")


@main.command("config")
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="Show this file merged over the defaults (and check it).")
def show_config(config_path):
    """Print the embedded defaults (or a checked, merged config) as YAML."""
    from curate.config import load_config

    try:
        cfg = load_config(config_path)
    except ConfigError as e:
        _fail(str(e))
    click.echo(cfg.to_yaml(), nl=False)


@main.command("demo-corpus")
@click.argument("out_dir")
def demo_corpus(out_dir):
    """Write the deterministic demo corpus and its truth.json into OUT_DIR."""
    from curate.video.democorpus import make_demo_corpus

    for t in make_demo_corpus(out_dir):
        click.echo(f"{t.file}: {t.width}x{t.height} {t.fps} fps, {t.num_frames} frames, scenes at {t.scene_starts}")


@main.command()
@click.option("--workdir", default="demo", show_default=True, help="Where the corpus and the dataset go.")
def demo(workdir):
    """Make the demo corpus and curate it with the tiny profile (what `make demo` runs)."""
    from pathlib import Path

    from curate.api import run as run_job
    from curate.video.democorpus import make_demo_corpus

    corpus, output = Path(workdir) / "corpus", Path(workdir) / "dataset"
    click.echo(f"writing demo corpus to {corpus}")
    make_demo_corpus(corpus)
    summary = run_job([str(corpus)], str(output), profile="tiny")
    click.echo(summary.format())
    click.echo(f"result: {output.resolve()}  (try: curate status {output})")


if __name__ == "__main__":
    main()
