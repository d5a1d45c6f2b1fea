"""Byte-counting progress on stderr for the commands that hash a whole model (digest, label)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from modeltrace.cli._app import err_console


def byte_progress(total_bytes: int, description: str) -> Progress:
    """A byte-counting progress bar on stderr (hidden when stderr is not a terminal)."""
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )
    progress.add_task(description, total=total_bytes)
    return progress


def folder_bytes(path: Path) -> int:
    """Bytes under ``path`` for the progress bar (a walk with a stack: folders may nest 1,000 deep)."""
    if not path.is_dir():
        return path.stat().st_size if path.is_file() else 0
    total, pending = 0, [path]
    while pending:
        with contextlib.suppress(OSError), os.scandir(pending.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(Path(entry.path))
                elif entry.is_file():
                    total += entry.stat().st_size
    return total
