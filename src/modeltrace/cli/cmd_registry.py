"""``modeltrace registry add|ls|show|rm``: the lineage registry from the command line."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from modeltrace import api
from modeltrace.cli._app import (
    DbOption,
    JsonOption,
    app,
    console,
    emit_json,
    err_console,
    human_count,
    p_text,
)

registry_app = typer.Typer(
    help="Keep models, fingerprints, labels and their lineage in a database (docs/registry.md).",
    no_args_is_help=True,
)
app.add_typer(registry_app, name="registry")


def edge_line(edge: dict[str, Any]) -> str:
    """``child -> base  related p = 1e-40 (fixed-points), fine-tuned ...`` for one detected edge."""
    return (
        f"{edge['suspect']} -> {edge['base']}  {edge['verdict']} p = {p_text(edge['log10_p'])}"
        f" ({edge.get('test') or 'n/a'}); {edge.get('relation') or ''}"
    )


@registry_app.command("add")
def add(
    source: Annotated[Path, typer.Argument(help="A model (folder or file), a fingerprint file or a label.")],
    name: Annotated[
        str | None, typer.Option("--name", help="Name in the registry (default: the model's).")
    ] = None,
    namespace: Annotated[
        str, typer.Option("--namespace", help="Namespace (team or organisation).")
    ] = "default",
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Register a model and record what the lineage engine finds against the registered ones."""
    busy = err_console.status("fingerprinting and comparing ...")
    with busy if not json_output else contextlib.nullcontext():
        result = api.registry_add(source, name=name, namespace=namespace, db=db)
    if json_output:
        emit_json(result)
        return
    model = result["model"]
    state = "registered" if result["created"] else "already registered"
    console.print(f"{state}: [bold]{model['namespace']}/{model['name']}[/] (id {model['id']})", markup=True)
    if not model["fingerprint"]:
        console.print("no fingerprint (label or card only): no lineage detection for this model")
    for edge in result["detected"]:
        console.print("detected: " + edge_line(edge), markup=False)


@registry_app.command("ls")
def ls(
    query: Annotated[
        str | None, typer.Option("--search", "-s", help="Substring of name or namespace.")
    ] = None,
    namespace: Annotated[str | None, typer.Option("--namespace", help="Only this namespace.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many models.")] = 100,
    offset: Annotated[int, typer.Option(help="Skip this many models.")] = 0,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """List registered models (JSON: an object with key ``models``)."""
    page = api.registry_list(query=query, namespace=namespace, limit=limit, offset=offset, db=db)
    if json_output:
        emit_json(page)
        return
    table = Table(
        "id", "namespace", "name", "label", "fingerprint", "licence", title=f"{page['total']} models"
    )
    for model in page["models"]:
        label = model["label"]["level"] if model["label"] else "-"
        table.add_row(str(model["id"]), model["namespace"], model["name"], label,
                      "yes" if model["fingerprint"] else "no", model["license"] or "")  # fmt: skip
    console.print(table)


@registry_app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Model id, NAME or NAMESPACE/NAME.")],
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """One registered model: digests, card, label level, declared and detected edges."""
    model = api.registry_show(name, db=db)
    if json_output:
        emit_json(model)
        return
    card = model.get("card") or {}
    rows = [
        ("Name", f"{model['namespace']}/{model['name']} (id {model['id']})"),
        ("Source", model["source"]),
        ("OMS root", model["oms_root"] or "-"),
        ("Tensor root", model["tensor_root"] or "-"),
        ("Fingerprint", model["fingerprint"] or "-"),
        ("Architecture", str(card.get("architecture") or card.get("format") or "-")),
        ("Parameters", human_count(card["total_params"]) if card.get("total_params") else "-"),
        ("Licence", model["license"] or "-"),
        ("Label", _label_text(model["label"])),
    ]
    for key, value in rows:
        console.print(f"{key:<14} {value}", markup=False)
    for edge in model["declared"]:
        relation = edge["relation"] or "relation not given"
        console.print(f"declared base  {edge['base']} ({relation}; {edge['origin']})", markup=False)
    for edge in model["detected"]:
        console.print("detected       " + edge_line(edge), markup=False)


def _label_text(label: dict[str, Any] | None) -> str:
    if not label:
        return "none"
    missing = "; ".join(label["missing_for_next"]) or "nothing"
    return f"{label['level']}{' (signed)' if label['signed'] else ''}; missing for the next level: {missing}"


@registry_app.command("rm")
def rm(
    name: Annotated[str, typer.Argument(help="Model id, NAME or NAMESPACE/NAME.")],
    db: DbOption = None,
) -> None:
    """Remove a model with its labels and edges."""
    removed = api.registry_remove(name, db=db)
    console.print(f"removed {removed['namespace']}/{removed['name']} (id {removed['id']})", markup=False)
