"""`curate report`: a self-contained page checked in a real headless Chromium; versions; escaping.

The browser check keeps a screenshot at artifacts/report.png (CI keeps it). Without Chromium it is skipped
locally and fails under CI (`CI` set), where `make test` installs Debian's chromium first.
"""

import base64
import html
import importlib.util
import io
import os
import re
from pathlib import Path

import lance
import pytest
from click.testing import CliRunner

import curate
from curate.cli import main
from curate.explore.report import SECTIONS, build_report
from curate.store.versions import resolve

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
HOSTILE = '<script>alert("x")</script> & <b>not bold</b>'


@pytest.fixture(scope="module")
def versioned(demo_dataset, copy_demo, tmp_path_factory):
    """A copy of the demo dataset, refiltered with a stricter min_clip_s (drops clips, encodes none), and one
    clip given a caption full of markup: (dir, the first run's tag, its funnel)."""
    out = copy_demo(tmp_path_factory.mktemp("report"))
    first = demo_dataset[1].tag
    kept = sorted(curate.open(str(out)).candidates(columns=["duration_s"], filter="keep = true")["duration_s"])
    strict = out.parent / "strict.yaml"
    strict.write_text(f"profile: tiny\npolicy: {{min_clip_s: {kept[len(kept) // 2]}}}\n")
    assert curate.refilter(str(out), config=str(strict)).newly_dropped > 0
    clips = lance.dataset(str(out / "clips.lance"))
    clip_id = clips.to_table(columns=["clip_id"], limit=1).column(0)[0].as_py()
    clips.update({"caption": f"'{HOSTILE}'", "caption_status": "'ok'"}, where=f"clip_id = '{clip_id}'")
    return out, first, curate.open(str(out), version=first).funnel()


@pytest.fixture(scope="module")
def latest_report(versioned, tmp_path_factory) -> Path:
    """`curate report` of the latest version: the file it wrote."""
    path = tmp_path_factory.mktemp("html") / "report.html"
    result = CliRunner().invoke(main, ["report", str(versioned[0]), "-o", str(path)])
    assert result.exit_code == 0, result.output
    assert f"report: {path.resolve()}" in result.output
    return path


def _funnel(page: str) -> dict[str, int]:
    section = page.split('<section id="funnel">')[1].split("</section>")[0]
    return {k: int(v) for k, v in re.findall(r"<tr><td>(\w+)</td><td class=num>(\d+)</td>", section)}


def _chromium_or_skip():
    if importlib.util.find_spec("playwright") is None:
        reason = "the playwright package is not installed (pip install -e '.[dev]')"
    elif not os.path.exists(CHROMIUM):
        reason = f"Chromium not found at {CHROMIUM}: `make test` installs Debian's chromium when run as root"
    else:
        return
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def test_report_in_headless_chromium(latest_report):
    _chromium_or_skip()
    from playwright.sync_api import sync_playwright

    path = latest_report
    page_html = path.read_text()
    # Self-contained and inert: no external loads, no script; the dataset's markup is text.
    assert not re.search(r'(src|href)="(?!data:|#)', page_html) and "<script" not in page_html
    assert html.escape(HOSTILE) in page_html
    webp = re.search(r'src="data:image/webp;base64,([^"]+)"', page_html).group(1)
    from PIL import Image

    assert Image.open(io.BytesIO(base64.b64decode(webp))).n_frames > 1  # an animated preview

    problems = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
            page.on("request", lambda r: problems.append(f"request: {r.url}") if not r.url.startswith(
                ("file:", "data:")) else None)
            page.goto(path.resolve().as_uri(), wait_until="load")
            for sid, title in SECTIONS.items():
                section = page.locator(f"section#{sid}")
                assert section.is_visible() and section.locator("h2").inner_text() == title
            images = page.evaluate("[...document.images].map(i => [i.alt, i.complete, i.naturalWidth])")
            assert len(images) >= 10 and all(ok and w > 0 for _, ok, w in images), images
            assert HOSTILE in page.locator("#captions").inner_text()
            (REPO / "artifacts").mkdir(exist_ok=True)
            page.screenshot(path=str(REPO / "artifacts" / "report.png"), full_page=True)
        finally:
            browser.close()
    assert problems == []
    assert (REPO / "artifacts" / "report.png").stat().st_size > 10_000


def test_report_at_a_version(versioned, latest_report, tmp_path):
    out, first, first_funnel = versioned
    latest = latest_report.read_text()
    assert _funnel(latest) == curate.open(str(out)).funnel() and "latest version" in latest
    assert _funnel(latest)["kept"] < first_funnel["kept"]
    by_tag = tmp_path / "first.html"
    result = CliRunner().invoke(main, ["report", str(out), "--tag", first, "-o", str(by_tag), "--samples", "1"])
    assert result.exit_code == 0, result.output
    page = by_tag.read_text()
    assert _funnel(page) == first_funnel and f"version {first}" in page and html.escape(HOSTILE) not in page
    number = resolve(curate.open(str(out)).store, first)["clips"]  # the same version by its clips.lance number
    assert _funnel(build_report(str(out), version=number, samples=0)) == first_funnel
    both = CliRunner().invoke(main, ["report", str(out), "--tag", first, "--version", "1"])
    assert both.exit_code == 2 and "not both" in both.output
    missing = CliRunner().invoke(main, ["report", str(out), "--tag", "nope", "-o", str(tmp_path / "x.html")])
    assert missing.exit_code == 1 and "no tag 'nope'" in missing.output
