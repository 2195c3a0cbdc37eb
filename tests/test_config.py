from pathlib import Path

import pytest
import yaml

from curate.config import Config, ConfigError, config_from_dict, default_yaml, load_config

REPO = Path(__file__).resolve().parent.parent


def test_default_yaml_file_matches_embedded_defaults():
    on_disk = yaml.safe_load((REPO / "configs" / "default.yaml").read_text())
    assert on_disk == Config().to_dict()
    assert yaml.safe_load(default_yaml()) == on_disk


def test_partial_file_overrides_only_its_fields(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("scenes:\n  detector: content\nencode:\n  crf: 30\n")
    cfg = load_config(p, profile="tiny")
    assert (cfg.scenes.detector, cfg.encode.crf, cfg.profile) == ("content", 30, "tiny")
    assert cfg.scenes.max_scene_s == Config().scenes.max_scene_s


@pytest.mark.parametrize("data, field", [
    ({"scenes": {"detectr": "adaptive"}}, "scenes.detectr"),
    ({"scenes": {"detector": "magic"}}, "scenes.detector"),
    ({"scenes": {"min_scene_frames": "ten"}}, "scenes.min_scene_frames"),
    ({"encode": {"crf": 99}}, "encode.crf"),
    ({"encode": {"mode": "lossless"}}, "encode.mode"),
    ({"policy": {"min_clip_s": 5, "max_clip_s": 2}}, "policy.max_clip_s"),
    ({"resources": {"encode": {"num_gpus": -1}}}, "resources.encode.num_gpus"),
    ({"samples": {"fps": True}}, "samples.fps"),
    ({"profile": "huge"}, "profile"),
    ({"input": {"extensions": ["mp4"]}}, "input.extensions"),
    ({"scenes": 3}, "scenes"),
])
def test_bad_config_names_the_field(data, field):
    with pytest.raises(ConfigError, match=f"'{field}'"):
        config_from_dict(data)


def test_yaml_is_parsed_safely(tmp_path):
    p = tmp_path / "evil.yaml"
    p.write_text("profile: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(p)


def test_missing_file_and_non_mapping(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    p = tmp_path / "list.yaml"
    p.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(p)


def test_digest_changes_with_any_setting():
    a, b = Config(), Config()
    assert a.digest() == b.digest()
    b.encode.crf = 21
    assert a.digest() != b.digest()
