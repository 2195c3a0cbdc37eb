"""One caption from the captions of a long clip's windows (`caption.long_clips: windows`, captioner/frames.py).

Each window is captioned as a clip of its own; the clip's caption is then:
    dense_caption   the windows' dense captions in order, one paragraph (the clip's events in sequence)
    short_caption   the first window's (it names the subject and setting; a rewrite pass can do better)
    camera_motion   the windows' value when they agree, else "mixed"
    other fields    the first window's value
The clip's caption passes only when every window's did; otherwise it fails with the first failing window's
reason. Every window's own answer is kept in `caption_windows`, with its span.
"""

from __future__ import annotations

import json

from captioner.captioner import FAILED, OK, CaptionOutcome

JOINED = ("dense_caption",)
AGREED = {"camera_motion": "mixed"}  # field -> value when the windows disagree


def merge_windows(clip_id: str, outcomes: list[CaptionOutcome]) -> CaptionOutcome:
    """The clip's outcome from its windows' outcomes, in order."""
    if len(outcomes) == 1:
        return outcomes[0]
    failed = next(((k, o) for k, o in enumerate(outcomes) if o.status != OK), None)
    fields = dict(outcomes[0].fields)
    for name in JOINED:
        parts = [o.fields.get(name, "").strip() for o in outcomes]
        fields[name] = " ".join(p for p in parts if p)
    for name, disagreed in AGREED.items():
        values = {o.fields.get(name) for o in outcomes}
        if name in fields:
            fields[name] = values.pop() if len(values) == 1 else disagreed
    error = None if failed is None else f"window {failed[0] + 1}/{len(outcomes)}: {failed[1].error}"
    return CaptionOutcome(clip_id, FAILED if failed else OK, fields if all(o.fields for o in outcomes) else {},
                          error, attempts=max(o.attempts for o in outcomes),
                          output_tokens=sum(o.output_tokens for o in outcomes))


def windows_json(outcomes: list[CaptionOutcome], spans_s: list[list[float]]) -> str | None:
    """`caption_windows`: each window's span (source seconds), status and parsed answer; None for one window."""
    if len(outcomes) < 2:
        return None
    return json.dumps([{"span_s": span, "status": o.status, "error": o.error, "fields": o.fields}
                       for o, span in zip(outcomes, spans_s)], ensure_ascii=False)
