"""Captioning prompts, one YAML file per prompt, each with a stable id stored on every caption row.

A prompt file holds `id`, `system`, `user` and the JSON `fields` the answer must have, and `input`: `video` (a
caption prompt: the frames go with it) or `text` (a rewrite prompt: the clip's caption goes with it). Change a
prompt's wording only together with its id (`dense-v2`), so rows captioned with different prompts stay
distinguishable.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

PROMPT_DIR = Path(__file__).parent
DEFAULT_PROMPT = "dense-v1"
INPUTS = ("video", "text")


@dataclass(frozen=True)
class Prompt:
    id: str
    system: str
    user: str
    fields: tuple[str, ...]
    input: str = "video"  # video | text


def _load(path: Path) -> Prompt:
    data = yaml.safe_load(path.read_text())
    missing = {"id", "system", "user", "fields"} - set(data or {})
    if missing:
        raise ValueError(f"prompt file {path} lacks {', '.join(sorted(missing))}")
    if "short_caption" not in data["fields"] or "dense_caption" not in data["fields"]:
        raise ValueError(f"prompt file {path}: fields must include short_caption and dense_caption")
    if data.get("input", "video") not in INPUTS:
        raise ValueError(f"prompt file {path}: input must be one of {', '.join(INPUTS)}")
    return Prompt(str(data["id"]), data["system"].strip(), data["user"].strip(), tuple(data["fields"]),
                  data.get("input", "video"))


@lru_cache(maxsize=None)
def all_prompts() -> tuple[Prompt, ...]:
    return tuple(_load(p) for p in sorted(PROMPT_DIR.glob("*.yaml")))


def get_prompt(ref: str, input: str = "video") -> Prompt:
    """A prompt by id (`dense-v1`) or by the path of a YAML file of the same form, for `input` (video: a
    caption prompt; text: a rewrite prompt).

    Raises:
        ValueError: no prompt has that id and no such file exists (the message lists the ids), or the prompt
            is for the other input.
    """
    by_id = {p.id: p for p in all_prompts() if p.input == input}
    if ref in by_id:
        return by_id[ref]
    if ref.endswith((".yaml", ".yml")) and Path(ref).is_file():
        prompt = _load(Path(ref))
        if prompt.input != input:
            raise ValueError(f"prompt {ref} is a {prompt.input} prompt; a {input} prompt is needed here")
        return prompt
    kind = "caption" if input == "video" else "rewrite"
    raise ValueError(f"unknown {kind} prompt {ref!r} (known ids: {', '.join(sorted(by_id))}, or a YAML path)")
