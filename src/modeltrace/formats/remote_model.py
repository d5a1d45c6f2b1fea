"""Open a model that lives at a URL (``https://...`` or ``hf://ORG/REPO[@REVISION]``) without downloading it.

The small files (``config.json``, the shard index, the model card, tokenizer files) are fetched
whole into a private temporary folder: the *mirror*. Each weight file gets a sparse stand-in of
its remote size there, registered in :data:`~modeltrace.formats.base.STAND_INS`, so the ordinary
readers open the mirror as a local model while every byte they read comes from an HTTP range
request. Closing the :class:`~modeltrace.formats.source.ModelSource` removes the mirror.

A folder URL is read as a Hugging Face layout: ``model.safetensors.index.json`` and its shards, or
a single ``model.safetensors``. A URL ending in a weight file name (``.safetensors``, ``.gguf``,
``.bin``/``.pt``...) or ``config.json`` is that one file.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from modeltrace.errors import CorruptFileError, RemoteError, UnsupportedFormatError
from modeltrace.formats import limits
from modeltrace.formats._index import shard_names_from_index
from modeltrace.formats.base import STAND_INS, RangeFile
from modeltrace.formats.hf_folder import MAX_CARD_BYTES, TOKENIZER_FILE_NAMES
from modeltrace.formats.remote import HubRepo, RemoteFile, RemoteSession, is_remote
from modeltrace.formats.remote_redirects import COMMIT
from modeltrace.formats.source import ModelSource

INDEX_NAME = "model.safetensors.index.json"
SINGLE_NAME = "model.safetensors"
_METADATA_FILES = {
    "config.json": limits.MAX_HEADER_BYTES,
    "generation_config.json": 1 << 20,
    "README.md": MAX_CARD_BYTES,
    INDEX_NAME: limits.MAX_HEADER_BYTES,
}
#: Tokenizer files are fetched too (the fingerprint's anchor tokens need the vocabulary).
MAX_TOKENIZER_BYTES = 64 << 20
_WEIGHT_SUFFIXES = (".safetensors", ".gguf", ".bin", ".pt", ".pth", ".ckpt", ".onnx")


class _Location:
    """Turns file names of one remote model into URLs; ``single_file`` when the URL names one file.

    An ``hf://`` revision that is not a commit (``main``, a tag) is pinned to the commit the Hub
    names in its first answer (``X-Repo-Commit``), so every file of the model comes from that one
    commit even when the branch moves while the model is read."""

    def __init__(self, location: str) -> None:
        self.location = location
        #: Set by open_remote_model: the session that saw the Hub's answers (and their commit).
        self.session: RemoteSession | None = None
        self.single_file: str | None = None
        self._hub: HubRepo | None = None
        self._base = ""
        if location.startswith("hf://"):
            repo = HubRepo.parse(location)
            folder = repo.path
            if repo.path and _is_file_name(repo.path):
                parent = str(PurePosixPath(repo.path).parent)
                self.single_file = PurePosixPath(repo.path).name
                folder = "" if parent == "." else parent
            self._hub = HubRepo(repo.repo, repo.revision, folder)
            self.name = repo.repo.rsplit("/", 1)[-1]
            return
        parts = urlsplit(location)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise RemoteError(location, "expected an http(s):// URL")
        path = parts.path.rstrip("/")
        folder_path, _, last = path.rpartition("/")
        if _is_file_name(last):
            self.single_file = last
        else:
            folder_path = path
        self._base = f"{parts.scheme}://{parts.netloc}{folder_path}"
        self.name = self.single_file or folder_path.rsplit("/", 1)[-1] or parts.netloc

    def url(self, name: str) -> str:
        if self._hub is not None:
            if self.session is not None and not COMMIT.match(self._hub.revision):
                commit = self.session.commit_for(self._hub.file_url(name))
                if commit is not None:
                    self._hub = HubRepo(self._hub.repo, commit, self._hub.path)
            return self._hub.file_url(name)
        return f"{self._base}/{name}"


def _is_file_name(path: str) -> bool:
    lowered = path.lower()
    return lowered.endswith((*_WEIGHT_SUFFIXES, "config.json", ".index.json"))


def open_remote_model(
    location: str, format: str | None = None, session: RemoteSession | None = None
) -> ModelSource:
    """Open the model at ``location`` reading only headers and the bytes readers ask for."""
    from modeltrace.formats.detect import open_model  # detect imports this module lazily

    if not is_remote(location):
        raise RemoteError(location, "not a remote location (expected https://, http:// or hf://)")
    where = _Location(location)
    session = where.session = session or RemoteSession()
    mirror_root = Path(tempfile.mkdtemp(prefix="modeltrace-remote-"))
    mirror = mirror_root / _safe_name(where.name)
    mirror.mkdir()
    registered: list[str] = []

    def cleanup() -> None:
        for key in registered:
            STAND_INS.pop(key, None)
        shutil.rmtree(mirror_root, ignore_errors=True)
        session.close()

    try:
        entry = _build_mirror(where, session, mirror, registered)
        source = open_model(entry, format)
    except BaseException:
        cleanup()
        raise
    source.location = location
    source.transfer = session.stats
    source._cleanup.append(cleanup)
    return source


def _build_mirror(where: _Location, session: RemoteSession, mirror: Path, registered: list[str]) -> Path:
    """Fetch the small files, create the weight stand-ins; returns the path to open."""
    if where.single_file is not None:
        name = where.single_file
        if name.endswith(".json") and not name.endswith(".index.json"):
            data = session.get_small(where.url(name), limits.MAX_HEADER_BYTES)
            if data is None:
                raise RemoteError(where.url(name), "HTTP 404: no such file")
            (mirror / name).write_bytes(data)
            return mirror / name
        if name.endswith(".index.json"):
            return _from_index(where, session, mirror, registered, name)
        _stand_in(where.url(name), session, mirror / name, registered)
        return mirror / name
    for name, limit in _METADATA_FILES.items():
        data = session.get_small(where.url(name), limit)
        if data is not None:
            (mirror / name).write_bytes(data)
    for name in TOKENIZER_FILE_NAMES:
        if name in _METADATA_FILES:
            continue
        data = session.get_small(where.url(name), MAX_TOKENIZER_BYTES)
        if data is not None:
            (mirror / name).write_bytes(data)
    if (mirror / INDEX_NAME).is_file():
        _from_index(where, session, mirror, registered, INDEX_NAME, fetched=True)
    else:
        try:
            _stand_in(where.url(SINGLE_NAME), session, mirror / SINGLE_NAME, registered)
        except RemoteError as error:
            if "404" not in error.reason:
                raise
            if not (mirror / "config.json").is_file():
                raise UnsupportedFormatError(
                    where.location, f"found no config.json, {INDEX_NAME} or {SINGLE_NAME} there"
                ) from None
    return mirror


def _from_index(
    where: _Location,
    session: RemoteSession,
    mirror: Path,
    registered: list[str],
    index_name: str,
    fetched: bool = False,
) -> Path:
    index_path = mirror / index_name
    if not fetched:
        data = session.get_small(where.url(index_name), limits.MAX_HEADER_BYTES)
        if data is None:
            raise RemoteError(where.url(index_name), "HTTP 404: no such file")
        index_path.write_bytes(data)
    names, _ = shard_names_from_index(index_path, "shard index")
    for relative in names:
        if len(relative.parts) != 1:  # the mirror is flat: shards in subfolders are not served
            raise CorruptFileError(
                where.url(index_name), f"shard name {str(relative)[:80]!r} is not a plain file name"
            )
        _stand_in(where.url(str(relative)), session, mirror / str(relative), registered)
    return index_path


def _stand_in(url: str, session: RemoteSession, path: Path, registered: list[str]) -> None:
    """A sparse local file of the remote file's size whose reads go to ``url``; the size probe also
    fetches the file's first bytes, where every weight format keeps its header."""
    size, prefix = session.probe(url)
    with open(path, "wb") as handle:
        handle.truncate(size)  # sparse: no disk blocks are written
    key = str(path)

    def opener() -> RangeFile:
        return RemoteFile(url, session, size, prefix)  # type: ignore[return-value]  # same interface

    STAND_INS[key] = opener
    registered.append(key)


def _safe_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip(".") or "model"
    return cleaned[:100]
