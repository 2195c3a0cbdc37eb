"""Captioning prompts, one YAML file per prompt, each with a stable id stored on every caption row.

A prompt file holds `id`, `system`, `user` and the JSON `fields` the answer must have. Change a prompt's wording
only together with its id (`dense-v2`), so rows captioned with different prompts stay distinguishable.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

PROMPT_DIR = Path(__file__).parent
DEFAULT_PROMPT = "dense-v1"


@dataclass(frozen=True)
class Prompt:
    id: str
    system: str
    user: str
    fields: tuple[str, ...]


def _load(path: Path) -> Prompt:
    data = yaml.safe_load(path.read_text())
    missing = {"id", "system", "user", "fields"} - set(data or {})
    if missing:
        raise ValueError(f"prompt file {path} lacks {', '.join(sorted(missing))}")
    if "short_caption" not in data["fields"] or "dense_caption" not in data["fields"]:
        raise ValueError(f"prompt file {path}: fields must include short_caption and dense_caption")
    return Prompt(str(data["id"]), data["system"].strip(), data["user"].strip(), tuple(data["fields"]))


@lru_cache(maxsize=None)
def all_prompts() -> tuple[Prompt, ...]:
    return tuple(_load(p) for p in sorted(PROMPT_DIR.glob("*.yaml")))


def get_prompt(ref: str) -> Prompt:
    """A prompt by id (`dense-v1`) or by the path of a YAML file of the same form.

    Raises:
        ValueError: no prompt has that id and no such file exists (the message lists the ids).
    """
    by_id = {p.id: p for p in all_prompts()}
    if ref in by_id:
        return by_id[ref]
    if ref.endswith((".yaml", ".yml")) and Path(ref).is_file():
        return _load(Path(ref))
    raise ValueError(f"unknown caption prompt {ref!r} (known ids: {', '.join(sorted(by_id))}, or a YAML path)")
