"""A local stand-in for the Hugging Face Hub's file resolver and its CDN, on two loopback ports.

The Hub (``GET``/``HEAD /ORG/REPO/resolve/REVISION/PATH``) answers as huggingface.co does:

* every answer carries ``X-Repo-Commit``, the commit ``REVISION`` names now (a branch or tag of
  ``refs``, or a 40-hex commit); an unknown revision is ``404`` with ``X-Error-Code: RevisionNotFound``;
* a small file (a regular git file) is served by the Hub itself, ``ETag`` its git blob id, ranges
  honoured;
* a large file (LFS/Xet: weight files) is ``302 Found`` with ``Location`` a signed CDN URL
  (``Expires`` and ``Signature`` in the query, as CloudFront signs them), ``X-Linked-Size`` and
  ``X-Linked-Etag`` (the content's size and SHA-256) and the pointer's ``ETag``;
* a gated repository without ``Authorization: Bearer TOKEN`` is ``401`` (``X-Error-Code: GatedRepo``);
* a renamed repository answers ``307`` with a *relative* ``Location`` to its new name.

The CDN (``GET /blobs/SHA256?Expires=..&Signature=..``) serves ranges of a blob for a signature the
Hub issued, at most ``uses_per_url`` times (then ``403``, as an expired signed URL is refused), and
records every request that carries an ``Authorization`` header: a token must never reach it.
``tests/formats/test_hub_redirects.py`` checks this fake against ``huggingface_hub``'s own client.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, unquote, urlsplit

from tests.formats.range_server import QuietHandler, serving

_RANGE = re.compile(r"^bytes=(\d+)-(\d+)?$")
LARGE_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".onnx")


@dataclass
class Repo:
    commits: dict[str, dict[str, bytes]]  # commit -> {path: content}
    refs: dict[str, str]  # branch or tag -> commit
    gated: bool = False


@dataclass
class _Signed:
    blob: str
    uses: int = 0


@dataclass
class FakeHub:
    """The state both servers share; tests read the counters and change refs mid-read."""

    token: str = "hf_fake_token"
    #: How many requests one signed CDN URL serves before it is refused as expired.
    uses_per_url: int = 1_000_000
    #: Seconds a signed URL is valid for (in its ``Expires``).
    valid_s: int = 3600
    repos: dict[str, Repo] = field(default_factory=dict)
    renamed: dict[str, str] = field(default_factory=dict)  # old ORG/REPO -> new ORG/REPO
    cdn_url: str = ""
    #: Resolver requests per (repo as asked, path); CDN requests per blob.
    resolver_hits: Counter[tuple[str, str]] = field(default_factory=Counter)
    cdn_hits: Counter[str] = field(default_factory=Counter)
    #: Requests that reached the CDN with an Authorization header (must stay empty).
    leaked: list[str] = field(default_factory=list)
    #: Added to X-Linked-Size (a Hub that announces one size while its CDN holds another).
    linked_size_error: int = 0
    #: Answer this many resolve requests with 429 and a RateLimit header (no Retry-After), as
    #: the Hub does when the Resolvers window is used up.
    too_many: int = 0
    #: The REVISION of every resolve URL asked for, in order.
    revisions_asked: list[str] = field(default_factory=list)
    refused: int = 0
    _signatures: dict[str, _Signed] = field(default_factory=dict)
    _counter: itertools.count[int] = field(default_factory=itertools.count)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, repo: str, files: dict[str, bytes], *, branch: str = "main", gated: bool = False) -> str:
        """A new commit of ``repo`` holding ``files``, made the head of ``branch``; returns its id."""
        commit = hashlib.sha1(repr((repo, sorted(files.items()))).encode()).hexdigest()
        entry = self.repos.setdefault(repo, Repo({}, {}, gated))
        entry.commits[commit] = dict(files)
        entry.refs[branch] = commit
        return commit

    def _sign(self, blob: str) -> str:
        signature = f"sig{next(self._counter)}"
        self._signatures[signature] = _Signed(blob)
        return f"{self.cdn_url}/blobs/{blob}?Expires={int(time.time()) + self.valid_s}&Signature={signature}"

    def blob(self, digest: str) -> bytes | None:
        for repo in self.repos.values():
            for files in repo.commits.values():
                for content in files.values():
                    if hashlib.sha256(content).hexdigest() == digest:
                        return content
        return None


def _send(handler: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str]) -> None:
    handler.send_response(status)
    handler.send_header("Content-Length", str(len(body)))
    for key, value in headers.items():
        handler.send_header(key, value)
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)


def _ranged(handler: BaseHTTPRequestHandler, data: bytes, headers: dict[str, str]) -> None:
    match = _RANGE.match(handler.headers.get("Range", ""))
    if match is None:
        _send(handler, 200, data, {**headers, "Accept-Ranges": "bytes"})
        return
    start = int(match.group(1))
    stop = min(int(match.group(2)) + 1 if match.group(2) else len(data), len(data))
    if start >= len(data):
        _send(handler, 416, b"", {**headers, "Content-Range": f"bytes */{len(data)}"})
        return
    _send(
        handler, 206, data[start:stop], {**headers, "Content-Range": f"bytes {start}-{stop - 1}/{len(data)}"}
    )


def _hub_handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Hub(QuietHandler):
        def do_HEAD(self) -> None:  # noqa: N802  (the name http.server dispatches to)
            self.do_GET()

        def do_GET(self) -> None:  # noqa: N802  (the name http.server dispatches to)
            path = unquote(urlsplit(self.path).path)
            match = re.match(r"^/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$", path)
            if match is None:
                _send(self, 404, b"Not Found", {"X-Error-Code": "RepoNotFound"})
                return
            name, revision, file = match.groups()
            with hub.lock:
                hub.resolver_hits[(name, file)] += 1
                hub.revisions_asked.append(revision)
                throttle = hub.too_many > 0
                hub.too_many -= throttle
            if throttle:
                _send(self, 429, b"Too Many Requests", {
                    "RateLimit": '"resolvers";r=0;t=7',
                    "RateLimit-Policy": '"fixed window";"resolvers";q=3000;w=300',
                })  # fmt: skip
                return
            if name in hub.renamed:  # a relative redirect, as the Hub answers for a renamed repository
                new = hub.renamed[name]
                _send(self, 307, b"", {"Location": self.path.replace(f"/{name}/", f"/{new}/", 1)})
                return
            repo = hub.repos.get(name)
            if repo is None:
                _send(self, 401, b"Repository not found", {"X-Error-Code": "RepoNotFound"})
                return
            if repo.gated and self.headers.get("Authorization") != f"Bearer {hub.token}":
                _send(self, 401, b"Access to this repository is restricted", {"X-Error-Code": "GatedRepo"})
                return
            commit = revision if revision in repo.commits else repo.refs.get(revision)
            if commit is None:
                _send(self, 404, b"Invalid rev id", {"X-Error-Code": "RevisionNotFound"})
                return
            content = repo.commits[commit].get(file)
            headers = {"X-Repo-Commit": commit}
            if content is None:
                _send(self, 404, b"Entry not found", {**headers, "X-Error-Code": "EntryNotFound"})
                return
            digest = hashlib.sha256(content).hexdigest()
            pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{digest}\nsize {len(content)}"
            if file.endswith(LARGE_SUFFIXES):
                with hub.lock:
                    location = hub._sign(digest)
                body = f"Found. Redirecting to {location}".encode()
                _send(self, 302, body, {
                    **headers,
                    "Location": location,
                    "X-Linked-Size": str(len(content) + hub.linked_size_error),
                    "X-Linked-Etag": f'"{digest}"',
                    "ETag": f'"{hashlib.sha1(pointer.encode()).hexdigest()}"',
                    "Content-Type": "text/plain; charset=utf-8",
                })  # fmt: skip
                return
            git_blob = hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()
            _ranged(self, content, {**headers, "ETag": f'"{git_blob}"'})

    return Hub


def _cdn_handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Cdn(QuietHandler):
        def do_HEAD(self) -> None:  # noqa: N802  (the name http.server dispatches to)
            self.do_GET()

        def do_GET(self) -> None:  # noqa: N802  (the name http.server dispatches to)
            parts = urlsplit(self.path)
            digest = parts.path.removeprefix("/blobs/")
            signature = parse_qs(parts.query).get("Signature", [""])[0]
            expires = parse_qs(parts.query).get("Expires", ["0"])[0]
            with hub.lock:
                hub.cdn_hits[digest] += 1
                if "Authorization" in self.headers:
                    hub.leaked.append(self.path)
                issued = hub._signatures.get(signature)
                valid = issued is not None and issued.blob == digest and int(expires) > time.time()
                if valid and issued is not None:
                    issued.uses += 1
                    valid = issued.uses <= hub.uses_per_url
                hub.refused += not valid
            if not valid:
                _send(self, 403, b"<Error><Code>AccessDenied</Code>Request has expired</Error>", {})
                return
            content = hub.blob(digest)
            if content is None:
                _send(self, 404, b"", {})
                return
            _ranged(self, content, {"ETag": f'"{digest}"'})

    return Cdn


@contextmanager
def serve_hub(hub: FakeHub | None = None) -> Iterator[tuple[str, FakeHub]]:
    """The Hub and its CDN on two loopback ports; yields the Hub's base URL (for ``HF_ENDPOINT``)."""
    hub = hub or FakeHub()
    with serving(_cdn_handler(hub)) as cdn, serving(_hub_handler(hub)) as url:
        hub.cdn_url = cdn
        yield url, hub
