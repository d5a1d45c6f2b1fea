"""``modeltrace zoo build DIR``: train the lineage zoo (small models + derivatives) on CPU."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from modeltrace import api
from modeltrace.cli._app import app, console, emit_json, err_console
from modeltrace.cli._zoo_accuracy import print_accuracy, run_accuracy

zoo_app = typer.Typer(help="The lineage zoo: small models with known ancestry, for the accuracy benchmark.")
app.add_typer(zoo_app, name="zoo")


@zoo_app.command("build")
def build(
    directory: Annotated[
        Path, typer.Argument(help="Folder to build the zoo in (new, empty, or a previous zoo).")
    ],
    quick: Annotated[
        bool, typer.Option("--quick", help="Fewer bases and training steps; every transform.")
    ] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the corpus and the first base model.")] = 0,
    threads: Annotated[int, typer.Option("--threads", min=1, help="CPU threads torch may use.")] = 2,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary on stdout.")] = False,
) -> None:
    """Train small transformer LMs and derive children by every lineage transform; write zoo.json."""
    with Progress(
        TextColumn("[bold]zoo[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=err_console,
        transient=as_json,
    ) as bar:
        task = bar.add_task("starting", total=None)

        def on_model(name: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=name)

        manifest_path = api.build_zoo(directory, quick=quick, seed=seed, threads=threads, progress=on_model)
    manifest = api.load_zoo_manifest(manifest_path)
    summary = _summary(manifest, manifest_path)
    if as_json:
        emit_json(summary)
        return
    table = Table(title=f"Lineage zoo: {manifest_path}")
    for column in ("model", "transform", "format", "architecture", "parents"):
        table.add_column(column, no_wrap=column != "parents")  # names stay whole (cli/_console.py)
    for model in manifest["models"]:
        parents = ", ".join(model["parents"]) or (
            f"(taught by {model['teacher']})" if model["teacher"] else "-"
        )
        table.add_row(model["name"], model["transform"], model["format"], model["architecture"], parents)
    console.print(table)
    counts = ", ".join(f"{count} {kind}" for kind, count in summary["pairs"].items())
    console.print(
        f"{len(manifest['models'])} models, pairs: {counts}; built in {manifest['build']['seconds']} s"
    )


def _summary(manifest: dict[str, Any], manifest_path: Path) -> dict[str, Any]:
    return {
        "manifest": str(manifest_path),
        "build": manifest["build"],
        "models": [model["name"] for model in manifest["models"]],
        "pairs": dict(Counter(pair["expected"] for pair in manifest["pairs"])),
    }


@zoo_app.command("accuracy")
def accuracy(
    directory: Annotated[Path, typer.Argument(help="A built zoo (the folder holding zoo.json).")],
    alpha: Annotated[float, typer.Option(help="Significance level of each verdict.")] = api.DEFAULT_ALPHA,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Compare every pair of a zoo and print detection and false-positive rates per transform.

    Exits 1 when a related pair is missed, an independent pair is called related, or a layer map
    is wrong.
    """
    manifest_path = directory / "zoo.json" if directory.is_dir() else directory
    summary = run_accuracy(manifest_path, alpha, show_progress=not as_json)
    if as_json:
        emit_json({key: value for key, value in summary.items() if key != "rows"} | {"rows": summary["rows"]})
    else:
        print_accuracy(summary, alpha)
    if not summary["ok"]:
        raise typer.Exit(1)
