"""The whole Ray job on the demo corpus and on bad input: tables, schemas, counts, playable clips, versions."""

import io

import av
import lance
import pytest
from badfiles import make_bad_files

import curate
from curate.job.analyze import decode_jpeg
from curate.store import ids
from curate.store.lance_store import LanceStore
from curate.store.schema import TABLES
from curate.video.democorpus import load_truth
from filters.motion import LABELS


def table(out, name, **kw):
    return lance.dataset(str(out / f"{name}.lance"), **kw).to_table().to_pylist()


def test_tables_and_schemas(demo_dataset):
    out, _ = demo_dataset
    for name, schema in TABLES.items():
        stored = lance.dataset(str(out / f"{name}.lance")).schema
        assert stored.names == schema.names, name
        for field in schema:
            if field.metadata and b"lance-encoding:blob" in field.metadata:
                assert "blob" in str(stored.field(field.name).type)  # stored out of line, read lazily
            else:
                assert stored.field(field.name).type == field.type, (name, field.name)


def test_a_run_ends_compacted_and_indexed(demo_dataset):
    """Each table in few fragments (the workers wrote one or more per video), BTREE indexes on the ids that
    resume, refilter and diff join on, covering every row."""
    from curate.store.lance_store import INDEXED

    out, summary = demo_dataset
    for name in ("videos", "candidates", "clips"):
        ds = lance.dataset(str(out / f"{name}.lance"))
        assert len(ds.get_fragments()) == 1, (name, len(ds.get_fragments()))
        indexes = {ix.field_names[0]: ix for ix in ds.describe_indices()}
        assert set(indexes) == set(INDEXED[name]), (name, indexes)
        assert all(ix.num_rows_indexed == ds.count_rows() for ix in indexes.values()), name
        assert ds.to_table(filter="video_id IS NOT NULL").num_rows == ds.count_rows()
    assert summary.versions["clips"] == lance.dataset(str(out / "clips.lance"), version=summary.tag).version


def test_summary_says_where_the_time_went(demo_dataset):
    """Ray's share apart from the work: the driver's phases add up within the wall time, commits happen inside the
    execution, and every stage's busy time comes from Ray Data's own stats (fused stages as one operator)."""
    _, summary = demo_dataset
    t = summary.timings
    assert set(t) == {"prepare_s", "ray_start_s", "execute_s", "commit_s", "finish_s"}
    assert t["prepare_s"] + t["ray_start_s"] + t["execute_s"] <= summary.wall_s + 0.01
    assert 0 < t["commit_s"] <= t["execute_s"]
    busy = summary.stage_busy_s
    assert next(iter(busy)).startswith("Analyze"), busy  # in graph order
    assert any("Encode" in name for name in busy) and any("Caption" in name for name in busy), busy
    assert all(s > 0 for s in busy.values()), busy
    assert "stages busy: Analyze" in summary.format()


def test_rows_match_the_truth(demo_dataset, demo_corpus):
    out, summary = demo_dataset
    truth = {t.file: t for t in load_truth(demo_corpus)}
    videos = {v["uri"].rsplit("/", 1)[1]: v for v in table(out, "videos")}
    assert set(videos) == set(truth)
    for name, v in videos.items():
        t = truth[name]
        assert v["status"] == "ok" and v["error"] is None
        assert (v["width"], v["height"], v["num_frames"]) == (t.width, t.height, t.num_frames)
        assert v["avg_fps"] == pytest.approx(t.fps)
        assert v["num_scenes"] == len(t.scene_starts)
        assert v["model_profile"] == "tiny" and v["run_id"] == summary.run_id
    cands = table(out, "candidates")
    assert len(cands) == sum(len(t.scene_starts) for t in truth.values()) == summary.scenes
    by_video = {v["video_id"]: n for n, v in videos.items()}
    for c in cands:
        assert c["clip_id"] == ids.clip_id(c["video_id"], c["start_frame"], c["end_frame"])
        assert c["start_frame"] in truth[by_video[c["video_id"]]].scene_starts
        assert 1 <= len(c["keyframes"]) <= 3
        assert decode_jpeg(c["keyframes"][0]).shape[2] == 3
        assert c["keep"] is (not c["drop_reasons"])
        assert c["model_profile"] == "tiny" and "tiny" in c["aesthetic_model"]
        assert c["sharpness"] is not None and c["camera_motion"] in LABELS
        assert len(c["clip_embedding"]) == 64  # the tiny open_clip's width
    reasons = {(by_video[c["video_id"]], c["start_frame"]): set(c["drop_reasons"]) for c in cands}
    assert "too_short" in reasons[("short_mpeg4.avi", 0)]
    assert "too_dark" in reasons[("dark_h264.mkv", 0)]
    assert "watermark" in reasons[("pan_logo_h264.mp4", 0)]  # the logo over a pan
    assert "static" in reasons[("cuts_h264.mp4", 90)]  # the still third scene
    assert reasons[("fast_cuts_60fps.mkv", 70)] == set()  # a clean pan is kept
    labels = {(by_video[c["video_id"]], c["start_frame"]): c["camera_motion"] for c in cands}
    assert labels[("pan_logo_h264.mp4", 0)] == labels[("fast_cuts_60fps.mkv", 70)] == "pan_right"
    assert len({c["clip_id"] for c in cands}) == len(cands)


def test_clips_are_playable_and_the_right_length(demo_dataset):
    out, summary = demo_dataset
    ds = lance.dataset(str(out / "clips.lance"))
    rows = ds.to_table(columns=["clip_id", "num_frames", "fps", "width", "height", "duration_s", "start_s",
                                "end_s"]).to_pylist()
    kept = [c for c in table(out, "candidates") if c["keep"]]
    assert len(rows) == len(kept) == summary.kept == summary.clips
    blobs = ds.take_blobs("video", indices=list(range(len(rows))))
    for row, blob in zip(rows, blobs):
        with av.open(io.BytesIO(blob.read())) as c:
            stream = c.streams.video[0]
            frames = list(c.decode(stream))
            assert stream.codec_context.name == "h264"
        assert len(frames) == row["num_frames"]
        assert (frames[0].width, frames[0].height) == (row["width"], row["height"])
        assert min(row["width"], row["height"]) <= 720 and row["fps"] <= 30
        assert row["duration_s"] == pytest.approx(row["end_s"] - row["start_s"], abs=1.5 / row["fps"])


def test_run_record_tags_and_time_travel(demo_dataset):
    out, summary = demo_dataset
    runs = table(out, "runs")
    assert runs[-1]["run_id"] == summary.run_id and runs[-1]["status"] == "completed"
    assert len(runs[-1]["config_hash"]) == 16 and runs[-1]["package_version"]
    info = curate.status(str(out))
    for name in ("videos", "candidates", "clips"):
        assert info["tables"][name]["tags"][summary.tag] == summary.versions[name]
        tagged = lance.dataset(str(out / f"{name}.lance"), version=summary.tag)
        assert tagged.count_rows() == info["tables"][name]["rows"]
        assert lance.dataset(str(out / f"{name}.lance"), version=1).count_rows() == 0  # created empty


def test_rerun_skips_finished_videos(demo_dataset, demo_copy, demo_corpus):
    """A second run into a finished output (a private copy: the shared demo dataset stays as the job wrote it)
    skips every video, adds no rows, and records itself as a run."""
    shared, first = demo_dataset

    def versions(out):  # each table's latest version and its tags
        tables = {n: lance.dataset(str(out / f"{n}.lance")) for n in TABLES}
        return {n: (ds.version, sorted(ds.tags.list())) for n, ds in tables.items()}

    shared_before, shared_runs = versions(shared), table(shared, "runs")
    assert versions(demo_copy) == shared_before  # the copy opens as the same dataset
    before = {n: lance.dataset(str(demo_copy / f"{n}.lance")).count_rows() for n in ("videos", "candidates", "clips")}
    again = curate.run([str(demo_corpus)], str(demo_copy), profile="tiny", progress=False)
    assert again.videos_skipped == 7 and again.videos_ok == 0
    after = {n: lance.dataset(str(demo_copy / f"{n}.lance")).count_rows() for n in before}
    assert after == before
    runs = {r["run_id"] for r in table(demo_copy, "runs")}
    assert runs == {r["run_id"] for r in shared_runs} | {again.run_id} and again.run_id != first.run_id
    assert versions(shared) == shared_before and table(shared, "runs") == shared_runs


def test_bad_inputs_through_the_job(tmp_path, ray_session):
    files = make_bad_files(tmp_path / "bad")
    from curate.config import load_config

    inputs = [str(p) for k, p in files.items() if k != "directory"]
    # Score-only: this test is about bad input, not the policy (the files' fixed marker reads as an overlay).
    cfg = load_config(profile="tiny", overrides={"policy": {"score_only": True}})
    summary = curate.run(inputs, str(tmp_path / "out"), config=cfg, progress=False)
    videos = {v["uri"].rsplit("/", 1)[1]: v for v in table(tmp_path / "out", "videos")}
    assert len(videos) == len(inputs)
    failed = {n for n, v in videos.items() if v["status"] == "failed"}
    assert failed == {"zero_byte.mp4", "text_named.mp4", "truncated.mp4", "audio_only.mp4",
                      "unsupported_codec.avi", "huge.mp4", "missing.mp4"}
    assert all(videos[n]["error"] for n in failed)
    assert summary.videos_failed == len(failed) and summary.videos_ok == len(inputs) - len(failed)
    clips = lance.dataset(str(tmp_path / "out" / "clips.lance")).to_table(
        columns=["source_uri", "width", "height"]).to_pylist()
    rotated = [c for c in clips if c["source_uri"].endswith("rotated.mp4")]
    assert rotated and (rotated[0]["width"], rotated[0]["height"]) == (96, 160)
    assert any(c["source_uri"].endswith("vfr.mkv") for c in clips)
    assert any(c["source_uri"].endswith("corrupt_middle.mp4") for c in clips)


def test_store_removes_rows_of_unfinished_videos(tmp_path):
    import pyarrow as pa

    from curate.store.schema import CANDIDATES

    store = LanceStore(str(tmp_path / "ds"))
    store.ensure_tables()
    rows = [{"clip_id": f"c{i}", "video_id": vid, "keep": True} for i, vid in enumerate(["done", "cut", "cut"])]
    store.commit_fragments("candidates", store.write_fragments("candidates", pa.Table.from_pylist(rows, CANDIDATES)),
                           message="t")
    store.upsert_rows("videos", [{"video_id": "done", "uri": "/x.mp4", "status": "ok"}], key="uri")
    assert store.drop_unfinished() == 1
    left = store.open("candidates").to_table(columns=["video_id"]).column("video_id").to_pylist()
    assert left == ["done"]
    assert store.finished_uris() == {"/x.mp4"}


def test_stream_copy_records_where_clips_really_start(testdata, tmp_path, ray_session):
    from curate.config import load_config

    # Splits bigbuckbunny mid-GOP, so copies must start on an earlier keyframe; keep every part.
    cfg = load_config(profile="tiny", overrides={"encode": {"mode": "copy"}, "scenes": {"max_scene_s": 2.0},
                                                 "policy": {"score_only": True}})
    curate.run([str(testdata / "videos" / "bigbuckbunny.mp4")], str(tmp_path / "o"), config=cfg, progress=False)
    cands = {c["clip_id"]: c for c in table(tmp_path / "o", "candidates")}
    clips = table(tmp_path / "o", "clips")
    assert len(clips) == len(cands) == 3
    assert any(c["start_frame"] < cands[c["clip_id"]]["start_frame"] for c in clips)
    blobs = lance.dataset(str(tmp_path / "o" / "clips.lance")).take_blobs("video", indices=[0, 1, 2])
    for c, blob in zip(clips, blobs):
        assert c["start_frame"] <= cands[c["clip_id"]]["start_frame"]
        assert c["num_frames"] == c["end_frame"] - c["start_frame"]
        with av.open(io.BytesIO(blob.read())) as f:
            assert sum(1 for _ in f.decode(video=0)) == c["num_frames"]


def test_every_kept_clip_gets_a_schema_valid_caption(demo_dataset):
    """The tiny profile captions with a tiny random Qwen2.5-VL held to the prompt's JSON schema while decoding:
    every kept clip gets a `caption_json` with every field of the prompt, none fails as malformed, truncated or
    missing fields. The content checks may still reject random text (too short, repetitive): such a clip keeps
    its parsed answer beside the reason after all retries, and is never lost."""
    import json

    import lance

    from captioner.checks import MALFORMED, MISSING, TRUNCATED
    from captioner.prompts import get_prompt
    from captioner.tiny import TINY_NAME
    from curate.config import load_config

    out, summary = demo_dataset
    rows = lance.dataset(str(out / "clips.lance")).to_table(
        columns=["clip_id", "caption", "caption_json", "caption_status", "caption_error", "caption_attempts",
                 "caption_tokens", "caption_model", "prompt_id", "model_profile"]).to_pylist()
    retries = load_config(profile="tiny").caption.max_retries
    fields = set(get_prompt("dense-v1").fields)
    assert rows and len(rows) == summary.clips
    for r in rows:
        assert r["caption_status"] in ("ok", "failed")
        assert r["caption_model"].startswith(TINY_NAME) and "random weights" in r["caption_model"]
        assert r["prompt_id"] == "dense-v1" and r["caption_tokens"] > 0
        answer = json.loads(r["caption_json"])
        assert set(answer) == fields and all(answer.values())
        if r["caption_status"] == "failed":
            assert r["caption_attempts"] == 1 + retries and r["caption"] is None
            assert not r["caption_error"].startswith((MALFORMED, MISSING, TRUNCATED)), r["caption_error"]
        else:
            assert r["caption"] == answer["dense_caption"]
    assert summary.captioned + summary.caption_failed == len(rows)
    assert summary.captioned == sum(r["caption_status"] == "ok" for r in rows)
    assert summary.caption_retried == sum(r["caption_attempts"] > 1 for r in rows)
    assert summary.caption_tokens == sum(r["caption_tokens"] for r in rows)
    assert "captions:" in summary.format()
