"""Which of a scene's samples a scorer reads: evenly spread picks, first and last included."""

from __future__ import annotations

import numpy as np


def spread_indices(n: int, k: int) -> list[int]:
    """At most `k` indices into a list of `n`, evenly spread, first and last included."""
    if n <= 0 or k <= 0:
        return []
    return sorted({int(round(x)) for x in np.linspace(0, n - 1, min(n, k))})


def middle_first(n: int, k: int) -> tuple[int | None, list[int]]:
    """The cascade the learned scorers share: of `spread_indices(n, k)`, the middle one (read first) and the
    others (read only when the first one found something); (None, []) for an empty list."""
    picks = spread_indices(n, k)
    if not picks:
        return None, []
    middle = picks[(len(picks) - 1) // 2]
    return middle, [i for i in picks if i != middle]


def spread(items, k: int) -> list:
    """At most `k` of `items`, evenly spread (see `spread_indices`)."""
    return [items[i] for i in spread_indices(len(items), k)]
