"""Caption checks on crafted model outputs: good, repairable, malformed, truncated, repetitive, refusal, empty."""

import pytest
from captions import GOOD, dump

from captioner.checks import (
    EMPTY,
    MALFORMED,
    REFUSAL,
    REPETITIVE,
    TOO_SHORT,
    TRUNCATED,
    check_caption,
    parse_json_object,
    repeated_fraction,
    strip_boilerplate,
)
from captioner.prompts import get_prompt

FIELDS = get_prompt("dense-v1").fields

CASES = [
    # (name, text, finish_reason, expected ok, expected reason, expect repaired)
    ("clean json", dump(GOOD), "stop", True, None, False),
    ("code fence", "```json\n" + dump(GOOD) + "\n```", "stop", True, None, True),
    ("prose around", "Here is the caption:\n" + dump(GOOD) + "\nHope this helps.", "stop", True, None, True),
    ("trailing comma", dump(GOOD)[:-1] + ",}", "stop", True, None, True),
    ("single quotes", str(GOOD), "stop", True, None, True),
    ("missing brace", dump(GOOD)[:-1], "stop", True, None, True),
    ("truncated", dump(GOOD)[:80], "length", False, TRUNCATED, False),
    ("not json", "a tram on a street, with houses", "stop", False, MALFORMED, False),
    ("empty", "   \n", "stop", False, EMPTY, False),
    ("refusal", "I'm sorry, but I can't help with describing this video.", "stop", False, REFUSAL, False),
    ("refusal inside", dump({**GOOD, "dense_caption": "I cannot describe this content because it may be "
                                                      "harmful to people watching it."}), "stop", False, REFUSAL,
     False),
    ("repetitive", dump({**GOOD, "dense_caption": "the tram goes up the hill " * 12}), "stop", False, REPETITIVE,
     False),
    ("too short", dump({**GOOD, "dense_caption": "A tram."}), "stop", False, TOO_SHORT, False),
]


@pytest.mark.parametrize("name,text,finish,ok,reason,repaired", CASES, ids=[c[0] for c in CASES])
def test_check_caption(name, text, finish, ok, reason, repaired):
    result = check_caption(text, FIELDS, finish_reason=finish)
    assert result.ok is ok, (name, result)
    assert result.reason == reason
    if ok:
        assert result.repaired is repaired
        assert set(result.fields) == set(FIELDS)
        assert result.fields["main_subject"] == "red tram"


def test_repair_leaves_the_text_inside_strings_alone():
    """Single-quoted pseudo-JSON whose text holds the words a literal-swapping repair would break."""
    words = {**GOOD, "dense_caption": GOOD["dense_caption"] + " The match was annulled and untrue rumours about a "
             "nullable falsetto spread; it's 'true', the crowd said.", "style": "live action, not null"}
    text = "{" + ", ".join(f"'{k}': {v!r}" for k, v in words.items()) + "}"
    obj, repaired = parse_json_object(text)
    assert repaired and obj == words
    result = check_caption(text, FIELDS)
    assert result.ok and result.fields["style"] == "live action, not null"
    assert "annulled and untrue rumours about a nullable falsetto" in result.fields["dense_caption"]


def test_a_rejected_answer_keeps_what_it_said():
    result = check_caption(dump({**GOOD, "dense_caption": "A tram."}), FIELDS)
    assert not result.ok and result.reason == TOO_SHORT and result.fields["main_subject"] == "red tram"
    cut = check_caption(dump(GOOD)[:120], FIELDS, finish_reason="length")  # mended, but cut: truncated
    assert cut.reason == TRUNCATED and cut.fields["short_caption"] == GOOD["short_caption"]


def test_missing_fields_are_named():
    partial = {k: v for k, v in GOOD.items() if k not in ("lighting", "style")}
    result = check_caption(dump(partial), FIELDS)
    assert not result.ok and result.reason.startswith("missing_fields") and "lighting" in result.reason


def test_boilerplate_opening_is_stripped_not_rejected():
    text = dump({**GOOD, "dense_caption": "The video shows " + GOOD["dense_caption"][0].lower()
                 + GOOD["dense_caption"][1:], "short_caption": "In this video, a red tram climbs a street."})
    result = check_caption(text, FIELDS)
    assert result.ok
    assert result.fields["dense_caption"].startswith("A red and cream tram")
    assert result.fields["short_caption"] == "A red tram climbs a street."
    assert strip_boilerplate("This clip depicts: a dog running on a beach") == "A dog running on a beach"
    assert strip_boilerplate("The video shows") == "The video shows"  # nothing left: keep as is


def test_lists_become_text_and_repetition_measure():
    result = check_caption(dump({**GOOD, "main_subject": ["tram", "people"]}), FIELDS)
    assert result.ok and result.fields["main_subject"] == "tram, people"
    assert repeated_fraction(GOOD["dense_caption"]) == 0.0
    assert repeated_fraction("a b c a b c a b c a b c") > 0.5
    assert parse_json_object("no object here") == (None, False)
