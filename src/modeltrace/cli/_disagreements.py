"""Where declared and detected lineage disagree, printed one way by ``graph`` and ``lineage``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from modeltrace.cli._app import console


def print_disagreements(items: Iterable[Mapping[str, Any]], *, heading: str, none_found: str) -> None:
    """A red ``heading`` and one ``  MODEL: MESSAGE`` line per item, or ``none_found`` when there are
    none. Messages are printed verbatim (markup off): model names may hold brackets."""
    listed = list(items)
    if not listed:
        console.print(none_found)
        return
    console.print(f"[bold red]{heading}[/]", markup=True)
    for item in listed:
        console.print(f"  {item['model']}: {item['message']}", markup=False)
