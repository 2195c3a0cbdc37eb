"""The keep/drop policy, table-driven."""

import pytest

from curate.config import Config, load_config
from filters.policy import REASONS, RULES, KeepPolicy

GOOD = {"clip_id": "c", "duration_s": 5.0, "aesthetic": 6.0, "motion": 0.05, "jitter": 0.1, "watermark_prob": 0.1,
        "sharpness": 100.0, "dark_fraction": 0.1, "bright_fraction": 0.0, "blank_fraction": 0.0,
        "frozen_fraction": 0.0, "text_area": 0.01, "persistent_text_area": 0.0, "nsfw_score": 0.0,
        "caption_clip_score": 0.3}
STRICT = KeepPolicy(min_clip_s=1, max_clip_s=30, min_aesthetic=5, min_motion=0.01, max_motion=0.5, max_jitter=0.5,
                    max_watermark_prob=0.5, min_sharpness=50, max_dark_fraction=0.5, max_bright_fraction=0.5,
                    max_blank_fraction=0.5, max_frozen_fraction=0.5, max_text_area=0.1,
                    max_persistent_text_area=0.003, max_nsfw=0.6, min_caption_clip_score=0.18)


@pytest.mark.parametrize("change, reason", [
    ({"duration_s": 0.5}, "too_short"),
    ({"duration_s": 40.0}, "too_long"),
    ({"aesthetic": 4.0}, "low_aesthetic"),
    ({"motion": 0.001}, "static"),
    ({"motion": 0.9}, "too_much_motion"),
    ({"jitter": 2.0}, "shaky"),
    ({"watermark_prob": 0.9}, "watermark"),
    ({"text_area": 0.3}, "text"),
    ({"persistent_text_area": 0.02}, "text_overlay"),
    ({"nsfw_score": 0.9}, "nsfw"),
    ({"sharpness": 10.0}, "blurry"),
    ({"dark_fraction": 0.95}, "too_dark"),
    ({"bright_fraction": 0.95}, "too_bright"),
    ({"blank_fraction": 1.0}, "blank"),
    ({"frozen_fraction": 1.0}, "frozen"),
    ({"caption_clip_score": 0.05}, "caption_mismatch"),
])
def test_each_threshold_gives_its_reason(change, reason):
    [row] = STRICT([{**GOOD, **change}])
    assert row["drop_reasons"] == [reason] and row["keep"] is False
    [row] = KeepPolicy()([{**GOOD, **change}])  # no thresholds
    assert row["keep"] is True


def test_every_reason_is_tested_and_all_apply_together():
    assert len(REASONS) == len(set(REASONS)) == len(RULES) + 1 == 17  # the thresholds' and "duplicate"
    [row] = STRICT([{**GOOD, "duration_s": 0.5, "aesthetic": 1.0, "watermark_prob": 1.0}])
    assert row["drop_reasons"] == ["too_short", "low_aesthetic", "watermark"]


def test_a_marked_duplicate_is_dropped_only_when_the_policy_says_so():
    marked = {**GOOD, "duplicate_of": "other-clip"}
    [row] = KeepPolicy(drop_duplicates=True, max_nsfw=0.6)([dict(marked, nsfw_score=0.9)])
    assert row["keep"] is False and row["drop_reasons"] == ["nsfw", "duplicate"]
    [row] = KeepPolicy(drop_duplicates=True)([{**GOOD, "duplicate_of": None}])
    assert row["keep"] is True
    [row] = KeepPolicy(drop_duplicates=False)([dict(marked)])
    assert row["keep"] is True
    assert KeepPolicy.from_config(Config().policy).drop_duplicates is True


def test_missing_scores_decide_nothing_and_score_only_keeps_all():
    [row] = STRICT([{"clip_id": "c", "duration_s": 5.0}])
    assert row["keep"] is True and row["drop_reasons"] == []
    [row] = KeepPolicy(min_clip_s=1, score_only=True)([{"clip_id": "c", "duration_s": 0.2}])
    assert row["keep"] is True and row["drop_reasons"] == ["too_short"]
    [row] = STRICT([{"clip_id": None}])  # a failed video's row is left alone
    assert "keep" not in row


def test_policy_from_config_and_the_tiny_profile_rule():
    assert KeepPolicy.from_config(load_config().policy).min_aesthetic == 4.5
    assert KeepPolicy.from_config(load_config(profile="tiny").policy).min_aesthetic is None
    explicit = load_config(profile="tiny", overrides={"policy": {"min_aesthetic": 3.0}})
    assert KeepPolicy.from_config(explicit.policy).min_aesthetic == 3.0
    # random CLIP weights align nothing: the caption rule is off under tiny too, unless set
    assert load_config().policy.min_caption_clip_score == 0.18
    assert load_config(profile="tiny").policy.min_caption_clip_score is None
    explicit = load_config(profile="tiny", overrides={"policy": {"min_caption_clip_score": 0.5}})
    assert explicit.policy.min_caption_clip_score == 0.5


def test_the_defaults_are_the_configs_alone():
    assert all(getattr(KeepPolicy(), r[2]) is None for r in RULES) and KeepPolicy().score_only is False
    policy, section = KeepPolicy.from_config(Config().policy), Config().policy
    assert all(getattr(policy, name) == value for name, value in section.model_dump().items())
    assert (policy.min_clip_s, policy.max_clip_s, policy.min_aesthetic) == (1.0, 60.0, 4.5)
