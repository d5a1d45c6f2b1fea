"""Config fields against the weights: where config.json and the tensors disagree, the weights win.

A config is a claim about the weights; the weights are what the model is. When both are present the
card is counted from the tensors, and every size the config states differently (layers, hidden size,
vocabulary, routed experts per layer) or every tensor the config's layout shapes differently is
reported in the card's notes, e.g. a child with experts pruned whose config still says 384.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from modeltrace.inspect.dimensions import Dimensions
from modeltrace.types import TensorInfo

#: What :func:`modeltrace.inspect.layouts.config_tensor_shapes` returns: ``(shapes, exact)`` or None.
Layout = tuple[dict[str, tuple[int, ...]], bool] | None


def weights_win(dims: Dimensions, from_tensors: Dimensions) -> tuple[Dimensions, list[str]]:
    """Sizes the config states but the weights contradict: the weights' value is kept, and said."""
    notes: list[str] = []
    values: dict[str, Any] = {}
    for name, label in (("layers", "layers"), ("hidden_size", "hidden size"), ("vocab_size", "vocabulary"),
                        ("routed_experts", "routed experts per layer")):  # fmt: skip
        stated, held = getattr(dims, name), getattr(from_tensors, name)
        embedding_axes = (from_tensors.vocab_size, from_tensors.hidden_size)
        if name in ("hidden_size", "vocab_size") and stated in embedding_axes:
            continue  # the embedding's axes are told apart by size only: either order agrees
        if stated is not None and held is not None and stated != held:
            notes.append(
                f"config.json says {label} {stated:,} but the weights hold {held:,}; the weights are used"
            )
            values[name] = held
    return (replace(dims, **values) if values else dims), notes


def shape_disagreements(laid_out: Layout, listed: list[TensorInfo]) -> list[str]:
    """Tensors the config's layout names with other shapes than the weights hold (weights win)."""
    if laid_out is None:
        return []
    shapes = laid_out[0]
    differing = [(info.name, shapes[info.name], info.shape) for info in listed
                 if info.name in shapes and tuple(shapes[info.name]) != tuple(info.shape)]  # fmt: skip
    if not differing:
        return []
    examples = ", ".join(f"{name} {list(want)} vs {list(have)}" for name, want, have in differing[:3])
    return [
        f"{len(differing):,} tensors have other shapes than config.json implies (config vs weights: "
        f"{examples}); counts follow the weights"
    ]
