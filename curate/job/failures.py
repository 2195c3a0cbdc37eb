"""Which failures may pass and which are final.

Transient: the network, the object store, a timeout, an I/O error, running out of memory. Such a video is
retried within the task (`input.retries`, with backoff) and, if it still fails, recorded as `retryable`: the next
run redoes it. Final: the file is corrupt, unsupported, empty or missing. Those are recorded as `failed`, and only
`curate run --retry-failed` tries them again. A worker process that dies (SIGKILL, the OOM killer) is Ray's to
retry: the task runs again elsewhere, bounded by `resources.<stage>.max_retries`.
"""

from __future__ import annotations

import errno
import re
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

TRANSIENT_ERRNOS = frozenset({errno.EIO, errno.ETIMEDOUT, errno.ECONNRESET, errno.ECONNREFUSED, errno.ECONNABORTED,
                              errno.EAGAIN, errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EPIPE})
# What object-store clients (pyarrow's AWS SDK, curl, fsspec, boto) say when the service, not the file, is at fault.
TRANSIENT_TEXT = re.compile(
    r"connection (refused|reset|aborted|closed)|could ?n[o']t (resolve|connect)|failed to connect|"
    r"timed? ?out|temporar(il)?y unavailable|service unavailable|slow[ _]?down|throttl|too many requests|"
    r"broken pipe|network (is )?unreachable|NETWORK_CONNECTION|curlCode|http (status )?5\d\d|"
    r"status code:? 5\d\d|internal ?error.*retry|request limit", re.IGNORECASE)
FINAL_TYPES = (FileNotFoundError, IsADirectoryError, PermissionError)


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def is_transient(exc: BaseException) -> bool:
    """True when `exc`, or what caused it, is a failure that may pass (see the module docstring)."""
    for e in _chain(exc):
        if isinstance(e, ConnectionError | TimeoutError | MemoryError):
            return True
        if isinstance(e, FINAL_TYPES):
            return False
        if isinstance(e, OSError) and e.errno in TRANSIENT_ERRNOS:
            return True
        if TRANSIENT_TEXT.search(str(e)):
            return True
    return False


def with_retries(fn: Callable[[], T], *, retries: int, backoff_s: float,
                 sleep: Callable[[float], None] = time.sleep) -> T:
    """Calls `fn`; a transient failure is tried again up to `retries` times, waiting backoff_s, 2x, 4x, ..."""
    for attempt in range(retries + 1):
        try:
            return fn()
        except Exception as e:  # noqa: BLE001 - sorted below
            if attempt == retries or not is_transient(e):
                raise
            sleep(backoff_s * 2 ** attempt)
    raise AssertionError("unreachable")
