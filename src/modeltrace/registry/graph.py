"""The lineage graph in memory: a model's ancestry, its declared and detected edges, and conflicts.

Declared edges name a base as written (``meta-llama/Llama-3-8B``, ``../base``); they are matched to
registered models by name (same namespace first), ``namespace/name`` or the last path part.
Detected edges always join two registered models. Every derivative of one base is related to every
other, so the tree follows each model's *closest* detected base (highest similarity, marked when it
was detected); all detected edges count as support for a declared base. A conflict is where
declared and detected lineage disagree:

* ``declared-from-scratch``: "declared from scratch, detected derived from X";
* ``declared-base-mismatch``: "declared base A, detected B" (no declared base was detected);
* ``undeclared-base``: "undeclared base X": nothing declared, a base detected.
"""

from __future__ import annotations

from collections import deque
from pathlib import PurePosixPath
from typing import Any

DERIVED = ("related", "same-weights")
MAX_TREE_DEPTH = 32


class LineageGraph:
    def __init__(
        self,
        models: dict[int, dict[str, Any]],
        declared: list[dict[str, Any]],
        detected: list[dict[str, Any]],
    ) -> None:
        self.models = models
        self.declared = declared
        self.detected = [edge for edge in detected if edge["verdict"] in DERIVED]
        for edge in self.declared:
            edge["base_id"] = self.resolve(edge["base"], models[edge["model_id"]]["namespace"])

    def resolve(self, name: str, namespace: str) -> int | None:
        """The registered model a declared base name refers to, or None."""
        text = name.strip().rstrip("/")
        by_name = [(i, m) for i, m in self.models.items() if m["name"] == text]
        if "/" in text:
            space, _, short = text.partition("/")
            scoped = [i for i, m in self.models.items() if m["namespace"] == space and m["name"] == short]
            if scoped:
                return scoped[0]
        same_space = [i for i, m in by_name if m["namespace"] == namespace]
        if same_space:
            return same_space[0]
        if len(by_name) == 1:
            return by_name[0][0]
        tail = PurePosixPath(text.replace("\\", "/")).name
        if tail and tail != text:
            return self.resolve(tail, namespace)
        return None

    def parents(self, model_id: int) -> list[tuple[str, int | None, dict[str, Any]]]:
        """(kind, base id or None, edge) for every declared and detected base of a model."""
        found: list[tuple[str, int | None, dict[str, Any]]] = [
            ("declared", edge["base_id"], edge) for edge in self.declared if edge["model_id"] == model_id
        ]
        found += [
            ("detected", edge["base_id"], edge)
            for edge in self.detected
            if edge["suspect_id"] == model_id and edge.get("closest", True)
        ]
        return found

    def ancestry(self, model_id: int) -> list[int]:
        """The model and every registered ancestor, breadth first."""
        seen, queue = [model_id], deque([model_id])
        while queue:
            for _kind, base_id, _edge in self.parents(queue.popleft()):
                if base_id is not None and base_id not in seen:
                    seen.append(base_id)
                    queue.append(base_id)
        return seen

    def conflicts(self, model_id: int) -> list[dict[str, Any]]:
        model = self.models[model_id]
        declared = [e for e in self.declared if e["model_id"] == model_id]
        detected = [e for e in self.detected if e["suspect_id"] == model_id]
        closest = [e for e in detected if e.get("closest", True)] or detected
        declared_ids = {e["base_id"] for e in declared if e["base_id"] is not None}
        if not detected:
            return []
        if model["from_scratch"]:
            kind, prefix = "declared-from-scratch", "declared from scratch, detected derived from "
        elif not declared:
            kind, prefix = "undeclared-base", "undeclared base "
        elif not declared_ids & {e["base_id"] for e in detected}:
            names = ", ".join(e["base"] for e in declared)
            kind, prefix = "declared-base-mismatch", f"declared base {names}, detected "
        else:
            return []  # a declared base is confirmed by the weights
        return [
            {"model": model["name"], "model_id": model_id, "kind": kind, "base": edge["base"],
             "base_id": edge["base_id"], "message": prefix + edge["base"]}
            for edge in closest
        ]  # fmt: skip

    def lineage(self, model_id: int) -> dict[str, Any]:
        """What ``modeltrace lineage NAME --json`` prints (keys: model, declared, detected,
        conflicts, tree, descendants, nodes)."""
        members = self.ancestry(model_id)
        names = {i: self.models[i]["name"] for i in self.models}
        declared = [
            {"model": names[e["model_id"]], "model_id": e["model_id"], "base": e["base"],
             "base_id": e["base_id"],
             "registered": e["base_id"] is not None, "relation": e["relation"], "origin": e["origin"]}
            for e in self.declared if e["model_id"] in members
        ]  # fmt: skip
        detected = [dict(e) for e in self.detected if e["suspect_id"] in members]
        conflicts = [c for member in members for c in self.conflicts(member)]
        descendants = [
            {"model": names[e["model_id"]], "model_id": e["model_id"], "kind": "declared"}
            for e in self.declared if e["base_id"] == model_id
        ] + [
            {"model": e["suspect"], "model_id": e["suspect_id"], "kind": "detected",
             "direction": e.get("direction")}
            for e in self.detected if e["base_id"] == model_id and e.get("closest", True)
        ]  # fmt: skip
        return {
            "model": names[model_id],
            "model_id": model_id,
            "declared": declared,
            "detected": detected,
            "conflicts": conflicts,
            "tree": self._tree(model_id, (), 0, set()),
            "descendants": descendants,
            "nodes": [{"id": i, "name": names[i], "namespace": self.models[i]["namespace"]} for i in members],
        }

    def _tree(self, model_id: int, path: tuple[int, ...], depth: int, expanded: set[int]) -> dict[str, Any]:
        """The ancestry as a tree; a model reached twice is expanded once (``shown_above`` after)."""
        node: dict[str, Any] = {"model": self.models[model_id]["name"], "model_id": model_id, "bases": []}
        if depth >= MAX_TREE_DEPTH:
            return node
        if model_id in expanded:
            node["shown_above"] = True
            return node
        expanded.add(model_id)
        unregistered_seen: set[str] = set()
        for kind, base_id, edge in self.parents(model_id):
            entry: dict[str, Any] = {"kind": kind, "relation": edge.get("relation")}
            if kind == "detected":
                entry.update(verdict=edge["verdict"], p_value=edge["p_value"], log10_p=edge["log10_p"],
                             test=edge["test"], edge_id=edge["id"])  # fmt: skip
            if base_id is None:
                if edge["base"] in unregistered_seen:
                    continue
                unregistered_seen.add(edge["base"])
                entry["node"] = {"model": edge["base"], "model_id": None, "registered": False, "bases": []}
            elif base_id in path or base_id == model_id:
                entry["node"] = {"model": self.models[base_id]["name"], "model_id": base_id, "cycle": True,
                                 "bases": []}  # fmt: skip
            else:
                entry["node"] = self._tree(base_id, (*path, model_id), depth + 1, expanded)
            node["bases"].append(entry)
        return node
