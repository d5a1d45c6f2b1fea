"""``modeltrace tokenizers list|add|remove``: the reference-tokenizer library used by ``probe``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from modeltrace import api
from modeltrace.cli._app import app, console, emit_json, err_console

tokenizers_app = typer.Typer(
    help="Manage the reference tokenizers that 'probe' compares against.", no_args_is_help=True
)
app.add_typer(tokenizers_app, name="tokenizers")


@tokenizers_app.command("list")
def list_tokenizers(as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """List built-in and added tokenizers."""
    rows = api.tokenizer_library()
    if as_json:
        emit_json(rows)
        return
    table = Table(title="Reference tokenizers")
    for column in ("name", "origin", "format", "covers"):
        table.add_column(column, no_wrap=column != "covers")  # names stay whole (cli/_console.py)
    for row in rows:
        table.add_row(str(row["name"]), str(row["origin"]), str(row["format"]), str(row["covers"]))
    console.print(table)


@tokenizers_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Family name reported by probe, e.g. gpt2")],
    path: Annotated[
        str,
        typer.Argument(
            help="tokenizer.json, tekken.json, .model, *.tiktoken, vocab.json, a GGUF model file, "
            "a Hugging Face folder, or hf://ORG/REPO[@REV] (downloads only the tokenizer files)"
        ),
    ],
    pattern: Annotated[
        str | None,
        typer.Option(
            "--pattern",
            help="tiktoken files only: gpt2, cl100k, o200k, qwen, qwen3.5, llama3, kimi or a regex",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Add a tokenizer to the library (the probe set is re-optimised on next use)."""
    if path.startswith("hf://"):
        with err_console.status(f"Downloading the tokenizer files of {path}...", spinner="dots"):
            spec = api.add_tokenizer(name, path, pattern=pattern)
    else:
        spec = api.add_tokenizer(name, path, pattern=pattern)
    if as_json:
        emit_json(spec)
        return
    console.print(f"Added tokenizer '{spec['name']}' ({spec['format']}, {spec['covers']}).")


@tokenizers_app.command("remove")
def remove(name: Annotated[str, typer.Argument(help="Name of an added tokenizer")]) -> None:
    """Remove an added tokenizer."""
    api.remove_tokenizer(name)
    console.print(f"Removed tokenizer '{name}'.")
