"""The detected-lineage graph of the whole registry, set against what the models declare.

Edges are the derivations the lineage engine detected when each model arrived (``registry add``,
``scan``): detection runs once per newcomer against the registered models, so after a scan the
graph is read here, not recomputed. Each edge says whether the derivation is declared (by either
model). Disagreements are the places where declarations and weights part:

* the conflicts of :meth:`LineageGraph.conflicts` (``undeclared-base``, ``declared-base-mismatch``,
  ``declared-from-scratch``) over each model's closest detected base;
* ``declared-base-not-detected``: a model declares a registered, fingerprinted base, but no
  derivation was detected between the two (the weights do not support the claim at the alpha
  used); reported only where the model has no ``declared-base-mismatch`` saying as much.
"""

from __future__ import annotations

from typing import Any

from modeltrace.registry.graph import LineageGraph


def hub_graph(graph: LineageGraph, *, undeclared: bool = False) -> dict[str, Any]:
    """``{"models", "fingerprinted", "edges", "disagreements", "undeclared_only"}``; with
    ``undeclared``, only the closest edges that no declaration covers."""
    declared_pairs = {
        frozenset((edge["model_id"], edge["base_id"]))
        for edge in graph.declared
        if edge["base_id"] is not None
    }
    edges = []
    for edge in graph.detected:
        declared = frozenset((edge["suspect_id"], edge["base_id"])) in declared_pairs
        if undeclared and (declared or not edge.get("closest", True)):
            continue
        edges.append({**edge, "declared": declared})
    return {
        "models": len(graph.models),
        "fingerprinted": sum(1 for model in graph.models.values() if model.get("fingerprint")),
        "edges": edges,
        "disagreements": disagreements(graph),
        "undeclared_only": undeclared,
    }


def disagreements(graph: LineageGraph) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    mismatched: set[int] = set()
    for model_id in sorted(graph.models):
        for conflict in graph.conflicts(model_id):
            found.append(conflict)
            if conflict["kind"] == "declared-base-mismatch":
                mismatched.add(model_id)
    detected_pairs = {frozenset((edge["suspect_id"], edge["base_id"])) for edge in graph.detected}
    for edge in graph.declared:
        model_id, base_id = edge["model_id"], edge["base_id"]
        if base_id is None or base_id == model_id or model_id in mismatched:
            continue
        model, base = graph.models[model_id], graph.models[base_id]
        if not (model.get("fingerprint") and base.get("fingerprint")):
            continue  # nothing to test the claim with
        if frozenset((model_id, base_id)) in detected_pairs:
            continue
        found.append(
            {
                "model": model["name"],
                "model_id": model_id,
                "kind": "declared-base-not-detected",
                "base": base["name"],
                "base_id": base_id,
                "message": f"declared base {edge['base']}, not detected in the weights",
            }
        )
    return found
