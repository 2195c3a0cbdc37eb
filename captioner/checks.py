"""Parse, repair and check a model's caption answer. Pure functions over text: testable on crafted outputs.

A caption passes when its JSON parses, has every field of the prompt as non-empty text, has a dense caption of
at least `min_words` words, is not a refusal and is not repetitive. Engines that enforce the prompt's schema
(captioner/schema.py) always give JSON with every field, so the checks then judge content, not syntax; for the
rest, `json-repair` mends what models commonly get wrong (fences, prose around the object, trailing commas,
single quotes, a missing brace) without touching the text inside the strings. Boilerplate openings ("The video
shows ...") are stripped rather than rejected: the rest of the caption is usually fine. A rejected answer keeps
its parsed fields beside its reason.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

# Reasons recorded in `caption_error` (with the backend's own one-line errors).
EMPTY, REFUSAL, TRUNCATED, MALFORMED, MISSING, TOO_SHORT, REPETITIVE = (
    "empty", "refusal", "truncated", "malformed_json", "missing_fields", "too_short", "repetitive")

_REFUSAL = re.compile(
    r"^\W*(i'?m sorry|i am sorry|sorry[,.]|i cannot|i can'?t|i am unable|i'?m unable|i won'?t|as an ai|"
    r"unfortunately,? i|i do not have the ability|i don'?t have the ability)", re.IGNORECASE)
_BOILERPLATE = re.compile(
    r"^\s*(in\s+)?(the|this)\s+(video|clip|footage|scene|animation|sequence)\s*(,|:)?\s*"
    r"(shows|depicts|features|captures|presents|displays|showcases|begins with|opens with|is of|"
    r"we see|there is|there are)?\s*(:|,)?\s*", re.IGNORECASE)


@dataclass
class CheckResult:
    ok: bool
    fields: dict[str, str] = field(default_factory=dict)
    reason: str | None = None
    repaired: bool = False


def check_caption(text: str, fields: tuple[str, ...], *, finish_reason: str | None = None, min_words: int = 8,
                  max_repeat: float = 0.3) -> CheckResult:
    """Parses and checks one answer.

    Args:
        text: the model's raw answer.
        fields: the keys the prompt asks for (must include short_caption and dense_caption).
        finish_reason: the engine's ("length" marks a cut-off answer).
        min_words: the least words a dense caption may have.
        max_repeat: the largest share of repeated word trigrams in the dense caption.

    Returns:
        The cleaned fields when ok, else the first reason that applies.
    """
    if not text or not text.strip():
        return CheckResult(False, reason=EMPTY)
    if _REFUSAL.match(text):
        return CheckResult(False, reason=REFUSAL)
    obj, repaired = parse_json_object(text)
    if obj is None:
        return CheckResult(False, reason=TRUNCATED if finish_reason == "length" else MALFORMED)
    cleaned = {k: _as_text(obj.get(k)) for k in fields}
    if repaired and finish_reason == "length":  # mended after a cut: its last field stops mid-way
        return CheckResult(False, fields=cleaned, reason=TRUNCATED, repaired=True)
    missing = [k for k, v in cleaned.items() if not v]
    if missing:
        return CheckResult(False, fields=cleaned, reason=f"{MISSING}: {', '.join(missing)}", repaired=repaired)
    for key in ("short_caption", "dense_caption"):
        cleaned[key] = strip_boilerplate(cleaned[key])
    dense = cleaned["dense_caption"]
    reason = None
    if _REFUSAL.match(dense) or _REFUSAL.match(cleaned["short_caption"]):
        reason = REFUSAL
    elif len(dense.split()) < min_words:
        reason = TOO_SHORT
    elif repeated_fraction(dense) > max_repeat:
        reason = REPETITIVE
    return CheckResult(reason is None, fields=cleaned, reason=reason, repaired=repaired)


def parse_json_object(text: str) -> tuple[dict | None, bool]:
    """The JSON object in `text`: as it is when it parses, else as `json_repair` mends it. Returns (object or
    None, whether a repair was needed)."""
    obj = _loads(text.strip())
    if obj is not None:
        return obj, False
    import json_repair

    try:
        mended = json_repair.loads(text)
    except (ValueError, RecursionError):
        return None, False
    if isinstance(mended, list):  # prose around several fragments: the first object
        mended = next((m for m in mended if isinstance(m, dict)), None)
    return (mended, True) if isinstance(mended, dict) and mended else (None, False)


def _loads(text: str) -> dict | None:
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def _as_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(_as_text(v) for v in value if _as_text(v))
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return " ".join(str(value).split())


def strip_boilerplate(text: str) -> str:
    """Drops openings like "The video shows" and capitalises what remains."""
    stripped = _BOILERPLATE.sub("", text, count=1).strip()
    if not stripped or len(stripped) < len(text) // 3:  # the opening was most of it: keep the original
        return text.strip()
    return stripped[0].upper() + stripped[1:]


def repeated_fraction(text: str, n: int = 3) -> float:
    """Share of word n-grams that repeat an earlier one (0 for varied text, near 1 for loops)."""
    words = re.findall(r"\w+", text.lower())
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)
