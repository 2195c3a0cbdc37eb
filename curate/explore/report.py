"""`curate report URI`: one self-contained HTML page about a dataset version.

Sections (their element ids are stable, tests and links rely on them): `summary` (runs, table versions, config),
`funnel`, `histograms` (every thresholded score, kept and dropped, the run's thresholds drawn on), `drop-reasons`,
`samples` (animated previews of kept clips and of dropped scenes per reason), `duplicates` (the largest duplicate
groups of the last `curate dedup`, kept scene first) and `captions`. Images are inline
data URIs and the CSS is inline: the file opens anywhere, offline, and can be attached to a ticket as it is.
No JavaScript. Every piece of text from the dataset is escaped.
"""

from __future__ import annotations

import html
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from curate.explore.notebook import Dataset
from curate.explore.visuals import histograms_plot
from filters.policy import DUPLICATE, RULES

SECTIONS = {"summary": "Run summary", "funnel": "Funnel", "histograms": "Score histograms",
            "drop-reasons": "Drop reasons", "samples": "Sample clips per reason", "duplicates": "Duplicate groups",
            "captions": "Captions"}

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1280px;padding:0 16px 40px;color:#222}
nav a{margin-right:12px} section{border-top:1px solid #ddd;padding-top:8px;margin-top:20px}
table{border-collapse:collapse;margin:8px 0} td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;
vertical-align:top} th{background:#f4f4f4} .num{text-align:right;font-variant-numeric:tabular-nums}
.bar{background:#5c6bc0;height:12px;display:inline-block} pre{background:#f7f7f7;padding:8px;overflow:auto}
figure.hist{display:inline-block;margin:4px} .empty{color:#777;font-style:italic}
"""

_RUN_COLUMNS = ["run_id", "status", "started_at", "finished_at", "model_profile", "package_version", "config_hash",
                "inputs", "videos_ok", "videos_failed", "scenes", "kept", "hours_in", "hours_out", "wall_s"]


def _table(header: list[str], rows: list[list], numeric: set[int] = frozenset()) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f'<td{" class=num" if i in numeric else ""}>{html.escape(_fmt(v))}</td>'
                                    for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(v) -> str:
    if isinstance(v, (list, tuple, np.ndarray)):  # pandas hands a list column over as numpy arrays
        return ", ".join(map(str, v))
    if v is None or v != v:  # None or NaN
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, datetime):
        return f"{v:%Y-%m-%d %H:%M:%S}"
    return str(v)


def _bars(header: str, rows: list[tuple[str, int, str]], top: int) -> str:
    """A table of (label, count, share text) rows, each with a bar scaled to `top`."""
    body = "".join(f"<tr><td>{html.escape(k)}</td><td class=num>{v}</td><td class=num>{html.escape(share)}</td>"
                   f'<td><span class="bar" style="width:{300 * v / max(top, 1):.0f}px"></span></td></tr>'
                   for k, v, share in rows)
    return f"<table><tr><th>{header}</th><th>count</th><th>share</th><th></th></tr>{body}</table>"


def _reasons(counts: dict[str, int], total: int) -> str:
    """Drop reasons with their counts, shares of all `total` scenes and bars."""
    return _bars("", [(k, v, f"{100 * v / max(total, 1):.0f}%") for k, v in counts.items()], total)


def _funnel(f: dict[str, int]) -> str:
    """Each stage with its count, its share of the stage it comes from, and a bar."""
    of = {"videos_ok": "videos", "kept": "scenes", "clips": "kept", "captioned": "clips"}
    rows = [(k, v, f"{100 * v / f[of[k]]:.0f}% of {of[k]}" if k in of and f[of[k]] else "") for k, v in f.items()]
    return _bars("stage", rows, max(f.values()))


def _summary(ds: Dataset, label: str) -> str:
    runs = ds.runs()
    versions = ds.table_versions()
    parts = [f"<p>dataset <code>{html.escape(ds.store.uri)}</code> at <b>{html.escape(label)}</b></p>",
             _table(["table", "version", "tags"],
                    [[f"{n}.lance", v["version"], ", ".join(v["tags"])] for n, v in versions.items()], {1})]
    if runs.empty:
        parts.append('<p class="empty">no run recorded at this version</p>')
    else:
        runs = runs.tail(8)  # one column a run (the last ones), one row a field
        cols = [c for c in _RUN_COLUMNS if c in runs.columns]
        parts.append(_table(["run", *[f"#{i + 1}" for i in range(len(runs))]],
                            [[c, *runs[c].astype(object)] for c in cols], set(range(1, len(runs) + 1))))
        parts.append(f"<details><summary>config of run {html.escape(runs['run_id'].iloc[-1])}</summary>"
                     f"<pre>{html.escape(runs['config_yaml'].iloc[-1] or '')}</pre></details>")
    return "".join(parts)


def _histograms(ds: Dataset) -> str:
    policy = ds.policy()
    scores = ds.score_columns()
    frame = ds.candidates(columns=[*scores, "keep"])
    figures = "".join(
        f'<figure class="hist"><img src="{histograms_plot(frame, policy, [c]).data_uri}" alt="{html.escape(c)}"/>'
        f"</figure>" for c in scores)
    rows = [[field, column, f"{kind} {getattr(policy, field)}", reason] for column, kind, field, reason in RULES
            if getattr(policy, field) is not None]
    if policy.drop_duplicates:
        column, field, reason = DUPLICATE
        rows.append([field, column, "set (curate dedup)", reason])
    note = " (score_only: nothing is dropped, reasons are recorded)" if policy.score_only else ""
    return (f"<p>Thresholds in force{html.escape(note)}:</p>" + _table(["threshold", "score", "rule", "reason"], rows)
            + f"<div>{figures}</div>")


def _duplicates(ds: Dataset, samples: int) -> str:
    groups = ds.duplicate_groups()
    if not groups:
        return '<p class="empty">no duplicate groups (run <code>curate dedup</code>)</p>'
    members = sum(groups.values())
    head = (f"<p>{len(groups)} groups, {members} scenes, {members - len(groups)} marked duplicate_of the kept one"
            f" (largest: {max(groups.values())})</p>")
    return head + (ds.duplicates(n=max(samples, 1) * 2, members=samples or 3)._repr_html_())


def build_report(uri: str, *, version: str | int | None = None, samples: int = 4,
                 storage_options: dict | None = None) -> str:
    """The report's HTML for the dataset at `uri`, at `version` (a tag or clips.lance number; None: latest).

    Raises:
        FileNotFoundError: no curated dataset at `uri`.
        ValueError: no such tag or version.
    """
    ds = Dataset(uri, version, storage_options=storage_options)
    label = "latest version" if version is None else f"version {version}"
    funnel = ds.funnel()
    reasons = ds.drop_reasons()
    body = {
        "summary": _summary(ds, label),
        "funnel": _funnel(funnel),
        "histograms": _histograms(ds),
        "drop-reasons": (_reasons(reasons, funnel["scenes"]) + "<p>A scene counts under every reason that applies.</p>"
                         if reasons else '<p class="empty">no scene was dropped</p>'),
        "samples": (ds.preview_by_reason(n=samples, animated=True)._repr_html_() if samples > 0
                    else '<p class="empty">no previews asked for (--samples 0)</p>'),
        "duplicates": _duplicates(ds, samples),
        "captions": ds.captions(n=50)._repr_html_(),
    }
    nav = "".join(f'<a href="#{k}">{html.escape(v)}</a>' for k, v in SECTIONS.items())
    sections = "".join(f'<section id="{k}"><h2>{html.escape(SECTIONS[k])}</h2>{v}</section>' for k, v in body.items())
    title = f"vidcurate report: {ds.store.uri} ({label})"
    made = f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1><p>made {made}</p><nav>{nav}</nav>"
            f"{sections}</body></html>")


def write_report(uri: str, output: str | Path = "report.html", **kw) -> Path:
    """Writes `build_report(uri, **kw)` to `output`; returns its path."""
    path = Path(output)
    html_text = build_report(uri, **kw)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html_text, encoding="utf-8")
    return path.resolve()
