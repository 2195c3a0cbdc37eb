"""Telling local paths from object-store URIs, for the store and the job alike."""

from __future__ import annotations


def is_remote(uri: str) -> bool:
    """True for an object-store or other non-local URI (s3://, gs://, abfs://, ...); `file://` is local."""
    return "://" in uri and not uri.startswith("file://")
