"""Model files over HTTP(S): byte ranges on demand, never a silent whole-file download.

A :class:`RemoteFile` has the interface of :class:`~modeltrace.formats.base.RangeFile` (``size``,
``read(offset, length)``, ``bytes_read``), so every reader works on it unchanged: headers first,
then only the rows a fingerprint samples. Each read is one HTTP ``Range`` request over a pooled
connection (``read_ranges`` merges nearby ranges into one request); the session counts requests
and bytes transferred for the reports.

Servers misbehave, so:

* a ``200`` answer to a ranged request means the server ignores ``Range``: it is refused before
  the body is read (the alternative is downloading a terabyte by accident);
* ``429`` and ``503`` wait for ``Retry-After`` (seconds or an HTTP date, capped), other ``5xx``,
  timeouts and dropped connections back off exponentially, a bounded number of times;
* a body shorter or longer than the range asked for is an error, never silently padded.

``hf://ORG/REPO[@REVISION]/FILE`` resolves through the Hugging Face ``resolve`` URLs
(``$HF_ENDPOINT``, default ``https://huggingface.co``), with ``$HF_TOKEN`` as bearer token sent to
that host only. Redirects are followed by hand and their targets remembered per file
(:mod:`.remote_redirects`): a Hub file costs one request to its resolver, however many ranges are
read from the CDN URL it redirects to, and the token never goes to the CDN.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote, urljoin, urlsplit

import httpx

from modeltrace.errors import RemoteError, ResourceLimitError
from modeltrace.formats import limits
from modeltrace.formats.remote_redirects import (
    COMMIT,
    EXPIRY_MARGIN_S,
    MAX_REDIRECTS,
    REDIRECT_STATUSES,
    REFUSED_STATUSES,
    Resolution,
    hub_headers,
    is_resolver_url,
    repo_revision,
    signed_url_expiry,
)
from modeltrace.formats.remote_status import (
    RetryAfterError,
    TransientError,
    check_content_range,
    raise_for_status,
)

T = TypeVar("T")

DEFAULT_HF_ENDPOINT = "https://huggingface.co"
#: Ranges closer than this are fetched in one request (the gap is read and dropped).
DEFAULT_MAX_GAP = 256 * 1024
#: The size probe of a weight file asks for its first this many bytes (a file header's length and
#: usually the header itself), so opening a shard costs one or two requests, not three.
PROBE_BYTES = 64 * 1024


def is_remote(location: str) -> bool:
    """True for ``http://``, ``https://`` and ``hf://`` locations."""
    return location.startswith(("http://", "https://", "hf://"))


@dataclass(frozen=True)
class HubRepo:
    """``hf://ORG/REPO[@REVISION]`` split into its parts."""

    repo: str
    revision: str = "main"
    path: str = ""

    @classmethod
    def parse(cls, location: str) -> HubRepo:
        if not location.startswith("hf://"):
            raise RemoteError(location, "not an hf:// location")
        rest = location[len("hf://") :].strip("/")
        parts = rest.split("/")
        if len(parts) < 2 or not all(parts[:2]):
            raise RemoteError(location, "expected hf://ORG/REPO[@REVISION][/FILE]")
        name, _, revision = parts[1].partition("@")
        if not name or (revision == "" and "@" in parts[1]):
            raise RemoteError(location, "expected hf://ORG/REPO[@REVISION][/FILE]")
        return cls(f"{parts[0]}/{name}", revision or "main", "/".join(parts[2:]))

    def file_url(self, name: str, endpoint: str | None = None) -> str:
        base = (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_HF_ENDPOINT).rstrip("/")
        file_path = "/".join(part for part in (self.path, name) if part)
        return f"{base}/{self.repo}/resolve/{quote(self.revision, safe='')}/{quote(file_path)}"


@dataclass
class TransferStats:
    """What a session cost: requests sent (retries included) and body bytes received."""

    #: Every HTTP request sent: to resolvers and to the files' hosts, retries and redirect hops included.
    requests: int = 0
    bytes_transferred: int = 0
    retries: int = 0
    #: Of ``requests``, those sent to a Hugging Face ``/resolve/`` URL: what the Hub's *Resolvers*
    #: rate limit counts (one per file and per re-resolve, plus any retried there).
    resolver_requests: int = 0
    #: Times a remembered redirect target (a signed CDN URL) had expired or was refused and the file
    #: was resolved again.
    re_resolves: int = 0
    #: The Hub commit the files were read at (``X-Repo-Commit``); None off the Hub.
    commit: str | None = None

    @property
    def data_requests(self) -> int:
        """Requests sent anywhere but a Hub resolver (the CDN, a plain HTTP server)."""
        return self.requests - self.resolver_requests

    def report(self) -> dict[str, Any]:
        """The keys every report's ``transfer`` object carries (docs/scale.md)."""
        return {
            "requests": self.requests,
            "bytes_transferred": self.bytes_transferred,
            "retries": self.retries,
            "resolver_requests": self.resolver_requests,
            "data_requests": self.data_requests,
            "re_resolves": self.re_resolves,
            "commit": self.commit,
        }


@dataclass
class RetryPolicy:
    attempts: int = 5  # tries per range, the first included
    backoff_s: float = 0.5
    max_backoff_s: float = 20.0
    #: How to wait; tests pass a recorder instead of sleeping.
    sleep: Callable[[float], None] = field(default=time.sleep)


class RemoteSession:
    """One pooled HTTP client for every file of a remote model, with shared counters."""

    def __init__(
        self,
        *,
        timeout_s: float = 60.0,
        retry: RetryPolicy | None = None,
        hf_token: str | None = None,
        hf_endpoint: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.retry = retry or RetryPolicy()
        self.stats = TransferStats()
        self._hf_token = hf_token if hf_token is not None else os.environ.get("HF_TOKEN")
        endpoint = hf_endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_HF_ENDPOINT
        self._hf_host = urlsplit(endpoint).netloc
        #: Redirect targets by the URL asked for: each file is resolved once, not once per range.
        self._resolved: dict[str, Resolution] = {}
        #: Commits the Hub named, by (repository, revision) as written in the resolve URL.
        self._commits: dict[tuple[str, str], str] = {}
        self._client = httpx.Client(
            timeout=timeout_s,
            # By hand (see _send): each hop is counted, the target is remembered, and the token
            # is sent to the Hub's host only.
            follow_redirects=False,
            transport=transport,
            headers={"Accept-Encoding": "identity", "User-Agent": "modeltrace"},
        )

    def _headers(self, url: str, extra: dict[str, str]) -> dict[str, str]:
        """``extra`` plus the token when ``url`` is on the Hub's host (never on the CDN's)."""
        headers = {key: value for key, value in extra.items() if key.lower() != "authorization"}
        if self._hf_token and urlsplit(url).netloc == self._hf_host:
            headers["Authorization"] = f"Bearer {self._hf_token}"
        return headers

    def commit_for(self, url: str) -> str | None:
        """The commit the Hub said the revision of the resolve URL ``url`` names, once it said it."""
        key = repo_revision(url)
        return None if key is None else self._commits.get(key)

    def resolution(self, url: str) -> Resolution | None:
        """Where ``url``'s bytes were last found (None before the first request, or without redirect)."""
        return self._resolved.get(url)

    def get_range(self, url: str, start: int, stop: int) -> bytes:
        """Bytes ``start..stop-1`` of ``url`` (``stop`` exclusive), retried on transient failures."""
        if stop <= start:
            return b""
        if stop - start > limits.MAX_READ_BYTES:
            raise ResourceLimitError(url, f"a single read of {stop - start:,} bytes is over the limit")
        headers = {"Range": f"bytes={start}-{stop - 1}"}
        return self._with_retries(url, lambda: self._fetch_range(url, headers, start, stop))

    def head_size(self, url: str) -> int:
        """The size of ``url`` from a one-byte ranged GET (``Content-Range: bytes 0-0/SIZE``)."""
        headers = {"Range": "bytes=0-0"}
        return self._with_retries(url, lambda: self._fetch_size(url, headers))

    def probe(self, url: str, length: int = PROBE_BYTES) -> tuple[int, bytes]:
        """The size of ``url`` and its first ``min(length, size)`` bytes, in one ranged GET (a server
        clamps a range that runs past the end of the file to the file, RFC 9110 14.1.1)."""
        headers = {"Range": f"bytes=0-{max(1, length) - 1}"}
        return self._with_retries(url, lambda: self._fetch_prefix(url, headers, max(1, length)))

    def get_small(self, url: str, limit: int) -> bytes | None:
        """A whole small file (config, index, card), or None when the server says 404."""
        return self._with_retries(url, lambda: self._fetch_small(url, limit))

    def close(self) -> None:
        self._client.close()

    # -- one attempt each --------------------------------------------------------------------------

    def _send(self, url: str, headers: dict[str, str]) -> httpx.Response:
        """GET ``url``'s bytes: from its remembered target when one is known and still valid, else
        from ``url`` itself, following redirects by hand and remembering where they led."""
        known = self._resolved.get(url)
        if known is not None and not known.expiring():
            response = self._send_once(known.target, headers)
            if response.status_code not in REFUSED_STATUSES:
                return response
            self._drain(response)
        if known is not None:  # about to expire, or refused (expired, revoked): resolve again, once
            self._resolved.pop(url, None)
            self.stats.re_resolves += 1
        return self._resolve(url, headers, previous=known)

    def _resolve(self, url: str, headers: dict[str, str], previous: Resolution | None) -> httpx.Response:
        current = url
        commit = size = etag = None
        for _ in range(MAX_REDIRECTS + 1):
            response = self._send_once(current, headers)
            if is_resolver_url(current, self._hf_host):
                said = hub_headers(response)
                commit, size, etag = said[0] or commit, said[1] or size, said[2] or etag
                self._note_commit(url, said[0])  # under the URL asked for, even past a rename
            location = response.headers.get("Location")
            if response.status_code not in REDIRECT_STATUSES or not location:
                break
            self._drain(response)
            was_https = current.startswith("https://")
            current = urljoin(current, location)
            # Never from HTTPS down to plain HTTP (a signed URL would travel in clear), nor off HTTP.
            if not current.startswith("https://") and (was_https or not current.startswith("http://")):
                raise RemoteError(
                    url, f"refused a redirect to {current[:80]!r} (not HTTP(S), or HTTPS to HTTP)"
                )
        else:
            response.close()
            raise RemoteError(url, f"more than {MAX_REDIRECTS} redirects")
        if current != url and response.status_code < 400:
            if previous is not None and previous.etag and etag and previous.etag != etag:
                response.close()
                raise RemoteError(url, "the file changed while it was being read (its ETag differs)")
            expires = signed_url_expiry(current)
            if expires is not None and expires - time.time() <= 2 * EXPIRY_MARGIN_S:
                expires = None  # too short-lived to renew ahead: used until the CDN refuses it
            self._resolved[url] = Resolution(current, commit, size, etag, expires)
        return response

    def _send_once(self, url: str, headers: dict[str, str]) -> httpx.Response:
        self.stats.requests += 1
        if is_resolver_url(url, self._hf_host):
            self.stats.resolver_requests += 1
        request = self._client.build_request("GET", url, headers=self._headers(url, headers))
        return self._client.send(request, stream=True)

    def _drain(self, response: httpx.Response, limit: int = 64 * 1024) -> None:
        """Read a redirect's or refusal's short body so its connection goes back to the pool (an
        unread body closes it); a body longer than ``limit`` closes it after all."""
        try:
            for chunk in response.iter_bytes():
                self.stats.bytes_transferred += len(chunk)
                limit -= len(chunk)
                if limit < 0:
                    break
        except httpx.TransportError:
            pass  # the answer was already understood; the connection is simply not reused
        finally:
            response.close()

    def _note_commit(self, url: str, commit: str | None) -> None:
        key = repo_revision(url)
        if commit is None or key is None or not COMMIT.match(commit):
            return
        self._commits.setdefault(key, commit)
        self.stats.commit = self.stats.commit or commit

    def _expected_size(self, url: str, size: int) -> None:
        """Refuse a target whose size is not the one the resolver announced (a wrong CDN object)."""
        known = self._resolved.get(url)
        if known is not None and known.size is not None and known.size != size:
            where = urlsplit(known.target).netloc
            raise RemoteError(url, f"the Hub announced {known.size:,} bytes, {where} holds {size:,}")

    def _fetch_range(self, url: str, headers: dict[str, str], start: int, stop: int) -> bytes:
        response = self._send(url, headers)
        try:
            raise_for_status(url, response)
            if response.status_code != 206:
                raise RemoteError(
                    url,
                    f"the server answered a byte-range request with HTTP {response.status_code} and the "
                    "whole file: it ignores Range, and modeltrace does not download whole weight files "
                    "by accident (download the model and point modeltrace at the local copy)",
                )
            check_content_range(url, response, start, stop)
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                self.stats.bytes_transferred += len(chunk)
                if len(body) > stop - start:
                    raise RemoteError(url, f"the server sent more than the {stop - start:,} bytes asked for")
            if len(body) != stop - start:
                raise TransientError(f"body ended after {len(body):,} of {stop - start:,} bytes")
            return bytes(body)
        finally:
            response.close()

    def _ranged_file_size(self, url: str, response: httpx.Response) -> int:
        """The whole file's size from the answer to a first range request, which must be a 206
        (a server that ignores ``Range`` would send the whole file) naming the size the Hub announced."""
        raise_for_status(url, response)
        if response.status_code != 206:
            raise RemoteError(
                url,
                f"the server answered a byte-range request with HTTP {response.status_code}: it ignores "
                "Range, so modeltrace cannot read only the parts it needs",
            )
        total = response.headers.get("Content-Range", "").rpartition("/")[2]
        if not total.isdecimal() or len(total) > 20:
            raise RemoteError(url, "the server's Content-Range does not give the file size")
        size = int(total)
        self._expected_size(url, size)
        return size

    def _fetch_size(self, url: str, headers: dict[str, str]) -> int:
        response = self._send(url, headers)
        try:
            size = self._ranged_file_size(url, response)
            # Read the one byte so the connection goes back to the pool instead of being dropped.
            self.stats.bytes_transferred += len(response.read()[:16])
            return size
        finally:
            response.close()

    def _fetch_prefix(self, url: str, headers: dict[str, str], length: int) -> tuple[int, bytes]:
        response = self._send(url, headers)
        try:
            size = self._ranged_file_size(url, response)
            check_content_range(url, response, 0, min(length, size))
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                self.stats.bytes_transferred += len(chunk)
                if len(body) > min(length, size):
                    raise RemoteError(url, f"the server sent more than the {length:,} bytes asked for")
            if len(body) != min(length, size):
                raise TransientError(f"body ended after {len(body):,} of {min(length, size):,} bytes")
            return size, bytes(body)
        finally:
            response.close()

    def _fetch_small(self, url: str, limit: int) -> bytes | None:
        response = self._send(url, {})
        try:
            if response.status_code == 404:
                return None
            raise_for_status(url, response)
            declared = response.headers.get("Content-Length", "")
            if declared.isdecimal() and int(declared) > limit:
                raise ResourceLimitError(url, f"{int(declared):,} bytes is over the {limit:,}-byte limit")
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                self.stats.bytes_transferred += len(chunk)
                if len(body) > limit:
                    raise ResourceLimitError(url, f"more than {limit:,} bytes; not a small metadata file")
            return bytes(body)
        finally:
            response.close()

    def _with_retries(self, url: str, attempt: Callable[[], T]) -> T:
        policy = self.retry
        last = ""
        for number in range(1, policy.attempts + 1):
            try:
                return attempt()
            except RetryAfterError as wait:
                last = wait.reason
                delay = wait.seconds
            except (TransientError, httpx.TransportError) as error:
                last = str(error) or type(error).__name__
                delay = None
                # A refused connection is a dead or wrong host, not a busy one: one retry is enough.
                if isinstance(error, httpx.ConnectError) and number >= min(2, policy.attempts):
                    raise RemoteError(url, f"cannot connect ({last})") from error
            if number == policy.attempts:
                break
            self.stats.retries += 1
            if delay is None:
                delay = min(policy.max_backoff_s, policy.backoff_s * 2 ** (number - 1))
                delay *= 0.5 + random.random() / 2  # jitter: many clients must not retry in lockstep
            policy.sleep(delay)
        raise RemoteError(url, f"gave up after {policy.attempts} attempts: {last}")


class RemoteFile:
    """A remote file read by byte ranges: the :class:`~modeltrace.formats.base.RangeFile` interface."""

    def __init__(
        self, url: str, session: RemoteSession, size: int | None = None, prefix: bytes = b""
    ) -> None:
        """``prefix``: the file's first bytes when already fetched (by :meth:`RemoteSession.probe`);
        reads inside it cost no request."""
        self.path = url
        self._session = session
        self.size = session.head_size(url) if size is None else size
        self._prefix = prefix[: self.size]
        self.bytes_read = 0

    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise RemoteError(
                self.path,
                f"byte range {offset:,}..{offset + length:,} lies outside the file ({self.size:,} bytes)",
            )
        known = self._prefix[offset : offset + length] if offset < len(self._prefix) else b""
        data = known
        if len(known) < length:  # only the part past the prefix goes over the network
            data += self._session.get_range(self.path, offset + len(known), offset + length)
        self.bytes_read += length
        return data

    def read_ranges(self, ranges: Sequence[tuple[int, int]], max_gap: int = DEFAULT_MAX_GAP) -> list[bytes]:
        """Several ``(offset, length)`` ranges, with ranges less than ``max_gap`` apart fetched together."""
        results: list[bytes] = [b""] * len(ranges)
        for start, stop, members in coalesce(ranges, max_gap):
            block = self.read(start, stop - start)
            for index in members:
                offset, length = ranges[index]
                results[index] = block[offset - start : offset - start + length]
        return results

    def close(self) -> None:
        """Nothing to release per file: the session owns the connections."""


def coalesce(ranges: Sequence[tuple[int, int]], max_gap: int) -> list[tuple[int, int, list[int]]]:
    """Group ``(offset, length)`` ranges into ``(start, stop, member indices)`` requests."""
    order = sorted(range(len(ranges)), key=lambda index: ranges[index][0])
    groups: list[tuple[int, int, list[int]]] = []
    for index in order:
        offset, length = ranges[index]
        if groups and offset - groups[-1][1] <= max_gap:
            start, stop, members = groups[-1]
            groups[-1] = (start, max(stop, offset + length), [*members, index])
        else:
            groups.append((offset, offset + length, [index]))
    return groups
