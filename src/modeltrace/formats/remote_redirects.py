"""Where a remote file's bytes really are: a resolve URL is asked once, its redirect target is reused.

The Hugging Face Hub answers ``GET {endpoint}/ORG/REPO/resolve/REVISION/FILE`` for a large (LFS or
Xet) file with ``302`` and a signed CDN URL in ``Location``, plus what it knows of the file:
``X-Repo-Commit`` (the commit the revision names now), ``X-Linked-Size`` and ``X-Linked-Etag``
(size and SHA-256 of the content, where ``Content-Length`` and ``ETag`` describe the pointer).
Every request to a ``/resolve/`` URL counts against the Hub's *Resolvers* rate limit, requests to
the CDN do not, so :class:`~modeltrace.formats.remote.RemoteSession` resolves each file once, sends
its range reads to the target, and resolves again only when the signed URL expires or is refused.

This is what ``huggingface_hub``'s ``hf_hub_download`` does for one download (a ``HEAD`` that follows
same-host redirects only, then a ``GET`` of ``Location``, with the ``Authorization`` header dropped
when ``Location`` is on another host); here it holds for the many range reads of one file. No
``HEAD`` is sent: the file's first ranged ``GET`` gets the same ``302`` and headers, so resolving
costs no request of its own.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import httpx

COMMIT = re.compile(r"^[0-9a-f]{40}$")
#: Redirect statuses followed by hand (``follow_redirects`` is off so each hop is seen and counted).
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
#: A signed URL this close to its expiry is resolved again before use, not after a refusal.
EXPIRY_MARGIN_S = 30.0
#: What a CDN answers when a signed URL has expired or its signature no longer holds.
REFUSED_STATUSES = frozenset({401, 403, 410})


@dataclass(frozen=True)
class Resolution:
    """Where a file's bytes are (``target``) and what the resolver said about them."""

    target: str
    commit: str | None = None
    size: int | None = None
    etag: str | None = None
    #: Unix time after which ``target`` is refused (from its signature), None when not signed.
    expires_at: float | None = None

    def expiring(self, now: float | None = None) -> bool:
        if self.expires_at is None:
            return False
        return (time.time() if now is None else now) >= self.expires_at - EXPIRY_MARGIN_S


def is_resolver_url(url: str, hub_host: str) -> bool:
    """True for a Hub ``resolve`` URL: the requests its *Resolvers* rate limit counts."""
    parts = urlsplit(url)
    return parts.netloc == hub_host and "/resolve/" in parts.path


def hub_headers(response: httpx.Response) -> tuple[str | None, int | None, str | None]:
    """``(commit, size, etag)`` from a resolver's answer (any of them None when not sent)."""
    headers = response.headers
    commit = headers.get("X-Repo-Commit", "").strip().lower() or None
    size_text = headers.get("X-Linked-Size", "").strip()
    size = int(size_text) if size_text.isdecimal() and len(size_text) <= 20 else None
    etag = (headers.get("X-Linked-Etag") or headers.get("ETag") or "").strip() or None
    if etag is not None:
        etag = etag.removeprefix("W/").strip('"')
    return commit, size, etag


def signed_url_expiry(url: str) -> float | None:
    """When a signed URL stops working, from its query: CloudFront's ``Expires`` (Unix seconds) or
    S3's ``X-Amz-Date`` + ``X-Amz-Expires``; None when it says nothing (then only a refusal tells)."""
    query = parse_qs(urlsplit(url).query)
    expires = query.get("Expires", [""])[0]
    if expires.isdecimal() and len(expires) <= 12:
        return float(expires)
    date, seconds = query.get("X-Amz-Date", [""])[0], query.get("X-Amz-Expires", [""])[0]
    if date and seconds.isdecimal() and len(seconds) <= 9:
        try:
            signed = datetime.strptime(date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError:
            return None
        return signed.timestamp() + int(seconds)
    return None


def repo_revision(url: str) -> tuple[str, str] | None:
    """``(ORG/REPO, REVISION)`` of a ``.../ORG/REPO/resolve/REVISION/...`` URL, else None."""
    before, found, after = urlsplit(url).path.partition("/resolve/")
    repo = "/".join(before.strip("/").split("/")[-2:])
    if not found or repo.count("/") != 1:
        return None
    return repo, after.split("/", 1)[0]
