"""Parse, repair and check a model's caption answer. Pure functions over text: testable on crafted outputs.

A caption passes when its JSON parses (after light repair), has every field of the prompt as non-empty text,
has a dense caption of at least `min_words` words, is not a refusal and is not repetitive. Boilerplate openings
("The video shows ...") are stripped rather than rejected: the rest of the caption is usually fine.
"""

from __future__ import annotations

import ast
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
_FENCE = re.compile(r"```(?:json)?\s*(.*?)\s*```", re.DOTALL)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")


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
    missing = [k for k, v in cleaned.items() if not v]
    if missing:
        return CheckResult(False, reason=f"{MISSING}: {', '.join(missing)}", repaired=repaired)
    for key in ("short_caption", "dense_caption"):
        cleaned[key] = strip_boilerplate(cleaned[key])
    dense = cleaned["dense_caption"]
    if _REFUSAL.match(dense) or _REFUSAL.match(cleaned["short_caption"]):
        return CheckResult(False, reason=REFUSAL, repaired=repaired)
    if len(dense.split()) < min_words:
        return CheckResult(False, reason=TOO_SHORT, repaired=repaired)
    if repeated_fraction(dense) > max_repeat:
        return CheckResult(False, reason=REPETITIVE, repaired=repaired)
    return CheckResult(True, fields=cleaned, repaired=repaired)


def parse_json_object(text: str) -> tuple[dict | None, bool]:
    """The first JSON object in `text`, repairing what models commonly get wrong.

    Handles code fences, prose around the object, trailing commas, smart quotes, Python-style single quotes
    and a missing final brace. Returns (object or None, whether a repair was needed).
    """
    fenced = _FENCE.search(text)
    body = fenced.group(1) if fenced else text
    start = body.find("{")
    if start < 0:
        return None, False
    end = body.rfind("}")
    candidate = body[start:end + 1] if end > start else body[start:]
    obj = _loads(candidate)
    if obj is not None:
        return obj, bool(fenced) or candidate != text.strip()
    fixed = _TRAILING_COMMA.sub(r"\1", candidate.replace("\u201c", '"').replace("\u201d", '"'))
    if end <= start:  # the answer stopped before closing the object
        fixed = fixed.rstrip().rstrip(",") + ("\"}" if fixed.count('"') % 2 else "}")
    for attempt in (fixed, _python_literal(fixed)):
        obj = _loads(attempt) if isinstance(attempt, str) else attempt
        if isinstance(obj, dict):
            return obj, True
    return None, False


def _loads(text: str) -> dict | None:
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def _python_literal(text: str) -> dict | None:
    """Single-quoted pseudo-JSON, read as a Python literal (ast.literal_eval evaluates no code)."""
    try:
        obj = ast.literal_eval(text.replace("null", "None").replace("true", "True").replace("false", "False"))
    except (ValueError, SyntaxError, MemoryError, RecursionError):
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
