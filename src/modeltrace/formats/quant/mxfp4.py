"""MXFP4 as gpt-oss ships its expert weights (OCP Microscaling v1.0, read with openai/gpt-oss and
transformers' ``convert_moe_packed_tensors``): ``X_blocks`` U8 ``[..., G, 16]`` holds 32 FP4 E2M1
values per group, the low nibble of each byte first; ``X_scales`` U8 ``[..., G]`` one E8M0 exponent
per group, ``value = fp4 * 2^(scale - 127)``.

The logical tensor ``X`` has shape ``[..., G * 32]``: for gpt-oss ``mlp.experts.gate_up_proj``
that is ``[experts, 2 * intermediate, hidden]`` (output rows, gate and up interleaved), the transpose
of the ``[experts, hidden, 2 * intermediate]`` parameter transformers builds from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from modeltrace.formats.quant.base import (
    FP4_E2M1,
    QuantisedWeight,
    Store,
    corrupt,
    e8m0_to_float,
    unpack_nibbles_low_first,
)
from modeltrace.types import TensorInfo


@dataclass(frozen=True)
class MXFP4Blocks(QuantisedWeight):
    blocks: str = ""
    scales: str = ""

    def describe(self) -> str:
        return "group 32, e8m0 scales"

    def flat_rows(self, store: Store, rows: np.ndarray) -> np.ndarray:
        blocks_info = store.info(self.blocks)
        groups = blocks_info.shape[-2]
        # Stored as a matrix of [flat rows, G * 16] bytes and [flat rows, G] exponents.
        codes = store.flat_rows(self.blocks, rows.tolist(), groups * 16)
        exponents = store.flat_rows(self.scales, rows.tolist(), groups)
        values = FP4_E2M1[unpack_nibbles_low_first(codes.astype(np.uint8))]
        scale = np.repeat(e8m0_to_float(exponents.astype(np.uint8)), 32, axis=1)
        return (values * scale).astype(np.float32)


def find(
    stored: Mapping[str, TensorInfo], store: Store, config: Mapping[str, Any] | None
) -> list[QuantisedWeight]:
    found: list[QuantisedWeight] = []
    for name, blocks in stored.items():
        if not name.endswith("_blocks") or blocks.dtype != "U8":
            continue
        base = name[: -len("_blocks")]
        scales = stored.get(base + "_scales")
        if scales is None or scales.dtype != "U8" or len(blocks.shape) < 3:
            continue
        if blocks.shape[-1] != 16 or tuple(scales.shape) != tuple(blocks.shape[:-1]):
            raise corrupt(store, name, f"MXFP4 blocks {list(blocks.shape)} and scales {list(scales.shape)} "
                                       "do not pair (expected [..., G, 16] and [..., G])")  # fmt: skip
        shape = (*blocks.shape[:-2], blocks.shape[-2] * 32)
        found.append(MXFP4Blocks(base, shape, "MXFP4", "mxfp4", (name, base + "_scales"), blocks=name,
                                 scales=base + "_scales"))  # fmt: skip
    return found
