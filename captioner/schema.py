"""The JSON schema of a caption answer, derived from the prompt's fields: what every engine is held to.

One schema, three ways to enforce it: vLLM's structured outputs, an OpenAI-compatible server's
`response_format: {type: json_schema}`, and for transformers a logits processor (`grammar.py`, llguidance) that
masks every token the schema does not allow. Every field is a non-empty string of at most `max_chars`
characters: a bound that makes even a random model close its strings, and with them the object, within its
token budget (a token is at least one character), instead of running out mid-string.
"""

from __future__ import annotations

import json

from captioner.prompts import Prompt

# Loose caps for a real model, by field (the prompt asks for far less): they only stop a runaway answer.
DEFAULT_MAX_CHARS = {"dense_caption": 2000, "short_caption": 300}
OTHER_MAX_CHARS = 200


def field_caps(prompt: Prompt, max_chars: int | None = None) -> dict[str, int]:
    """field -> the most characters its value may have. `max_chars`, when given, caps every field, the dense
    caption (the long one) at three times that."""
    caps = {f: DEFAULT_MAX_CHARS.get(f, OTHER_MAX_CHARS) for f in prompt.fields}
    if not max_chars:
        return caps
    return {f: min(c, max_chars * (3 if f == "dense_caption" else 1)) for f, c in caps.items()}


def caption_schema(prompt: Prompt, max_chars: int | None = None) -> dict:
    """The JSON schema of an answer to `prompt`: an object with exactly its fields, each a non-empty string."""
    caps = field_caps(prompt, max_chars)
    return {
        "title": prompt.id,
        "type": "object",
        "properties": {f: {"type": "string", "minLength": 1, "maxLength": caps[f]} for f in prompt.fields},
        "required": list(prompt.fields),
        "additionalProperties": False,
    }


def fits_budget(prompt: Prompt, max_chars: int | None, max_new_tokens: int) -> bool:
    """Whether the longest answer the schema allows fits `max_new_tokens` even at one character a token."""
    skeleton = len(json.dumps({f: "" for f in prompt.fields}, separators=(",", ":")))
    return skeleton + sum(field_caps(prompt, max_chars).values()) <= max_new_tokens
