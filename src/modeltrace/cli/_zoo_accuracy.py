"""The zoo's accuracy run and table: ``modeltrace zoo accuracy`` and ``modeltrace demo`` print them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from modeltrace import api
from modeltrace.cli._app import console, err_console


def run_accuracy(manifest_path: Path, alpha: float, show_progress: bool = True) -> dict[str, Any]:
    """Compare every pair of a zoo with a progress bar on stderr; returns ``api.zoo_accuracy``'s summary."""
    with Progress(
        TextColumn("[bold]compare[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not show_progress,
    ) as bar:
        task = bar.add_task("pairs", total=None)

        def on_pair(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return api.zoo_accuracy(manifest_path, alpha=alpha, progress=on_pair)


def print_accuracy(summary: dict[str, Any], alpha: float) -> None:
    """The per-transform table: detection at alpha, false positives, median log10 p, layer maps."""
    table = Table(title=f"Lineage accuracy at alpha = {alpha}")
    # The transform names are the point of the table: never wrapped or cut (cli/_console.py).
    table.add_column("transform", no_wrap=True)
    for column in ("pairs", "found", "false +", "med. log10 p", "map", "KB read"):
        table.add_column(column, justify="right", no_wrap=True)
    for relation, row in summary["table"].items():
        detected = f"{row['detected']}/{row['positives']}" if row["positives"] else "-"
        false_positives = f"{row['false_positives']}/{row['negatives']}" if row["negatives"] else "-"
        median = "n/a" if row["median_log10_p"] is None else f"{row['median_log10_p']:.1f}"
        table.add_row(
            relation,
            str(row["pairs"]),
            detected,
            false_positives,
            median,
            row["layer_map_ok"],
            f"{row['median_bytes_read'] / 1000:,.0f}",
        )
    console.print(table)
    for row in summary["missed"] + summary["false_positives"] + summary["wrong_maps"]:
        console.print(
            f"[red]![/] {row['relation']}: {row['suspect']} vs {row['base']} -> {row['verdict']} "
            f"(log10 p {row['log10_p']})"
        )
    independent = sum(row["negatives"] for row in summary["table"].values())
    expected = summary["expected_false_positives"]
    console.print(
        f"{independent} independent pairs: with exact p-values up to {expected:.2f}"
        f" false positives are expected by chance at alpha = {alpha:g} (docs/lineage.md, Calibration)."
    )
    verdict = "[green]PASS[/]" if summary["ok"] else "[red]FAIL[/]"
    console.print(f"{verdict}: every related pair detected, no false positive, right layer maps")
