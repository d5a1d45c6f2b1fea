"""FP8 weights with block scales as DeepSeek-V3 and Kimi K2 ship them: ``X.weight`` F8_E4M3
``[rows, cols]`` plus ``X.weight_scale_inv`` F32 ``[ceil(rows/128), ceil(cols/128)]``; the value is
``fp8 * scale_inv`` (the name says "inverse" of the quantiser's scale; the stored number multiplies).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from modeltrace.formats.quant.base import QuantisedWeight, Store, block_side, corrupt
from modeltrace.types import TensorInfo

_SUFFIX = "_scale_inv"


@dataclass(frozen=True)
class BlockScaledFP8(QuantisedWeight):
    scale: str = ""
    block: tuple[int, int] = (128, 128)

    def describe(self) -> str:
        return f"e4m3 block {self.block[0]}x{self.block[1]} (weight_scale_inv)"

    def flat_rows(self, store: Store, rows: np.ndarray) -> np.ndarray:
        cols = self.shape[1]
        values = np.asarray(store.rows(self.parts[0], rows.tolist()), dtype=np.float32)
        block_rows = sorted({int(row) // self.block[0] for row in rows})
        scales = np.asarray(store.rows(self.scale, block_rows), dtype=np.float32)
        position = {block: index for index, block in enumerate(block_rows)}
        per_row = scales[[position[int(row) // self.block[0]] for row in rows]]
        return values * np.repeat(per_row, self.block[1], axis=1)[:, :cols]


def find(
    stored: Mapping[str, TensorInfo], store: Store, config: Mapping[str, Any] | None
) -> list[QuantisedWeight]:
    configured = (config or {}).get("weight_block_size")
    preferred = configured if isinstance(configured, list) and len(configured) == 2 else [None, None]
    found: list[QuantisedWeight] = []
    for name, scale in stored.items():
        weight = stored.get(name[: -len(_SUFFIX)]) if name.endswith(_SUFFIX) else None
        if weight is None or not weight.dtype.startswith("F8"):
            continue
        if len(weight.shape) != 2 or len(scale.shape) != 2 or 0 in scale.shape:
            raise corrupt(
                store, weight.name, f"block scales {list(scale.shape)} for shape {list(weight.shape)}"
            )
        sides = [
            block_side(length, blocks, want)
            for length, blocks, want in zip(weight.shape, scale.shape, preferred, strict=True)
        ]
        if sides[0] is None or sides[1] is None:
            raise corrupt(
                store, weight.name, f"scale tensor {list(scale.shape)} does not tile {list(weight.shape)}"
            )
        found.append(
            BlockScaledFP8(
                weight.name,
                weight.shape,
                "FP8",
                "fp8",
                (weight.name, name),
                scale=name,
                block=(sides[0], sides[1]),
            )
        )
    return found
