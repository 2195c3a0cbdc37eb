"""The keep/drop policy: thresholds over stored scores, `keep` plus every reason that applies.

Reasons are short codes so that notebooks can group and count them. Every scene stays in `candidates.lance`
whatever the decision, so thresholds can change later (`curate refilter`) without decoding or scoring again. A
threshold set to None is off; a score that is missing (its scorer was off, or too few samples) decides nothing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

# (score column, "min" or "max", threshold field, reason): a scene fails when below a min or above a max.
RULES = [
    ("duration_s", "min", "min_clip_s", "too_short"),
    ("duration_s", "max", "max_clip_s", "too_long"),
    ("aesthetic", "min", "min_aesthetic", "low_aesthetic"),
    ("motion", "min", "min_motion", "static"),
    ("motion", "max", "max_motion", "too_much_motion"),
    ("jitter", "max", "max_jitter", "shaky"),
    ("watermark_prob", "max", "max_watermark_prob", "watermark"),
    ("text_area", "max", "max_text_area", "text"),
    ("persistent_text_area", "max", "max_persistent_text_area", "text_overlay"),
    ("nsfw_score", "max", "max_nsfw", "nsfw"),
    ("sharpness", "min", "min_sharpness", "blurry"),
    ("dark_fraction", "max", "max_dark_fraction", "too_dark"),
    ("bright_fraction", "max", "max_bright_fraction", "too_bright"),
    ("blank_fraction", "max", "max_blank_fraction", "blank"),
    ("frozen_fraction", "max", "max_frozen_fraction", "frozen"),
    # Known only after captioning: null before, so it decides nothing until the caption stage has run.
    ("caption_clip_score", "min", "min_caption_clip_score", "caption_mismatch"),
]
# Not a threshold: `curate dedup` marks every scene of a duplicate group but its best one with `duplicate_of`.
DUPLICATE = ("duplicate_of", "drop_duplicates", "duplicate")
REASONS = [r[3] for r in RULES] + [DUPLICATE[2]]


@dataclass(frozen=True)
class KeepPolicy:
    """Decides `keep` and `drop_reasons` for scene rows. Fields mirror the config's `policy` section.

    `KeepPolicy()` is a policy with no thresholds (it keeps everything); the product's defaults are the config's
    policy section (`KeepPolicy.from_config(Config().policy)`), the one place they are written down.
    """

    min_clip_s: float | None = None
    max_clip_s: float | None = None
    min_aesthetic: float | None = None
    min_motion: float | None = None
    max_motion: float | None = None
    max_jitter: float | None = None
    max_watermark_prob: float | None = None
    max_text_area: float | None = None
    max_persistent_text_area: float | None = None
    max_nsfw: float | None = None
    min_sharpness: float | None = None
    max_dark_fraction: float | None = None
    max_bright_fraction: float | None = None
    max_blank_fraction: float | None = None
    max_frozen_fraction: float | None = None
    min_caption_clip_score: float | None = None
    drop_duplicates: bool = False
    score_only: bool = False  # keep everything, still listing the reasons that would have dropped it

    #: Columns read and written, for the job wiring.
    inputs = (*dict.fromkeys(r[0] for r in RULES), DUPLICATE[0])
    outputs = ("keep", "drop_reasons")

    @classmethod
    def from_config(cls, policy_cfg) -> KeepPolicy:
        """The policy of a config's `policy` section (any object with these attributes)."""
        return cls(**{f.name: getattr(policy_cfg, f.name) for f in dataclasses.fields(cls)})

    def __call__(self, rows: list[dict]) -> list[dict]:
        """Sets `keep` and `drop_reasons` on each row (not on a failed video's row: no clip_id, nothing to
        decide); returns the rows."""
        import pyarrow as pa

        if not rows:
            return rows
        table = pa.table({c: pa.array([r.get(c) for r in rows]) for c in ("clip_id", *self.inputs)})
        keep, reasons = self.decide(table)
        for row, k, why in zip(rows, keep.to_pylist(), reasons.to_pylist()):
            if row.get("clip_id") is not None:
                row["keep"], row["drop_reasons"] = k, why
        return rows

    def decide(self, table):
        """`keep` (bool) and `drop_reasons` (list<string>) arrays for a table of scene rows, computed column by
        column (refilter and what-if run it over millions of rows). A missing column decides nothing."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        n = table.num_rows
        fails = np.zeros((n, len(REASONS)), bool)
        if self.drop_duplicates and DUPLICATE[0] in table.column_names:
            fails[:, -1] = pc.is_valid(table.column(DUPLICATE[0])).to_numpy(zero_copy_only=False)
        for j, (column, kind, threshold_field, _) in enumerate(RULES):
            threshold = getattr(self, threshold_field)
            absent = column not in table.column_names or pa.types.is_null(table.schema.field(column).type)
            if threshold is None or absent:
                continue
            compare = pc.less if kind == "min" else pc.greater
            fails[:, j] = pc.fill_null(compare(table.column(column), threshold), False).to_numpy(zero_copy_only=False)
        rows, rules = np.nonzero(fails)  # row-major: each row's reasons in REASONS order
        offsets = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n))]).astype(np.int32)
        reasons = pa.ListArray.from_arrays(pa.array(offsets), pa.array(np.asarray(REASONS, object)[rules], pa.string()))
        keep = pa.array(np.ones(n, bool) if self.score_only else ~fails.any(axis=1))
        return keep, reasons
