"""Pin a remote source to the version it names now, so that a rescan can tell "already registered".

``hf://ORG/REPO[@REVISION]``: a branch or tag moves, a commit does not. One request for the first
byte of ``config.json`` (or of the file the source names) at the repository's ``resolve`` URL
reads the ``X-Repo-Commit`` header the Hugging Face Hub sends with every resolve answer; the source
is then stored as ``hf://ORG/REPO@<commit>``. A revision already given as a 40-hex commit needs no request.
An endpoint that sends no such header (a plain mirror) leaves the revision as written.

``https://`` URLs are taken as naming one version (their servers have no common way to say which).

A remote model's registry digest is ``remote:`` + SHA-256 of its pinned source: reading the whole
content (what the OMS digest of a local model hashes) is exactly what a remote scan avoids.
"""

from __future__ import annotations

import hashlib
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from modeltrace.formats.remote import DEFAULT_HF_ENDPOINT, HubRepo

COMMIT = re.compile(r"^[0-9a-f]{40}$")
RESOLVE_THREADS = 16


@dataclass(frozen=True)
class Pinned:
    """``pinned``: the source as stored; ``error``: why it could not be pinned (then it is not read)."""

    source: str
    pinned: str
    error: str | None = None
    #: HTTP requests the pin cost (0 when the source names a commit or is not on the Hub).
    requests: int = 0


def remote_digest(pinned: str) -> str:
    return "remote:" + hashlib.sha256(pinned.encode("utf-8")).hexdigest()


def pin_sources(sources: list[str], *, timeout_s: float = 30.0) -> dict[str, Pinned]:
    """Every ``hf://`` source pinned to its commit (requests run on a few threads); others as given."""
    hub = [source for source in sources if source.startswith("hf://")]
    pinned = {source: Pinned(source, source) for source in sources if source not in hub}
    if hub:
        with (
            httpx.Client(timeout=timeout_s, follow_redirects=False) as client,
            ThreadPoolExecutor(min(RESOLVE_THREADS, len(hub))) as pool,
        ):
            for result in pool.map(lambda source: _pin_hub(source, client), hub):
                pinned[result.source] = result
    return pinned


def _hub_string(repo: HubRepo, revision: str) -> str:
    return f"hf://{repo.repo}@{revision}" + (f"/{repo.path}" if repo.path else "")


def _pin_hub(source: str, client: httpx.Client) -> Pinned:
    from modeltrace.errors import RemoteError

    try:
        repo = HubRepo.parse(source)
    except RemoteError as error:
        return Pinned(source, source, error.reason)
    if COMMIT.match(repo.revision):
        return Pinned(source, _hub_string(repo, repo.revision))
    single_file = repo.path and "." in repo.path.rsplit("/", 1)[-1]
    url = HubRepo(repo.repo, repo.revision, "").file_url(repo.path if single_file else _join(repo.path))
    endpoint = os.environ.get("HF_ENDPOINT") or DEFAULT_HF_ENDPOINT
    headers = {"User-Agent": "modeltrace"}
    token = os.environ.get("HF_TOKEN")
    if token and urlsplit(url).netloc == urlsplit(endpoint).netloc:
        headers["Authorization"] = f"Bearer {token}"
    last = ""
    for attempt in range(1, 3):
        try:
            # One byte, not HEAD: every range server answers GET, and the Hub sends the header on both.
            with client.stream("GET", url, headers={**headers, "Range": "bytes=0-0"}) as response:
                pass  # the body (a byte, or an error page) is never read
        except httpx.TransportError as error:
            last = f"cannot resolve the revision: {type(error).__name__}: {error}"
            continue
        commit = response.headers.get("X-Repo-Commit", "").strip().lower()
        if COMMIT.match(commit):
            return Pinned(source, _hub_string(repo, commit), requests=attempt)
        if response.status_code in (401, 403):
            denied = f"HTTP {response.status_code} resolving the revision: access denied"
            hint = " (set HF_TOKEN for gated or private repositories)"
            return Pinned(source, source, denied + hint, requests=attempt)
        if response.status_code in (429, 502, 503, 504):
            last = f"HTTP {response.status_code} resolving the revision"
            continue
        # No commit header (not the Hub, or a file it does not have): keep the revision as written.
        return Pinned(source, _hub_string(repo, repo.revision), requests=attempt)
    return Pinned(source, source, last, requests=2)


def _join(folder: str) -> str:
    return f"{folder}/config.json" if folder else "config.json"
