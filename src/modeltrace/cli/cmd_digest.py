"""``modeltrace digest PATH``: the model's OMS file root and tensor root."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from modeltrace import api
from modeltrace.cli._app import (
    FollowSymlinks,
    app,
    console,
    emit_json,
    human_bytes,
    print_warnings,
    symlinks,
)
from modeltrace.cli._progress import byte_progress, folder_bytes


@app.command()
def digest(
    path: Annotated[Path, typer.Argument(help="Model folder or weight file.")],
    json_output: Annotated[
        bool, typer.Option("--json", help="Print JSON (keys oms_root, tensor_root).")
    ] = False,
    files: Annotated[bool, typer.Option("--files", help="Also list every file and tensor digest.")] = False,
    no_tensors: Annotated[
        bool, typer.Option("--no-tensors", help="Only the file-level (OMS) digest.")
    ] = False,
    workers: Annotated[int | None, typer.Option(help="Hashing threads (default: CPU count).")] = None,
    ignore: Annotated[
        list[str] | None, typer.Option(help="Extra path to leave out, relative to the folder (repeatable).")
    ] = None,
    follow_symlinks: FollowSymlinks = False,
) -> None:
    """Content digests: the OpenSSF model-signing root (files) and the tensor root (weights)."""
    # Both passes read every byte once: the bar counts file bytes, then tensor bytes.
    total = folder_bytes(path.expanduser()) * (1 if no_tensors else 2)
    started = time.perf_counter()
    with symlinks(follow_symlinks), byte_progress(total, "hashing") as progress:
        task = progress.task_ids[0]
        result = api.digest(
            path,
            tensors=not no_tensors,
            workers=workers,
            ignore=ignore or (),
            progress=lambda _phase, _name, size: progress.advance(task, size),
        )
    elapsed = time.perf_counter() - started
    summary = result.as_dict(details=files)
    print_warnings(summary)
    if json_output:
        emit_json({**summary, "seconds": round(elapsed, 3)})
        return
    console.print(f"[bold]oms_root[/]    {result.oms_root}")
    console.print(f"[bold]tensor_root[/] {result.tensor_root or '-'}")
    console.print(
        f"{len(result.files.files)} files, {human_bytes(result.files.total_bytes)}"
        + (f", {len(result.tensors.tensors)} tensors" if result.tensors else "")
        + f" in {elapsed:.2f} s"
    )
    if files:
        for name, value in sorted(result.files.files.items()):
            console.print(f"{value}  {name}")
        if result.tensors:
            for name, value in sorted(result.tensors.tensors.items()):
                console.print(f"{value}  tensor:{name}")
