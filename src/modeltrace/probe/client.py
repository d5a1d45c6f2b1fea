"""The HTTP edge of the probe: a budgeted, retrying httpx client that logs every exchange.

Every attempt (retries included) counts against a hard request budget; once it is spent,
:class:`~modeltrace.errors.BudgetExhaustedError` is raised and nothing more is sent. 429s wait
for ``Retry-After`` (capped), 5xx, timeouts and connection errors back off exponentially. Each
exchange is appended to a JSON-lines evidence log. The API key is read by the caller from an
environment variable, sent only in the ``Authorization`` header, and replaced by
``[REDACTED]`` everywhere it could leak: logged headers, and any body that echoes it back.
"""

from __future__ import annotations

import email.utils
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from modeltrace.errors import BudgetExhaustedError, ProbeError

REDACTED = "[REDACTED]"
_SECRET_HEADERS = frozenset(
    {"authorization", "api-key", "x-api-key", "proxy-authorization", "cookie", "set-cookie"}
)
_MAX_LOGGED_BODY = 64 * 1024
DEFAULT_BUDGET = 64


@dataclass(frozen=True)
class ClientSettings:
    timeout_s: float = 30.0
    max_retries: int = 3  # extra attempts after the first, each costs budget
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    concurrency: int = 4
    #: Attempts in a row that got no HTTP response at all (refused, reset, timed out) before the
    #: endpoint is declared unreachable: a dead URL then fails in seconds instead of spending the
    #: whole budget on backoff.
    max_consecutive_failures: int = 3


@dataclass
class Exchange:
    """One request's final outcome (after retries). ``error`` is set when no usable reply came."""

    method: str
    url: str
    status: int | None
    headers: dict[str, str] = field(default_factory=dict)
    text: str = ""
    error: str | None = None
    attempts: int = 1

    def json(self) -> Any:
        try:
            return json.loads(self.text)
        except ValueError:
            return None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def normalise_base_url(url: str) -> str:
    """``http://host:port``, ``.../v1`` or ``.../v1/chat/completions`` -> ``http(s)://host:port/.../v1``."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ProbeError(f"Cannot probe '{url}': expected an http(s) URL such as https://api.example.com/v1.")
    path = parts.path.rstrip("/")
    for suffix in ("/chat/completions", "/completions", "/models"):
        if path.endswith(suffix):
            path = path[: -len(suffix)]
    if not path.endswith("/v1"):
        path += "/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


class ProbeClient:
    """Sends requests under a hard budget; thread-safe so units can be probed concurrently."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        budget: int = DEFAULT_BUDGET,
        settings: ClientSettings | None = None,
        evidence_path: Path | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if budget < 1:
            raise ProbeError(f"Request budget must be at least 1, got {budget}.")
        self.base_url = normalise_base_url(base_url)
        self.budget = budget
        self.settings = settings or ClientSettings()
        self.evidence_path = evidence_path
        self._api_key = api_key or None
        self._sleep = sleep
        self._lock = threading.Lock()
        self._sent = 0
        #: Attempts that got any HTTP response (any status), and the last transport error seen;
        #: together they tell "unreachable" from "answers but reveals nothing".
        self.answered = 0
        self.last_error: str | None = None
        self._consecutive_failures = 0
        self._unreachable: str | None = None
        headers = {"user-agent": "modeltrace-probe"}
        if self._api_key:
            headers["authorization"] = f"Bearer {self._api_key}"
        self._http = httpx.Client(timeout=self.settings.timeout_s, headers=headers, follow_redirects=False)
        if evidence_path is not None:
            evidence_path.parent.mkdir(parents=True, exist_ok=True)

    @property
    def sent(self) -> int:
        return self._sent

    @property
    def remaining(self) -> int:
        return self.budget - self._sent

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ProbeClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def redact(self, text: str) -> str:
        """Replace every occurrence of the API key (raw or JSON-escaped) in ``text``."""
        if not self._api_key:
            return text
        escaped = json.dumps(self._api_key)[1:-1]
        return text.replace(self._api_key, REDACTED).replace(escaped, REDACTED)

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None, phase: str = ""
    ) -> Exchange:
        """One logical request with retries. Raises BudgetExhaustedError when no attempt is left.

        ``path`` is relative to the ``/v1`` base, or an absolute URL on the same server (``/tokenize``).
        """
        url = path if path.startswith(("http://", "https://")) else self.base_url + path
        delay = self.settings.backoff_s
        attempt = 0
        while True:
            attempt += 1
            self._check_reachable()
            self._take_budget(url)
            exchange = self._attempt(method, url, body, attempt, phase)
            retry_after = self._retry_delay(exchange, delay)
            if retry_after is None or attempt > self.settings.max_retries:
                exchange.attempts = attempt
                return exchange
            self._check_reachable()  # a dead endpoint: stop now rather than back off and retry
            if self.remaining <= 0:
                exchange.attempts = attempt
                return exchange
            self._sleep(retry_after)
            delay = min(delay * 2, self.settings.max_backoff_s)

    def _check_reachable(self) -> None:
        """Raise once too many attempts in a row got no HTTP response (checked before each attempt)."""
        if self._unreachable is not None:
            raise ProbeError(self._unreachable)

    def _count_outcome(self, exchange: Exchange) -> None:
        with self._lock:
            if exchange.status is not None:
                self.answered += 1
                self._consecutive_failures = 0
                return
            self.last_error = exchange.error
            self._consecutive_failures += 1
            if self._consecutive_failures >= self.settings.max_consecutive_failures and not self._unreachable:
                self._unreachable = (
                    f"No response from {self.base_url}: {self._consecutive_failures} attempts in a row "
                    f"failed (last error: {exchange.error}); check the URL and that the server is up."
                )

    def _take_budget(self, url: str) -> None:
        with self._lock:
            if self._sent >= self.budget:
                raise BudgetExhaustedError(
                    f"Request budget of {self.budget} spent before reaching {url}; "
                    "raise --budget to probe further."
                )
            self._sent += 1

    def _attempt(
        self, method: str, url: str, body: dict[str, Any] | None, attempt: int, phase: str
    ) -> Exchange:
        started = time.monotonic()
        try:
            response = self._http.request(method, url, json=body)
            headers = {k.lower(): self.redact(v) for k, v in response.headers.items()}
            exchange = Exchange(method, url, response.status_code, headers, self.redact(response.text))
        except httpx.TimeoutException as error:
            exchange = Exchange(
                method, url, None, error=f"timeout after {self.settings.timeout_s}s ({type(error).__name__})"
            )
        except httpx.HTTPError as error:
            exchange = Exchange(method, url, None, error=self.redact(f"{type(error).__name__}: {error}"))
        self._count_outcome(exchange)
        self._log(exchange, body, attempt, phase, time.monotonic() - started)
        return exchange

    def _retry_delay(self, exchange: Exchange, backoff: float) -> float | None:
        """Seconds to wait before retrying, or None when the outcome is final."""
        if exchange.status == 429:
            return min(
                _parse_retry_after(exchange.headers.get("retry-after")) or backoff,
                self.settings.max_backoff_s,
            )
        if exchange.status is None or exchange.status >= 500 or exchange.status == 408:
            return min(backoff, self.settings.max_backoff_s)
        return None

    def _log(
        self, exchange: Exchange, body: dict[str, Any] | None, attempt: int, phase: str, elapsed: float
    ) -> None:
        if self.evidence_path is None:
            return
        request_headers = {
            k: (REDACTED if k.lower() in _SECRET_HEADERS else v) for k, v in self._http.headers.items()
        }
        record = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "phase": phase,
            "attempt": attempt,
            "request": {
                "method": exchange.method,
                "url": exchange.url,
                "headers": request_headers,
                "body": body,
            },
            "response": {
                "status": exchange.status,
                "headers": {
                    k: (REDACTED if k in _SECRET_HEADERS else v) for k, v in exchange.headers.items()
                },
                "body": exchange.text[:_MAX_LOGGED_BODY],
            },
            "error": exchange.error,
            "elapsed_s": round(elapsed, 4),
        }
        line = self.redact(json.dumps(record, ensure_ascii=False)) + "\n"
        with self._lock, self.evidence_path.open("a", encoding="utf-8") as log:
            log.write(line)


def _parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` is either delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.replace(".", "", 1).isdecimal():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
