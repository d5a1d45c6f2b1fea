"""HTTP answers judged for :mod:`.remote`: which are worth retrying, how long to wait, which are errors."""

from __future__ import annotations

import email.utils
import re
import time

import httpx

from modeltrace.errors import RemoteError

#: The longest ``Retry-After`` honoured; a server asking for more is reported, not waited for.
#: The Hub counts its rate limits over fixed 5-minute windows, so a reset can be up to 300 s away.
MAX_RETRY_AFTER_S = 300.0


class TransientError(Exception):
    """A failure worth retrying (server error, short body)."""


class RetryAfterError(TransientError):
    def __init__(self, reason: str, seconds: float | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.seconds = seconds


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    if value.strip().isdecimal():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _ratelimit_reset_seconds(value: str | None) -> float | None:
    """``t`` of a ``RateLimit: "resolvers";r=0;t=55`` header (draft-ietf-httpapi-ratelimit-headers,
    as the Hub sends it with a 429): seconds until the window resets."""
    match = _RATELIMIT_RESET.search(value or "")
    return None if match is None else float(match.group(1))


_RATELIMIT_RESET = re.compile(r";\s*t=(\d{1,9})\b")


def raise_for_status(url: str, response: httpx.Response) -> None:
    status = response.status_code
    if status in (429, 503):
        seconds = _retry_after_seconds(response.headers.get("Retry-After"))
        if seconds is None:  # the Hub says when its window resets in RateLimit's t= instead
            seconds = _ratelimit_reset_seconds(response.headers.get("RateLimit"))
        if seconds is not None and seconds > MAX_RETRY_AFTER_S:
            raise RemoteError(
                url, f"HTTP {status} with Retry-After {seconds:.0f} s (over {MAX_RETRY_AFTER_S:.0f} s)"
            )
        raise RetryAfterError(f"HTTP {status}", seconds)
    if status >= 500:
        raise TransientError(f"HTTP {status}")
    if status in (401, 403):
        hint = " (set HF_TOKEN for gated or private Hugging Face repositories)" if "/resolve/" in url else ""
        raise RemoteError(url, f"HTTP {status}: access denied{hint}")
    if status == 404:
        raise RemoteError(url, "HTTP 404: no such file")
    if status == 416:
        raise RemoteError(url, "HTTP 416: the range asked for lies outside the file")
    if status >= 400:
        raise RemoteError(url, f"HTTP {status}")


def check_content_range(url: str, response: httpx.Response, start: int, stop: int) -> None:
    value = response.headers.get("Content-Range", "")
    unit, _, rest = value.partition(" ")
    span = rest.partition("/")[0]
    first, _, last = span.partition("-")
    if unit != "bytes" or not first.isdecimal() or not last.isdecimal():
        raise RemoteError(url, f"a 206 answer without a usable Content-Range ({value[:60]!r})")
    if (int(first), int(last) + 1) != (start, stop):
        raise RemoteError(url, f"asked for bytes {start}-{stop - 1}, the server sent {span[:40]}")
