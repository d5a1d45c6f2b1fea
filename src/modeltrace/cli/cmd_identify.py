"""``modeltrace identify SUSPECT [--against DIR_OR_FILES]``: candidates from a folder or the registry."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Column, Table

from modeltrace import api
from modeltrace.cli._app import app, console, emit_json, p_text


def _short(candidate: str, against: list[Path]) -> str:
    """A candidate as the user would name it: relative to the --against folder it was found in."""
    path = Path(candidate)
    for folder in against:
        if folder.is_dir() and path.is_relative_to(folder):
            return str(path.relative_to(folder))
    return candidate


@app.command()
def identify(
    suspect: Annotated[Path, typer.Argument(help="Suspect model or fingerprint file.")],
    against: Annotated[
        list[Path] | None,
        typer.Option("--against", help="Folder of candidates, or candidate paths (default: the registry)."),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the ranking as JSON.")] = False,
    alpha: Annotated[float, typer.Option(help="Family-wise significance level (Holm).")] = api.DEFAULT_ALPHA,
    db: Annotated[
        str | None, typer.Option("--db", help="Registry database when --against is not given.")
    ] = None,
    shortlist: Annotated[
        int | None,
        typer.Option(
            "--shortlist",
            min=0,
            help="Registry only: compare in full the N registered models nearest by sketch "
            "(default 32; 0 compares every one). Holm still corrects over all of them.",
        ),
    ] = None,
    index: Annotated[
        str, typer.Option("--index", help="Registry only: candidate index, auto, exact, usearch or pgvector.")
    ] = "auto",
) -> None:
    """Rank candidate bases for SUSPECT, best first, Holm-corrected across candidates.

    Without --against the candidates are the fingerprinted models of the registry."""
    if not against:
        result = api.registry_identify(suspect, db=db, alpha=alpha, shortlist=shortlist, index=index)
        against = []
    else:
        target: Path | list[str | Path] = against[0] if len(against) == 1 else list(against)
        result = api.identify(suspect, target, alpha=alpha)
    if json_output:
        emit_json(result)
        return
    names = Column("candidate", no_wrap=True)  # names stay whole (cli/_console.py)
    table = Table(names, "verdict", "p (Holm)", "relation", title=f"Candidate bases for {suspect}")
    for row in result["candidates"]:
        adjusted = p_text(row["log10_p_adjusted"])  # "n/a" when the candidate was not tested
        table.add_row(_short(row["candidate"], against), row["verdict"], adjusted, row["relation"] or "")
    console.print(table)
    for item in result.get("skipped", []):
        console.print(f"skipped {_short(item['path'], against)}: {item['reason']}")
    found = result.get("shortlist")
    if found and found["index"] != "none":
        console.print(
            f"shortlist: {found['size']} of {found['searched']} registered models by sketch "
            f"({found['index']} index, {found['seconds'] * 1000:.1f} ms); "
            f"Holm over all {result['family_size']}"
        )
    closest = result["closest_ancestor"]
    console.print(f"closest ancestor: {_short(closest, against) if closest else 'none'}")
