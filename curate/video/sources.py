"""Finding input videos and opening them, for local paths and object-store URIs alike (pyarrow filesystems).

Inputs may be files, directories (searched recursively by extension), glob patterns, or manifests (CSV or
Parquet with a `uri` column and optional metadata columns). An explicitly named file is always taken, whatever
its extension, so that a bad file gets a failed row instead of being silently ignored.
"""

from __future__ import annotations

import fnmatch
import glob as globlib
import json
import os
from dataclasses import dataclass, field
from typing import Any, BinaryIO
from urllib.parse import urlparse

import pyarrow.fs as pafs

from curate.common.uris import is_remote

MANIFEST_EXTENSIONS = (".csv", ".parquet", ".pq")
# Bytes read from each end of a file for its content fingerprint.
FINGERPRINT_BYTES = 1 << 20


@dataclass(frozen=True)
class Source:
    uri: str
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def meta_json(self) -> str | None:
        return json.dumps(self.meta, sort_keys=True, default=str) if self.meta else None


def resolve(uri: str) -> tuple[pafs.FileSystem, str]:
    """The pyarrow filesystem and path for a local path or URI (s3://, gs://, abfs://, hdfs://, file://).

    For s3:// URIs, `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` (an S3-compatible store such as MinIO) are
    honoured as boto3 and Lance honour them; pyarrow's own S3 client ignores them.
    """
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if uri.startswith("s3://") and "?" not in uri and endpoint:
        parsed = urlparse(endpoint)
        fs = pafs.S3FileSystem(endpoint_override=parsed.netloc or parsed.path, scheme=parsed.scheme or "https")
        return fs, uri[len("s3://"):]
    if is_remote(uri) or uri.startswith("file://"):
        return pafs.FileSystem.from_uri(uri)
    return pafs.LocalFileSystem(), os.path.abspath(uri)


def _is_glob(s: str) -> bool:
    return any(c in s for c in "*?[")


def _join(uri_prefix: str, path: str) -> str:
    """Rebuilds a URI from a filesystem path found under a listed prefix."""
    if is_remote(uri_prefix):
        scheme = uri_prefix.split("://", 1)[0]
        return f"{scheme}://{path}"
    return path


def expand_inputs(inputs: list[str], *, extensions: list[str]) -> list[Source]:
    """Expands files, directories, globs and manifests into a sorted, de-duplicated list of sources.

    Raises:
        ValueError: a manifest has no `uri` column.
    """
    exts = tuple(e.lower() for e in extensions)
    found: dict[str, Source] = {}

    def add(src: Source) -> None:
        found.setdefault(src.uri, src)

    for item in inputs:
        if item.lower().endswith(MANIFEST_EXTENSIONS):
            for src in read_manifest(item):
                add(src)
            continue
        fs, path = resolve(item)
        if _is_glob(path):
            for p in _glob(fs, path):
                if p.lower().endswith(exts):
                    add(Source(_join(item, p)))
            continue
        info = fs.get_file_info(path)
        if info.type == pafs.FileType.Directory:
            selector = pafs.FileSelector(path, recursive=True)
            for f in fs.get_file_info(selector):
                if f.type == pafs.FileType.File and f.path.lower().endswith(exts):
                    add(Source(_join(item, f.path)))
        else:
            # A named file is taken even if missing or oddly named: it gets a row saying what is wrong.
            add(Source(_join(item, path) if is_remote(item) else path))
    return sorted(found.values(), key=lambda s: s.uri)


def _glob(fs: pafs.FileSystem, pattern: str) -> list[str]:
    if isinstance(fs, pafs.LocalFileSystem):
        return [os.path.abspath(p) for p in globlib.glob(pattern, recursive=True) if os.path.isfile(p)]
    # Object stores: list below the part of the pattern that holds no wildcard, then match.
    base = pattern
    while _is_glob(base):
        base = base.rsplit("/", 1)[0]
    selector = pafs.FileSelector(base, recursive=True, allow_not_found=True)
    return [f.path for f in fs.get_file_info(selector)
            if f.type == pafs.FileType.File and fnmatch.fnmatch(f.path, pattern)]


def read_manifest(uri: str) -> list[Source]:
    """Reads a CSV or Parquet manifest: a `uri` column, any other columns become per-video metadata."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    fs, path = resolve(uri)
    with fs.open_input_file(path) as f:
        table = pacsv.read_csv(f) if path.lower().endswith(".csv") else pq.read_table(f)
    if "uri" not in table.column_names:
        raise ValueError(f"manifest {uri} has no 'uri' column (columns: {', '.join(table.column_names)})")
    base_dir = os.path.dirname(path) if not is_remote(uri) else None
    sources = []
    for row in table.to_pylist():
        u = str(row.pop("uri"))
        if base_dir is not None and not is_remote(u) and not os.path.isabs(u):
            u = os.path.join(base_dir, u)  # relative entries are relative to the manifest
        sources.append(Source(u if is_remote(u) else os.path.abspath(u), {k: v for k, v in row.items()}))
    return sources


def open_binary(uri: str) -> tuple[str | BinaryIO, int]:
    """Opens a source for PyAV: a local path as is (fastest), a remote one as a seekable pyarrow file.

    Returns:
        What to pass to `av.open`, and the size in bytes.

    Raises:
        FileNotFoundError, IsADirectoryError, PermissionError: with a readable message.
    """
    fs, path = resolve(uri)
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.NotFound:
        raise FileNotFoundError(f"file not found: {uri}")
    if info.type == pafs.FileType.Directory:
        raise IsADirectoryError(f"is a directory, not a video file: {uri}")
    if isinstance(fs, pafs.LocalFileSystem):
        if not os.access(path, os.R_OK):
            raise PermissionError(f"permission denied: {uri}")
        return path, info.size
    return fs.open_input_file(path), info.size


def read_ends(uri: str, size: int) -> tuple[bytes, bytes]:
    """The first and last `FINGERPRINT_BYTES` of a file (for its content identity)."""
    fs, path = resolve(uri)
    with fs.open_input_file(path) as f:
        head = f.read(min(size, FINGERPRINT_BYTES))
        tail = b""
        if size > FINGERPRINT_BYTES:
            f.seek(max(FINGERPRINT_BYTES, size - FINGERPRINT_BYTES))
            tail = f.read()
    return head, tail
