"""The CLI's contract (help, config, errors) and input expansion (files, directories, globs, manifests)."""

import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from click.testing import CliRunner

from curate.cli import main
from curate.config import Config
from curate.video.sources import expand_inputs

EXTS = Config().input.extensions


def test_help_lists_every_command():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for cmd in ("run", "status", "config", "demo", "demo-corpus"):
        assert cmd in result.output


def test_config_prints_the_defaults():
    result = CliRunner().invoke(main, ["config"])
    assert result.exit_code == 0
    assert yaml.safe_load(result.output) == Config().to_dict()


def test_run_with_bad_config_names_the_field(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("encode:\n  crf: high\n")
    result = CliRunner().invoke(main, ["run", str(tmp_path), "-o", str(tmp_path / "o"), "-c", str(cfg)])
    assert result.exit_code == 2
    assert "config field 'encode.crf' must be an integer" in result.output


def test_run_with_no_videos_is_an_error(tmp_path):
    result = CliRunner().invoke(main, ["run", str(tmp_path), "-o", str(tmp_path / "o")])
    assert result.exit_code == 2 and "no input videos found" in result.output


def test_status_of_a_missing_dataset(tmp_path):
    result = CliRunner().invoke(main, ["status", str(tmp_path / "nothing")])
    assert result.exit_code == 1 and "no curated dataset" in result.output


def test_directories_globs_and_files(tmp_path):
    (tmp_path / "a" / "deep").mkdir(parents=True)
    for rel in ("a/x.mp4", "a/deep/y.MKV", "a/notes.txt", "z.webm"):
        (tmp_path / rel).write_bytes(b"0")
    found = [s.uri for s in expand_inputs([str(tmp_path / "a")], extensions=EXTS)]
    assert found == [str(tmp_path / "a/deep/y.MKV"), str(tmp_path / "a/x.mp4")]
    found = [s.uri for s in expand_inputs([str(tmp_path / "**" / "*.mp4"), str(tmp_path / "z.webm")],
                                          extensions=EXTS)]
    assert found == [str(tmp_path / "a/x.mp4"), str(tmp_path / "z.webm")]
    # A named file is taken whatever its extension (it will get a failed row if it is not a video).
    assert [s.uri for s in expand_inputs([str(tmp_path / "a/notes.txt")], extensions=EXTS)] == [
        str(tmp_path / "a/notes.txt")]
    # Duplicates collapse.
    assert len(expand_inputs([str(tmp_path / "a"), str(tmp_path / "a/x.mp4")], extensions=EXTS)) == 2


def test_parquet_manifest_with_relative_paths_and_metadata(tmp_path):
    (tmp_path / "v.mp4").write_bytes(b"0")
    pq.write_table(pa.table({"uri": ["v.mp4", "s3://bucket/k.mp4"], "source": ["local", "cloud"]}),
                   tmp_path / "m.parquet")
    found = expand_inputs([str(tmp_path / "m.parquet")], extensions=EXTS)
    assert [s.uri for s in found] == [str(tmp_path / "v.mp4"), "s3://bucket/k.mp4"]
    assert [s.meta for s in found] == [{"source": "local"}, {"source": "cloud"}]


def test_manifest_without_uri_column(tmp_path):
    import pytest

    (tmp_path / "m.csv").write_text("path\nx.mp4\n")
    with pytest.raises(ValueError, match="no 'uri' column"):
        expand_inputs([str(tmp_path / "m.csv")], extensions=EXTS)
