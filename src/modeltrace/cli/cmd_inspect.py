"""``modeltrace inspect PATH [--json] [--format F]``: the architecture card of a model."""

from __future__ import annotations

from typing import Annotated

import typer

from modeltrace import api
from modeltrace.cli._app import FollowSymlinks, app, console, emit_json, print_warnings, symlinks
from modeltrace.cli._card import print_card


@app.command()
def inspect(
    path: Annotated[
        str,
        typer.Argument(
            help="A model folder, a weight file, a bare config.json, or a URL (https://..., hf://ORG/REPO)."
        ),
    ],
    json_output: Annotated[bool, typer.Option("--json", help="Print the card as JSON.")] = False,
    format: Annotated[
        str | None,
        typer.Option("--format", help="Force a format: safetensors, pytorch, gguf, onnx, hf or config."),
    ] = None,
    follow_symlinks: FollowSymlinks = False,
) -> None:
    """Show the architecture card: format, sizes, experts, total and active parameters, declared lineage."""
    with symlinks(follow_symlinks):
        card = api.inspect(path, format=format)
    print_warnings(card)  # on stderr, so --json output stays clean
    if json_output:
        emit_json(card)
    else:
        console.rule(str(card["name"]))
        print_card(card)
