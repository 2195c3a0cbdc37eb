"""Messages logged once per worker process: a fallback a worker takes for every video (no NVDEC here, a codec an
mp4 cannot hold) is worth one line in its log, not one per video."""

from __future__ import annotations

import logging

log = logging.getLogger("curate")
_said: set[str] = set()


def say_once(message: str) -> None:
    """Logs `message` as a warning the first time this process sees it."""
    if message not in _said:
        _said.add(message)
        log.warning(message)
