"""A family of synthetic models for the detection tests, and the registry state to compare: the
detected edges of a serial ``registry add`` of each model against those of a parallel scan."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from modeltrace import api
from modeltrace.registry import Registry
from tests.lineage.synthetic import fine_tune, make_params, write_model


def write_family(folder: Path) -> list[Path]:
    """Seven models, in registration order: two bases, their fine-tunes (one a grandchild, whose
    shortlist has a detected base to add), and a stranger; small enough to compare in seconds."""
    rng = np.random.default_rng(7)
    first, second = make_params(1), make_params(2)
    child = fine_tune(first, rng, scale=0.1)
    params = {
        "first": first,
        "second": second,
        "first-child": child,
        "second-child": fine_tune(second, rng, scale=0.1),
        "first-grandchild": fine_tune(child, rng, scale=0.1),
        "stranger": make_params(3),
        "first-child-2": fine_tune(first, rng, scale=0.1),
    }
    paths = [write_model(folder / name, values) for name, values in params.items()]
    # A declaration decides the direction the weights do not: an edge "as declared".
    (folder / "first-child-2" / "README.md").write_text("---\nbase_model: first\n---\n")
    return paths


def register_serially(paths: list[Path], db: str) -> None:
    """The reference: ``registry add`` of each model in turn (detection in this process)."""
    for path in paths:
        api.registry_add(str(path), db=db)


def detections(db: str) -> list[dict[str, Any]]:
    """Every detected edge with the figures that must agree to the bit (ids included: the edges are
    recorded in the same order), its Holm-adjusted p-value from the stored evidence among them."""
    with Registry(db) as store:
        names = {model["id"]: model["name"] for model in store.list(limit=500)["models"]}
        edges = api.registry_graph(registry=store)["edges"]
        found = []
        for edge in edges:
            evidence = store.detected_edge(edge["id"])["evidence"]
            found.append(
                {
                    "id": edge["id"],
                    "suspect": names[edge["suspect_id"]],
                    "base": names[edge["base_id"]],
                    **{
                        key: edge[key]
                        for key in ("verdict", "p_value", "log10_p", "test", "direction", "closest")
                    },
                    "log10_p_adjusted": evidence["log10_p_adjusted"],
                    "similarity": evidence["effect_size"],
                }
            )
    return found
