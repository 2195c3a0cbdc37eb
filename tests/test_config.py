import pickle
from pathlib import Path

import pytest
import yaml

from curate.config import (
    CaptionConfig,
    Config,
    ConfigError,
    PolicyConfig,
    config_from_dict,
    default_yaml,
    load_config,
    resolve_config,
)

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
    ({"scoring": {"ocr": {"frames": 1}}}, "scoring.ocr.frames"),
    ({"samples": {"keyframe_max_side": 512}}, "samples.keyframe_max_side"),
    ({"run_lease_s": 50}, "run_lease_s"),
    ({"encode": {"crf": 20.0}}, "encode.crf"),
    ({"scenes": {"max_scene_s": "30"}}, "scenes.max_scene_s"),
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


def test_messages_rules_and_types():
    with pytest.raises(ConfigError, match=r"^config field 'scoring.ocr.frames' must be >= 2 \(got 1\)$"):
        config_from_dict({"scoring": {"ocr": {"frames": 1}}})
    with pytest.raises(ConfigError, match=r"^unknown config field 'scenes.detectr' \(known: .*detector"):
        config_from_dict({"scenes": {"detectr": "adaptive"}})
    cfg = config_from_dict({"policy": {"min_clip_s": 2}, "input": {"extensions": [".mp4"]},
                            "storage_options": {"aws_region": "us-east-1", "timeout": 30}})
    assert cfg.policy.min_clip_s == 2.0 and isinstance(cfg.policy.min_clip_s, float)  # ints are numbers
    assert cfg.input.extensions == [".mp4"] and cfg.storage_options["timeout"] == "30"
    with pytest.raises(ConfigError, match="'crf' must be <= 51"):  # assignments are checked too
        cfg.encode.crf = 99
    assert pickle.loads(pickle.dumps(cfg)) == cfg  # configs travel to Ray workers


def test_a_profile_applies_the_same_whatever_the_caller_passes(tmp_path):
    def tiny_fields(cfg):
        return cfg.caption.backend, cfg.caption.max_new_tokens, cfg.policy.min_aesthetic

    mine = Config()
    (tmp_path / "tiny.yaml").write_text("profile: tiny\n")
    assert (tiny_fields(resolve_config(mine, profile="tiny")) == tiny_fields(resolve_config(None, profile="tiny"))
            == tiny_fields(resolve_config(tmp_path / "tiny.yaml")) == ("transformers", 448, None))
    assert tiny_fields(mine) == ("vllm", 512, 4.5) and mine.profile == "default"  # copied, not changed

    explicit = {"policy": {"min_aesthetic": 4.5}, "caption": {"backend": "vllm", "max_new_tokens": 512}}
    (tmp_path / "set.yaml").write_text(yaml.safe_dump({"profile": "tiny", **explicit}))
    assigned = Config()
    assigned.policy.min_aesthetic = 4.5  # the default's value, but set: the profile leaves it
    assigned.caption.backend, assigned.caption.max_new_tokens = "vllm", 512
    built = Config(profile="tiny", policy=PolicyConfig(min_aesthetic=4.5),
                   caption=CaptionConfig(backend="vllm", max_new_tokens=512))
    assert (tiny_fields(resolve_config(assigned, profile="tiny")) == tiny_fields(resolve_config(built))
            == tiny_fields(load_config(profile="tiny", overrides=explicit))
            == tiny_fields(resolve_config(tmp_path / "set.yaml")) == ("vllm", 512, 4.5))
