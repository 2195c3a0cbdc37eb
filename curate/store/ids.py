"""Deterministic identifiers: the same source and span always give the same ids, so re-runs never duplicate."""

from __future__ import annotations

import hashlib
import uuid

# A fixed namespace for this project's uuid5 ids (as Cosmos-Curate derives clip ids from video and span).
NAMESPACE = uuid.UUID("6f1d8a52-3a0e-5c6b-9d1e-2b7f4c9a0e11")


def content_fingerprint(size: int, head: bytes, tail: bytes) -> str:
    """A cheap content identity: file size plus hashes of its first and last bytes.

    Hashing whole files would double the I/O of the job; size plus both ends tells apart re-encodes and
    edits of the same name, which is what matters for deduplicating rows.
    """
    h = hashlib.sha256()
    h.update(str(size).encode())
    h.update(head)
    h.update(tail)
    return h.hexdigest()[:32]


def video_id(uri: str, fingerprint: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{uri}\n{fingerprint}"))


def clip_id(video_id_: str, start_frame: int, end_frame: int) -> str:
    return str(uuid.uuid5(uuid.UUID(video_id_), f"{start_frame}:{end_frame}"))
