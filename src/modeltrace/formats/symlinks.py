"""When a file inside a model folder may be a symlink to somewhere outside it.

A model folder is untrusted: a shard, index, config, card or vocabulary that is a symlink to
``/etc/passwd`` or ``~/.ssh/id_rsa`` would make modeltrace read (and digest, or show) a file the
folder's author chose. The Hugging Face cache, though, is made of such links: every file of
``models--ORG--NAME/snapshots/REV/`` links to ``../../blobs/SHA``. The rule
(:func:`symlink_allowed`), one of three policies:

- ``"never"``: a file may be read only if its real path lies inside the model folder. For the
  service, which reads folders that others upload.
- ``"hf-cache"`` (the CLI's default): also when the folder lies in a Hugging Face cache
  snapshot and the link leads into that same repository's ``blobs/`` folder.
- ``"always"``: any link is followed (``--follow-symlinks``).

Paths that stay inside the folder, symlinks or not, are always allowed. :func:`symlink_policy`
sets the policy for everything read in a block; ``open_model`` and ``digest`` check each file
they read against it before opening.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Literal, get_args

from modeltrace.errors import CorruptFileError, UnsupportedFormatError

SymlinkPolicy = Literal["never", "hf-cache", "always"]
SYMLINK_POLICIES: tuple[str, ...] = get_args(SymlinkPolicy)
_POLICY: ContextVar[SymlinkPolicy] = ContextVar("modeltrace_symlink_policy", default="hf-cache")
#: Repository kinds of the Hugging Face hub cache (``models--ORG--NAME``, ``datasets--...``).
_HF_REPO_PREFIXES = ("models--", "datasets--", "spaces--")


def current_policy() -> SymlinkPolicy:
    return _POLICY.get()


@contextlib.contextmanager
def symlink_policy(policy: SymlinkPolicy) -> Iterator[None]:
    """Read model folders under ``policy`` inside the ``with`` block."""
    if policy not in SYMLINK_POLICIES:
        raise ValueError(f"unknown symlink policy {policy!r}; choose one of {', '.join(SYMLINK_POLICIES)}")
    token = _POLICY.set(policy)
    try:
        yield
    finally:
        _POLICY.reset(token)


def hf_cache_repository(folder: Path) -> Path | None:
    """``.../models--ORG--NAME`` when ``folder`` is (inside) one of its ``snapshots/REV`` folders."""
    parts = folder.parts
    for index in range(len(parts) - 2, 0, -1):
        if parts[index] == "snapshots" and parts[index - 1].startswith(_HF_REPO_PREFIXES):
            return Path(*parts[:index])
    return None


def symlink_allowed(path: Path, folder: Path, policy: SymlinkPolicy) -> bool:
    """Whether ``path`` (a file named inside model ``folder``) may be read under ``policy``."""
    try:
        real = path.resolve(strict=True)
        root = folder.resolve(strict=True)
    except (OSError, RuntimeError):  # missing, or a symlink loop: the reader says what is wrong
        return True
    if real.is_relative_to(root) or policy == "always":
        return True
    if policy == "hf-cache":
        repository = hf_cache_repository(root)
        if repository is not None and real.is_relative_to(repository / "blobs"):
            return True
    return False


def check_symlink(path: Path, folder: Path, policy: SymlinkPolicy | None = None) -> None:
    """Raise UnsupportedFormatError unless :func:`symlink_allowed` lets ``path`` be read."""
    chosen = policy or current_policy()
    if symlink_allowed(path, folder, chosen):
        return
    try:
        target = str(path.resolve())
    except (OSError, RuntimeError) as error:
        raise CorruptFileError(path, f"cannot resolve symlink ({error})") from error
    hint = (
        "only links into the enclosing Hugging Face cache's blobs/ are followed; pass "
        "--follow-symlinks to follow it"
        if chosen == "hf-cache"
        else "symlinks leaving the model folder are not followed"
    )
    raise UnsupportedFormatError(path, f"is a symlink to '{target[:200]}', outside the model folder: {hint}")
