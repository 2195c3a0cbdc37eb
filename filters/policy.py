"""The keep/drop policy: thresholds over stored scores, `keep` plus every reason that applies.

Reasons are short codes (`too_short`, `too_long`, ...) so that notebooks can group and count them; every scene
is kept in `candidates.lance` whatever the decision, so thresholds can change later without decoding again.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KeepPolicy:
    """Decides `keep` and `drop_reasons` for scene rows.

    Args:
        min_clip_s: scenes shorter than this are dropped (`too_short`).
        max_clip_s: scenes longer than this are dropped (`too_long`).
        score_only: keep everything, still listing the reasons that would have dropped it.
    """

    min_clip_s: float = 1.0
    max_clip_s: float = 60.0
    score_only: bool = False

    #: Columns read and written, for the job wiring.
    inputs = ("duration_s",)
    outputs = ("keep", "drop_reasons")

    @classmethod
    def from_config(cls, policy_cfg) -> KeepPolicy:
        return cls(min_clip_s=policy_cfg.min_clip_s, max_clip_s=policy_cfg.max_clip_s,
                   score_only=policy_cfg.score_only)

    def reasons(self, row: dict) -> list[str]:
        out = []
        duration = row.get("duration_s")
        if duration is not None and duration < self.min_clip_s:
            out.append("too_short")
        if duration is not None and duration > self.max_clip_s:
            out.append("too_long")
        return out

    def __call__(self, rows: list[dict]) -> list[dict]:
        for row in rows:
            if row.get("clip_id") is None:  # a failed video's row: nothing to decide
                continue
            reasons = self.reasons(row)
            row["drop_reasons"] = reasons
            row["keep"] = self.score_only or not reasons
        return rows
