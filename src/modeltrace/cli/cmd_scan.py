"""``modeltrace scan SOURCE...``: fingerprint many models in parallel into the registry."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated, Any

import typer

from modeltrace import api
from modeltrace.cli._app import DbOption, JsonOption, app, console, emit_json, err_console, human_bytes


@app.command()
def scan(
    sources: Annotated[
        list[str],
        typer.Argument(
            help="Model folders or files, folders of models, globs ('hub/*'), https:// URLs, "
            "hf://ORG/REPO[@REVISION], or @FILE (also FILE.txt) listing sources one per line."
        ),
    ],
    executor: Annotated[
        str, typer.Option("--executor", help="local: a process pool on this machine; ray: Ray tasks.")
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            help="A Ray cluster to run on (e.g. ray://HEAD:10001); default: a local Ray instance.",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", help="Parallel workers (default: one per CPU; Ray: the local instance's)."),
    ] = None,
    namespace: Annotated[
        str | None,
        typer.Option(
            "--namespace", help="Registry namespace (default: the ORG of hf:// sources, else 'default')."
        ),
    ] = None,
    retries: Annotated[
        int, typer.Option("--retries", help="Tries again after a transient (network) failure, per source.")
    ] = 2,
    fingerprints_from: Annotated[
        str,
        typer.Option(
            "--fingerprints-from",
            help="Where workers read the fingerprints they compare: registry (read-only), shared (sent "
            "by this process; Ray: its object store), auto (registry, but shared on a Ray cluster).",
        ),
    ] = "auto",
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Fingerprint many models in parallel and store them in the registry with their detected lineage.

    Sources already registered (same path and no file changed, same hf:// commit, same URL, or same
    content digest) are skipped, so an interrupted scan resumes where it stopped. Exit code: 0 when
    every source was registered or skipped; otherwise 3 (unreadable input), 4 (an endpoint stayed
    unreachable: rerun later) or 1 (a bug, traceback printed).
    """
    show_bar = not json_output and err_console.is_terminal
    with _progress_bar(show_bar) as update:
        result = api.scan(
            sources,
            executor=executor,
            workers=workers,
            ray_address=ray_address,
            namespace=namespace,
            retries=retries,
            fingerprints_from=fingerprints_from,
            db=db,
            progress=update,
        )
    if json_output:
        emit_json(result)
    else:
        _print_summary(result)
    raise typer.Exit(result["exit_code"])


@contextlib.contextmanager
def _progress_bar(show: bool) -> Iterator[Any]:
    if not show:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("scanning"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}  {task.fields[read]}  {task.fields[failed]}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task("scan", total=None, rate="", read="", failed="")

        def update(state: dict[str, Any]) -> None:
            elapsed = max(state["elapsed"], 1e-9)
            bar.update(
                task,
                total=state["total"],
                completed=state["done"],
                rate=f"{state['read'] / elapsed:.2f} models/s",
                read=f"{human_bytes(state['bytes'])} read",
                failed=f"{state['failed']} failed" if state["failed"] else "",
            )

        yield update


def _print_summary(result: dict[str, Any]) -> None:
    totals = result["totals"]
    resolves = totals.get("resolver_requests") or 0
    console.print(
        f"{totals['sources']} sources: {totals['registered']} registered, {totals['skipped']} skipped, "
        f"{totals['failed']} failed in {totals['seconds']:.1f} s ({totals['models_per_s'] or 0:.2f} models/s "
        f"on {totals['workers']} {totals['executor']} workers); read {human_bytes(totals['bytes'])}"
        + (f" in {totals['requests']:,} requests" if totals["requests"] else "")
        + (f" ({resolves:,} to the Hub's resolver)" if resolves else ""),
        markup=False,
    )
    detected = sum(row["detected"] for row in result["results"])
    if detected:
        edges = "1 lineage edge" if detected == 1 else f"{detected} lineage edges"
        console.print(f"{edges} detected: see `modeltrace graph`", markup=False)
    failed = [row for row in result["results"] if row["status"] == "failed"]
    if failed:
        err_console.print(f"[bold red]{len(failed)} failed:[/]", markup=True, highlight=False)
        for row in failed:
            err_console.print(f"  {row['source']}: {row['reason']}", markup=False, highlight=False)
            if row.get("traceback"):
                err_console.print(row["traceback"], markup=False, highlight=False)
