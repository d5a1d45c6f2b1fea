"""Download only the tokenizer files of a Hugging Face repository, on the user's request.

``hf://ORG/REPO[@REVISION]`` is fetched file by file from
``{HF_ENDPOINT}/ORG/REPO/resolve/{REVISION}/{FILE}`` (``HF_ENDPOINT`` defaults to
``https://huggingface.co``, the variable ``huggingface_hub`` reads too, so mirrors work), with the
token from ``HF_TOKEN`` for gated or private repositories. No weights are ever requested: the
files tried are ``tokenizer_config.json`` and then the first tokenizer file that exists, in the
order a folder is searched (see :data:`~.references.FOLDER_LAYOUT`). Each file is capped at
:data:`~.references.MAX_TOKENIZER_FILE_BYTES` while it streams.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import httpx

from modeltrace.errors import TokenizerError
from modeltrace.probe.references import MAX_TOKENIZER_FILE_BYTES

DEFAULT_ENDPOINT = "https://huggingface.co"
_URI = re.compile(r"^hf://(?P<repo>[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*)(?:@(?P<revision>[\w./-]+))?/?$")
#: Tried in order after tokenizer_config.json; the first that exists is the tokenizer.
_CANDIDATES: tuple[tuple[str, ...], ...] = (
    ("tokenizer.json",),
    ("tekken.json",),
    ("tiktoken.model",),
    ("tokenizer.model",),
    ("vocab.json", "merges.txt"),
)


def is_hub_uri(value: str) -> bool:
    return value.startswith("hf://")


def parse_uri(uri: str) -> tuple[str, str]:
    """``hf://ORG/REPO[@REV]`` -> (``ORG/REPO``, revision, default ``main``)."""
    match = _URI.match(uri.strip())
    if match is None or ".." in uri:
        raise TokenizerError(
            f"'{uri}' is not a Hugging Face reference; expected hf://ORG/REPO or hf://ORG/REPO@REV."
        )
    return match["repo"], match["revision"] or "main"


def download_tokenizer(uri: str, target: Path, *, timeout_s: float = 60.0) -> Path:
    """Fetch the tokenizer files of ``uri`` into ``target`` (a folder) and return it."""
    repo, revision = parse_uri(uri)
    endpoint = os.environ.get("HF_ENDPOINT", DEFAULT_ENDPOINT).rstrip("/")
    headers = {"user-agent": "modeltrace"}
    token = os.environ.get("HF_TOKEN")
    if token:
        headers["authorization"] = f"Bearer {token}"
    target.mkdir(parents=True, exist_ok=True)
    tried: list[str] = []
    with httpx.Client(headers=headers, timeout=timeout_s, follow_redirects=True) as client:
        _fetch(client, f"{endpoint}/{repo}/resolve/{revision}", "tokenizer_config.json", target, tried)
        for group in _CANDIDATES:
            base = f"{endpoint}/{repo}/resolve/{revision}"
            if all(_fetch(client, base, name, target, tried) for name in group):
                return target
    raise TokenizerError(
        f"No tokenizer file found in {uri} (revision {revision}); tried: {'; '.join(tried)}."
    )


def _fetch(client: httpx.Client, base: str, name: str, target: Path, tried: list[str]) -> bool:
    """Download one file; False when the repository does not have it (404)."""
    url = f"{base}/{name}"
    try:
        with client.stream("GET", url) as response:
            if response.status_code == 404:
                tried.append(f"{name}: 404")
                return False
            if response.status_code in (401, 403):
                raise TokenizerError(
                    f"{url} answered HTTP {response.status_code}: the repository is gated or private; "
                    "accept its terms on huggingface.co and set HF_TOKEN to a token that may read it."
                )
            if response.status_code != 200:
                raise TokenizerError(f"{url} answered HTTP {response.status_code}; try again later.")
            size = 0
            with (target / name).open("wb") as handle:
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > MAX_TOKENIZER_FILE_BYTES:
                        raise TokenizerError(
                            f"{url} is larger than {MAX_TOKENIZER_FILE_BYTES:,} bytes; not a tokenizer file."
                        )
                    handle.write(chunk)
    except httpx.HTTPError as error:
        raise TokenizerError(f"Cannot download {url}: {type(error).__name__}: {error}.") from error
    tried.append(f"{name}: found")
    return True
