"""What the rewrite pass (caption.rewrite) gives the text LLM: a clip's caption fields as an annotation."""

from __future__ import annotations

import json


def annotation_text(caption_json: str) -> str:
    """The caption's fields, one `name: text` line each, in the prompt's order (JSON keys would invite the model
    to copy them back)."""
    fields = json.loads(caption_json)
    return "\n".join(f"{name.replace('_', ' ')}: {text}" for name, text in fields.items() if text)
