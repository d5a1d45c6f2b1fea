"""The logical tensor list of a quantised checkpoint: each quantised weight listed once, under its
logical name and unpacked shape, where its codes are stored; its other parts hidden."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modeltrace.formats.quant import QuantisedWeight, Store, plan_quantised
from modeltrace.types import TensorInfo


def fold_quantised(
    stored: Mapping[str, TensorInfo], store: Store, config: Mapping[str, Any] | None
) -> tuple[dict[str, QuantisedWeight], dict[str, TensorInfo]]:
    """``(quantised weights by logical name, logical tensors in storage order)``.

    A logical tensor's ``nbytes`` is the sum of its parts (codes, scales, zero points), so totals of
    bytes over the logical list are the bytes on disk; ``offset`` is -1 (not one run of bytes).
    """
    plan = plan_quantised(stored, store, config)
    owner = {part: weight for weight in plan.values() for part in weight.parts}
    logical: dict[str, TensorInfo] = {}
    for name, info in stored.items():
        weight = owner.get(name)
        if weight is None:
            if name not in plan:  # a stored tensor whose name a logical weight took over
                logical[name] = info
            continue
        if name == weight.parts[0]:
            size = sum(stored[part].nbytes for part in weight.parts)
            logical[weight.name] = TensorInfo(weight.name, weight.shape, weight.dtype, size, info.file)
    return plan, logical
