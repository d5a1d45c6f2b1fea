"""``modeltrace graph``: the lineage edges detected between registered models, against the declarations."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from modeltrace import api
from modeltrace.cli._app import DbOption, JsonOption, app, console, emit_json, p_text
from modeltrace.cli._disagreements import print_disagreements


@app.command()
def graph(
    undeclared: Annotated[
        bool,
        typer.Option(
            "--undeclared",
            help="Only what contradicts or is missing from the declarations: detected bases nobody "
            "declared, declared bases the weights do not show.",
        ),
    ] = False,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """List the lineage edges detected between registered models (found when each model was added
    or scanned) and where they disagree with what the models declare."""
    result = api.registry_graph(undeclared=undeclared, db=db)
    if json_output:
        emit_json(result)
        return
    title = "undeclared detected edges" if undeclared else "detected edges"
    table = Table("suspect", "base", "verdict", "p", "declared", "direction",
                  title=f"{len(result['edges'])} {title} among {result['models']} models")  # fmt: skip
    for column in table.columns[:2]:
        column.no_wrap = True
    for edge in result["edges"]:
        table.add_row(edge["suspect"], edge["base"], edge["verdict"], p_text(edge["log10_p"]),
                      "yes" if edge["declared"] else "no", edge.get("direction") or "")  # fmt: skip
    console.print(table)
    print_disagreements(result["disagreements"], heading="disagreements with the declarations",
                        none_found="no disagreements between declared and detected lineage")  # fmt: skip
