"""``modeltrace demo``: build the demo zoo under MODELTRACE_HOME and run the main job on it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modeltrace import api
from modeltrace.cli._app import app, console
from modeltrace.cli.cmd_inspect import print_card


@app.command()
def demo(
    home: Annotated[
        Path | None, typer.Option(help="State folder (default: $MODELTRACE_HOME or ~/.modeltrace).")
    ] = None,
) -> None:
    """Generate a small zoo of models locally (no download) and show what modeltrace finds."""
    zoo = api.build_demo_zoo(home)
    console.print(f"[bold]Demo zoo[/] in {zoo}")
    for model_path in api.demo_zoo_members(zoo):
        console.rule(model_path.name)
        print_card(api.inspect(model_path))
