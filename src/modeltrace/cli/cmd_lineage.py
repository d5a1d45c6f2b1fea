"""``modeltrace lineage NAME``: a registered model's ancestry, declared and detected, and conflicts."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.text import Text
from rich.tree import Tree

from modeltrace import api
from modeltrace.cli._app import DbOption, JsonOption, app, console, emit_json, p_text
from modeltrace.cli._disagreements import print_disagreements


@app.command()
def lineage(
    name: Annotated[str, typer.Argument(help="Model id, NAME or NAMESPACE/NAME in the registry.")],
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Print the ancestry tree: declared edges (label, card, GGUF metadata), detected edges (the
    weights) and the conflicts between them."""
    result = api.registry_lineage(name, db=db)
    if json_output:
        emit_json(result)
        return
    tree = Tree(Text(result["model"]))
    _grow(tree, result["tree"])
    console.print(tree)
    print_disagreements(result["conflicts"], heading="conflicts",
                        none_found="no conflicts between declared and detected lineage")  # fmt: skip


def _grow(branch: Tree, node: dict[str, Any]) -> None:
    for entry in node["bases"]:
        child = entry["node"]
        if entry["kind"] == "detected":
            text = (f"{child['model']}  [detected {entry['verdict']}, p = {p_text(entry['log10_p'])}, "
                    f"{entry.get('test') or 'n/a'}; {entry.get('relation') or ''}]")  # fmt: skip
        else:
            where = "" if child.get("registered", True) else ", not registered"
            text = f"{child['model']}  [declared {entry.get('relation') or ''}{where}]"
        if child.get("cycle"):
            text += " (cycle)"
        _grow(branch.add(Text(text)), child)
