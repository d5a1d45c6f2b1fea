"""``modeltrace fingerprint MODEL -o FILE``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress

from modeltrace import api
from modeltrace.cli._app import FollowSymlinks, app, console, emit_json, err_console, human_bytes, symlinks


@app.command()
def fingerprint(
    model: Annotated[
        str,
        typer.Argument(
            help="Model folder or weight file (safetensors, GGUF, ONNX, PyTorch), or a URL: "
            "https://... or hf://ORG/REPO[@REVISION] (read by byte ranges, never downloaded whole)."
        ),
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="Fingerprint file to write.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    follow_symlinks: FollowSymlinks = False,
) -> None:
    """Write a compact fingerprint (a few MB) that `compare` and `identify` accept in place of the model."""
    with symlinks(follow_symlinks), Progress(console=err_console, transient=True) as bar:
        task = bar.add_task("fingerprinting", total=None)
        summary = api.fingerprint(
            model, output, progress=lambda done, total: bar.update(task, completed=done, total=total)
        )
    if json_output:
        emit_json(summary)
        return
    fraction = summary["fraction_read"]
    console.print(
        f"Wrote {summary['output']} ({human_bytes(summary['file_bytes'])}): "
        f"{summary['mlp_blocks']} MLP blocks, {summary['attention_layers']} attention layers, "
        f"{summary['anchors']} anchor tokens; read {human_bytes(summary['bytes_read'])} of "
        f"{human_bytes(summary['total_bytes'])}" + (f" ({fraction:.1%})" if fraction is not None else "")
    )
    if "transfer" in summary:
        transfer = summary["transfer"]
        console.print(
            f"transferred {human_bytes(transfer['bytes_transferred'])} in {transfer['requests']} requests"
            + (f" ({transfer['retries']} retried)" if transfer["retries"] else "")
            + (
                f"; {transfer['resolver_requests']} to the Hub's resolver, commit {transfer['commit'][:12]}"
                if transfer.get("commit")
                else ""
            )
        )
