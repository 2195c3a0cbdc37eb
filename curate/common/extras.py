"""Optional parts installed as extras (pyproject.toml): a clear error naming the extra when one is missing."""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingExtra(ImportError):
    """An optional package is not installed; the message names the feature and the extra that brings it."""


def import_extra(module: str, *, extra: str, feature: str) -> ModuleType:
    """`import module`, or MissingExtra: "FEATURE needs MODULE: pip install 'vidcurate[EXTRA]'"."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingExtra(f"{feature} needs the {module} package, which is not installed ({e}): "
                           f"pip install 'vidcurate[{extra}]'") from None
