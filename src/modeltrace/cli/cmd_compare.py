"""``modeltrace compare SUSPECT BASE``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modeltrace import api
from modeltrace.cli._app import FollowSymlinks, app, console, emit_json, human_bytes, p_text, symlinks


@app.command()
def compare(
    suspect: Annotated[
        str, typer.Argument(help="Suspect model, fingerprint file, or URL (https://, hf://).")
    ],
    base: Annotated[str, typer.Argument(help="Candidate base model, fingerprint file, or URL.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print the full result as JSON.")] = False,
    report: Annotated[
        Path | None, typer.Option("--report", help="Write an HTML report to this file.")
    ] = None,
    alpha: Annotated[float, typer.Option(help="Significance level of the verdict.")] = api.DEFAULT_ALPHA,
    full: bool = typer.Option(
        False, "--full", help="Read every unit (full-weight path) instead of a sample."
    ),
    follow_symlinks: FollowSymlinks = False,
) -> None:
    """Was SUSPECT derived from BASE? Verdict, calibrated p-value, relation and layer map."""
    with symlinks(follow_symlinks):
        result = api.compare(suspect, base, alpha=alpha, report=report, full=full)
    if json_output:
        emit_json(result.as_dict())
        return
    how = ", ".join(part for part in (result.p_value_kind, result.p_value_test) if part)
    console.print(f"[bold]{result.verdict}[/]  p = {p_text(result.log10_p)} ({how})")
    if result.reason:
        console.print(result.reason)
    if result.relation:
        console.print(f"relation: {', '.join(result.relations)}; {result.direction}")
    if result.layer_map:
        console.print(
            "layer map (suspect -> base): " + ", ".join(f"{s}->{b}" for s, b in result.layer_map.items())
        )
    console.print(f"bytes read: {human_bytes(result.bytes_read)}")
    if report is not None:
        console.print(f"report: {report}")
