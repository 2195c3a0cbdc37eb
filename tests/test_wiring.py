"""Stages declare the columns they read and write, and the wiring holds them to it: a stage sees only its
inputs, writes only its outputs, and a column leaves the rows once its last reader is done."""

from __future__ import annotations

import pyarrow as pa
import pytest

from curate.config import load_config
from curate.job.pipeline import Step, job_steps, live_columns
from curate.job.stages import SCENE_ROW, PolicyStage, Stage, with_columns
from curate.store.lance_store import LanceStore


class Peek(Stage):
    """Records what `process` was shown; writes `keep` and, against its declaration, `motion`."""

    name = "peek"
    input_columns = ("clip_id", "duration_s")
    output_columns = ("keep",)

    def process(self, rows):
        self.seen = sorted(rows[0])
        return [{**r, "keep": True, "motion": 9.0} for r in rows]


def scene_rows(n: int) -> pa.Table:
    return pa.Table.from_pylist([{"clip_id": f"c{i}", "video_id": "v", "duration_s": 2.0, "samples": [b"jpeg"],
                                  "motion": 0.5} for i in range(n)],
                                schema=pa.schema([SCENE_ROW.field(c) for c in
                                                  ("clip_id", "video_id", "duration_s", "samples", "motion")]))


def test_a_stage_sees_its_inputs_and_writes_only_its_outputs():
    stage = Peek()
    out = stage(scene_rows(3))
    assert stage.seen == ["clip_id", "duration_s"]  # not the samples, not the video id
    assert out.column("keep").to_pylist() == [True] * 3
    assert out.column("motion").to_pylist() == [0.5] * 3  # undeclared write dropped
    assert out.column("samples").to_pylist() == [[b"jpeg"]] * 3  # the rest goes through


def test_a_missing_input_is_a_clear_error():
    with pytest.raises(KeyError, match="stage 'peek' reads duration_s"):
        Peek()(scene_rows(2).drop_columns(["duration_s"]))


def test_keep_columns_drop_what_no_later_stage_reads():
    stage = Peek()
    stage.keep_columns = ("clip_id", "keep")
    assert stage(scene_rows(2)).column_names == ["clip_id", "keep"]


def test_with_columns_keeps_values_a_row_did_not_set():
    table = scene_rows(2)
    out = with_columns(table, [{"motion": 1.0}, {}], ["motion"])
    assert out.column("motion").to_pylist() == [1.0, 0.5]


def test_the_policy_stage_decides_scene_rows_only():
    cfg = load_config(overrides={"policy": {"min_clip_s": 3.0}})
    stage = PolicyStage(cfg)
    table = pa.Table.from_pylist([{"clip_id": "a", "duration_s": 2.0}, {"clip_id": None, "duration_s": None}],
                                 schema=pa.schema([SCENE_ROW.field(c) for c in stage.input_columns]))
    out = stage(table)
    assert out.column("keep").to_pylist() == [False, None]
    assert out.column("drop_reasons").to_pylist() == [["too_short"], None]


def test_the_job_drops_bulky_columns_after_their_last_reader(tmp_path, ray_session):
    cfg = load_config(profile="tiny")
    steps = job_steps(cfg, LanceStore(str(tmp_path / "ds")), run_id="r")
    names = [s.stage.name for s in steps]
    assert names == ["analyze", "score", "aesthetic", "policy", "caption_prep", "caption", "caption_align", "policy",
                     "encode", "write"]
    keeps = dict(zip(names[:6], live_columns(steps)[:6])) | dict(zip(names[6:], live_columns(steps)[6:]))
    assert "samples" in keeps["score"] and "samples" not in keeps["caption_prep"]  # its last reader
    assert "caption_frames" in keeps["caption_prep"] and "caption_frames" not in keeps["caption"]
    assert "clip" in keeps["encode"] and "video" in keeps["encode"]
    assert keeps["write"] is None  # its output is the result
    assert "clip_embedding" in keeps["caption"] and "caption_clip_score" in keeps["caption_align"]
    assert "keyframes" in keeps["encode"]  # stored with the candidates


def test_captioning_off_drops_the_samples_after_scoring(tmp_path, ray_session):
    cfg = load_config(profile="tiny", overrides={"caption": {"enabled": False}})
    steps = job_steps(cfg, LanceStore(str(tmp_path / "ds")), run_id="r")
    keeps = dict(zip([s.stage.name for s in steps], live_columns(steps)))
    assert "samples" not in keeps["score"] and "caption_prep" not in keeps and "caption_align" not in keeps
    cfg = load_config(profile="tiny", overrides={"caption": {"clip_score": False}})
    names = [s.stage.name for s in job_steps(cfg, LanceStore(str(tmp_path / "ds")), run_id="r")]
    assert names.count("policy") == 1 and "caption_align" not in names


def test_live_columns_of_a_plain_chain():
    a, b = Peek(), Peek()
    b.input_columns = ("keep",)
    assert live_columns([Step(a, None), Step(b, None)]) == [("keep",), None]


def test_the_analysis_stage_yields_one_scene_at_a_time(testdata):
    from curate.job.analyze import SampleSpool, analyze_source
    from curate.job.stages import AnalyzeStage
    from curate.video.sources import Source

    cfg = load_config()
    video = str(testdata / "videos" / "bikes.mp4")
    batch = pa.Table.from_pylist([{"uri": video, "source_meta": None}])
    tables = list(AnalyzeStage(cfg)(batch))
    expected = analyze_source(Source(video), cfg)
    assert len(expected) > 1 and [t.num_rows for t in tables] == [1] * len(expected)
    assert [t.column("clip_id")[0].as_py() for t in tables] == [r["clip_id"] for r in expected]
    assert [t.column("samples")[0].as_py() for t in tables] == [r["samples"] for r in expected]

    spool = SampleSpool()
    for data in (b"a" * 3, b"", b"bc"):
        spool.append(data)
    assert len(spool) == 3 and [spool[i] for i in (2, 0, 1)] == [b"bc", b"aaa", b""]
    spool.close()


def test_a_scene_row_that_cannot_be_built_fails_its_video_in_one_line(testdata, monkeypatch):
    from curate.job import analyze
    from curate.video.sources import Source

    def broken(*args):
        raise ValueError("keyframe JPEG\nunreadable")

    monkeypatch.setattr(analyze, "_keyframe", broken)
    rows = analyze.analyze_source(Source(str(testdata / "videos" / "bikes.mp4")), load_config())
    assert len(rows) == 1 and rows[0]["clip_id"] is None
    assert rows[0]["video"]["status"] == "failed" and "\n" not in rows[0]["video"]["error"]
