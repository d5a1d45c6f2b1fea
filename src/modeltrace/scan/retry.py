"""Bounded retries of one source: only for failures that a later try may not meet again.

Transient: the endpoint could not be reached or kept failing (``RemoteError`` after the HTTP
session's own retries: "cannot connect", "gave up after N attempts", HTTP 429/5xx), and network
errors outside the error tree (a reset socket, a timeout). Never retried: every other error,
format errors above all (a malformed file stays malformed), access denied, 404, a server that
ignores ``Range``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from modeltrace.errors import ModeltraceError, RemoteError

T = TypeVar("T")

_TRANSIENT_REASONS = ("cannot connect", "gave up after", "HTTP 429", "HTTP 5")
MAX_BACKOFF_S = 60.0


def is_transient(error: BaseException) -> bool:
    if isinstance(error, RemoteError):
        return error.reason.startswith(_TRANSIENT_REASONS)
    if isinstance(error, ModeltraceError):
        return False
    return isinstance(error, ConnectionError | TimeoutError)


def with_retries(
    attempt: Callable[[], T],
    *,
    retries: int,
    backoff_s: float,
    on_retry: Callable[[BaseException], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``attempt()``, tried again up to ``retries`` times after a transient failure, with exponential
    backoff and jitter (many workers hitting one endpoint must not retry in lockstep)."""
    for number in range(retries + 1):
        try:
            return attempt()
        except Exception as error:
            if number == retries or not is_transient(error):
                raise
            if on_retry is not None:
                on_retry(error)
            delay = min(MAX_BACKOFF_S, backoff_s * 2**number)
            sleep(delay * (0.5 + random.random() / 2))
    raise AssertionError("unreachable")  # pragma: no cover
