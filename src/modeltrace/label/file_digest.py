"""File-level digest of a model, identical to the OpenSSF model-signing (OMS) root digest.

The OMS v1.0 format (``model_signing`` package, default ``files`` serialization) works so:

1. List every regular file under the model folder (recursively, hidden files included) except
   the git paths ``.git/``, ``.gitattributes``, ``.github/`` and ``.gitignore`` at the top level.
   A single-file model is one entry named ``.``.
2. Hash each file with SHA-256; its identifier is the path relative to the model folder, in
   POSIX form.
3. Sort the entries by path, comparing component by component (as ``PurePosixPath`` orders), and
   take SHA-256 over the concatenated 32-byte file digests. That is the in-toto subject digest
   of an OMS signature and is what ``oms_root`` reports.

Unlike ``model_signing``'s default, symlinks to files are followed (the Hugging Face cache is made
of them) as far as :mod:`modeltrace.formats.symlinks` allows: inside the folder, into the
enclosing Hugging Face cache's ``blobs/``, or anywhere with ``--follow-symlinks``; directory
symlinks are not descended into. The package is a test and benchmark
dependency only: modeltrace computes the value itself, streaming and in parallel.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from modeltrace.errors import UnsupportedFormatError
from modeltrace.formats.symlinks import check_symlink
from modeltrace.label._stream import sha256_file

#: Paths model-signing ignores by default (relative to the model folder).
GIT_PATHS = (".git", ".gitattributes", ".github", ".gitignore")

#: Called after each file with (relative path, bytes hashed).
Progress = Callable[[str, int], None]


@dataclass(frozen=True)
class FileManifest:
    """Per-file SHA-256 digests (hex) by POSIX path relative to the model, and their root."""

    files: dict[str, str]
    root: str
    ignored: tuple[str, ...]
    total_bytes: int


def _sort_key(identifier: str) -> tuple[str, ...]:
    return PurePosixPath(identifier).parts


def root_of(files: dict[str, str]) -> str:
    """The OMS root: SHA-256 over the file digests in path order."""
    hasher = hashlib.sha256()
    for identifier in sorted(files, key=_sort_key):
        hasher.update(bytes.fromhex(files[identifier]))
    return hasher.hexdigest()


def _is_ignored(relative: PurePosixPath, ignored: Iterable[str]) -> bool:
    return any(relative.is_relative_to(PurePosixPath(path)) for path in ignored)


def list_model_files(model: Path, ignored: Iterable[str] = GIT_PATHS) -> list[tuple[str, Path]]:
    """(identifier, path) of every file the digest covers, in no particular order."""
    ignored = tuple(ignored)
    if model.is_file():
        return [(".", model)]
    if not model.is_dir():
        raise UnsupportedFormatError(model, "no such file or folder")
    found: list[tuple[str, Path]] = []
    # An explicit stack, not os.walk: on Python 3.11 os.walk recurses once per level and a folder
    # nested 1,100 deep ended in RecursionError.
    pending = [(model, PurePosixPath("."))]
    while pending:
        folder, relative_base = pending.pop()
        try:
            with os.scandir(folder) as entries:
                listed = sorted(entries, key=lambda entry: entry.name)
        except OSError as error:
            raise UnsupportedFormatError(folder, f"cannot list folder ({error.strerror})") from error
        for entry in listed:
            relative = relative_base / entry.name
            if _is_ignored(relative, ignored):
                continue
            path = Path(entry.path)
            if entry.is_dir(follow_symlinks=False):
                pending.append((path, relative))
            elif entry.is_symlink() and path.is_dir():
                continue  # directory symlinks are not descended into
            elif not path.is_file():  # sockets, fifos, broken symlinks: not model content
                raise UnsupportedFormatError(path, "not a regular file (special file or broken symlink)")
            else:
                if entry.is_symlink():
                    check_symlink(path, model)
                found.append((str(relative), path))
    return found


def file_manifest(
    model: str | Path,
    *,
    ignored: Iterable[str] = GIT_PATHS,
    workers: int | None = None,
    progress: Progress | None = None,
) -> FileManifest:
    """Hash every file of ``model`` in parallel (one file per thread) and build the manifest."""
    root_path = Path(model)
    ignored = tuple(ignored)
    entries = list_model_files(root_path, ignored)
    # Largest files first, so one big file does not start last and leave the other cores idle.
    try:
        entries.sort(key=lambda entry: -entry[1].stat().st_size)
    except OSError as error:  # e.g. a path past PATH_MAX
        raise UnsupportedFormatError(root_path, f"cannot read a file's size ({error})") from error

    def hash_one(entry: tuple[str, Path]) -> tuple[str, str, int]:
        identifier, path = entry
        try:
            digest = sha256_file(path)
        except OSError as error:
            raise UnsupportedFormatError(path, f"cannot read file ({error})") from error
        size = path.stat().st_size
        if progress is not None:
            progress(identifier, size)
        return identifier, digest, size

    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        results = list(pool.map(hash_one, entries))
    files = {identifier: digest for identifier, digest, _ in results}
    return FileManifest(
        files=files,
        root=root_of(files),
        ignored=ignored,
        total_bytes=sum(size for _, _, size in results),
    )
