"""Versioning: list, tag, diff (runs with different thresholds name the right clips), cleanup."""

import lance
import pytest
from click.testing import CliRunner

import curate
from curate.cli import main
from curate.store.lance_store import LanceStore
from curate.store.versions import cleanup, diff, list_versions, resolve, tag


@pytest.fixture()
def two_versions(demo_dataset, demo_copy, tmp_path, ray_session):
    """A copy of the demo dataset, then a refilter with looser thresholds: (dir, first tag, second tag)."""
    out = demo_copy
    loose = tmp_path / "loose.yaml"
    loose.write_text("profile: tiny\npolicy: {min_motion: null, max_watermark_prob: null, max_text_area: null,\n"
                     "  max_persistent_text_area: null, max_dark_fraction: null,\n"
                     "  max_blank_fraction: null}\n")
    second = curate.refilter(str(out), config=str(loose))
    return out, demo_dataset[1].tag, f"run-{second.run_id}"


def test_diff_names_the_clips_the_thresholds_changed(two_versions):
    out, first, second = two_versions
    store = LanceStore(str(out))
    before = {r["clip_id"]: r for r in store.open("candidates", version=first).to_table().to_pylist()}
    newly = sorted(cid for cid, r in before.items() if not r["keep"] and r["drop_reasons"] != ["too_short"])
    d = diff(store, first, second)
    assert [cid for cid, _ in d.added] == newly and newly
    for cid, why in d.added:
        assert why.startswith("new thresholds (was dropped: ") and before[cid]["drop_reasons"][0] in why
    assert d.removed == [] and d.captions_changed == []
    back = diff(store, second, first)  # the other way: the same clips removed, with the reasons that apply
    assert [cid for cid, _ in back.removed] == newly
    assert all(why.startswith("new thresholds (now: ") for _, why in back.removed)


def test_versions_tag_and_time_travel(two_versions):
    out, first, second = two_versions
    store = LanceStore(str(out))
    info = list_versions(store)
    assert set(info) == {"videos", "candidates", "clips", "runs"}
    assert any(first in v["tags"] for v in info["clips"]) and any(second in v["tags"] for v in info["clips"])
    first_clips = resolve(store, first)["clips"]
    # A number is a clips.lance version; the other tables come as of that commit.
    assert resolve(store, first_clips)["candidates"] == resolve(store, first)["candidates"]
    tagged = tag(store, "baseline", at=first_clips)
    assert tagged["clips"] == first_clips
    assert store.open("clips", version="baseline").count_rows() == store.open("clips", version=first).count_rows()
    with pytest.raises(ValueError, match="no tag 'nope'"):
        resolve(store, "nope")
    result = CliRunner().invoke(main, ["diff", str(out), "baseline", second])
    assert result.exit_code == 0 and "new thresholds" in result.output
    assert CliRunner().invoke(main, ["versions", str(out)]).exit_code == 0


def test_cleanup_keeps_tagged_versions(two_versions):
    out, first, second = two_versions
    store = LanceStore(str(out))
    counts = {n: store.open(n, version=first).count_rows() for n in ("videos", "candidates", "clips")}
    from datetime import timedelta

    removed = cleanup(store, older_than=timedelta(0))
    assert sum(removed.values()) > 0  # the job's intermediate, untagged commits
    for n, rows in counts.items():
        assert lance.dataset(str(out / f"{n}.lance"), version=first).count_rows() == rows
        assert store.open(n, version=second) is not None
    versions = list_versions(store)["clips"]
    assert all(v["tags"] or v["version"] == versions[-1]["version"] for v in versions)
