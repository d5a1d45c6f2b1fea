"""bitsandbytes 4-bit (NF4 / FP4) and 8-bit (LLM.int8) weights as transformers serialises them.

4-bit (bitsandbytes 0.50, checked against its own ``dequantize_4bit``): ``X.weight`` U8
``[ceil(n / 2), 1]``, the row-major weight flattened, two codes per byte, the **high** nibble first;
``X.weight.quant_map`` F32 ``[16]`` the code book (NF4 or FP4); ``X.weight.absmax`` one scale per
``blocksize`` consecutive values; ``X.weight.quant_state.bitsandbytes__nf4`` (or ``__fp4``) a U8
JSON blob with ``shape``, ``blocksize``, ``quant_type``, ``dtype``. With double quantisation the
absmax is itself 8-bit: ``absmax`` U8 codes, ``nested_quant_map`` F32 ``[256]``,
``nested_absmax`` one F32 per ``nested_blocksize`` codes, plus ``nested_offset`` from the JSON:
``absmax = nested_quant_map[code] * nested_absmax[i // nested_blocksize] + nested_offset``.
Value: ``quant_map[code] * absmax[i // blocksize]``.

8-bit: ``X.weight`` I8 ``[out, in]`` and ``X.SCB`` F32 ``[out]`` (absmax per row):
``value = q * SCB / 127``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from modeltrace.errors import CorruptFileError
from modeltrace.formats.quant.base import QuantisedWeight, Store, ceil_div, corrupt
from modeltrace.types import TensorInfo

_STATE_MARK = ".quant_state.bitsandbytes__"
MAX_STATE_BYTES = 64 * 1024


@dataclass(frozen=True)
class BnB4bit(QuantisedWeight):
    blocksize: int = 64
    quant_type: str = "nf4"
    nested_blocksize: int = 0  # 0: absmax stored in float (no double quantisation)
    nested_offset: float = 0.0

    def describe(self) -> str:
        double = ", double quantisation" if self.nested_blocksize else ""
        return f"{self.quant_type} block {self.blocksize}{double}"

    def flat_rows(self, store: Store, rows: np.ndarray) -> np.ndarray:
        name, cols = self.name, self.shape[-1]
        codebook = np.asarray(store.whole(name + ".quant_map"), dtype=np.float32).reshape(-1)
        if codebook.shape != (16,):
            raise corrupt(store, name, f"quant_map has {codebook.size} entries, expected 16")
        flat = rows[:, None] * cols + np.arange(cols)[None, :]  # flat element indices of each row
        block_ids = np.unique(flat // self.blocksize)
        if cols % 2 == 0:  # each row is whole bytes: read the codes as rows of cols / 2 bytes
            stored = np.asarray(store.flat_rows(name, rows.tolist(), cols // 2), dtype=np.uint8)
            codes = np.empty((len(rows), cols), dtype=np.uint8)
            codes[:, 0::2], codes[:, 1::2] = stored >> 4, stored & 0x0F
        else:  # rows share their edge bytes
            byte_ids = np.unique(flat // 2)
            packed = np.asarray(store.rows(name, byte_ids.tolist()), dtype=np.uint8).reshape(-1)
            stored = packed[np.searchsorted(byte_ids, flat // 2)]
            codes = np.where(flat % 2 == 0, stored >> 4, stored & 0x0F)
        absmax = self._absmax(store, block_ids.tolist())
        return codebook[codes] * absmax[np.searchsorted(block_ids, flat // self.blocksize)]

    def _absmax(self, store: Store, block_ids: list[int]) -> np.ndarray:
        name = self.name + ".absmax"
        if not self.nested_blocksize:
            return np.asarray(store.rows(name, block_ids), dtype=np.float32).reshape(-1)
        codes = np.asarray(store.rows(name, block_ids), dtype=np.uint8).reshape(-1)
        code_book = np.asarray(store.whole(self.name + ".nested_quant_map"), dtype=np.float32).reshape(-1)
        if code_book.shape != (256,):
            raise corrupt(store, self.name, f"nested_quant_map has {code_book.size} entries, expected 256")
        outer = sorted({b // self.nested_blocksize for b in block_ids})
        nested = np.asarray(store.rows(self.name + ".nested_absmax", outer), dtype=np.float32).reshape(-1)
        at = {b: i for i, b in enumerate(outer)}
        per_block = nested[[at[b // self.nested_blocksize] for b in block_ids]]
        return (code_book[codes] * per_block + np.float32(self.nested_offset)).astype(np.float32)


@dataclass(frozen=True)
class BnB8bit(QuantisedWeight):
    def describe(self) -> str:
        return "int8 row-wise absmax (LLM.int8)"

    def flat_rows(self, store: Store, rows: np.ndarray) -> np.ndarray:
        codes = np.asarray(store.rows(self.name, rows.tolist()), dtype=np.float32)
        scb = np.asarray(store.rows(self.parts[1], rows.tolist()), dtype=np.float32).reshape(-1, 1)
        return codes * scb / np.float32(127.0)


def _state(store: Store, name: str) -> dict[str, Any]:
    info = store.info(name)
    if info.dtype != "U8" or info.numel > MAX_STATE_BYTES:
        raise corrupt(store, name, "quant_state is not a small U8 JSON blob")
    try:
        state = json.loads(bytes(np.asarray(store.whole(name), dtype=np.uint8).reshape(-1)).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise CorruptFileError(info.file, f"'{name}' is not valid JSON ({error})") from error
    if not isinstance(state, dict):
        raise corrupt(store, name, "quant_state is not a JSON object")
    return state


def _int(value: Any, low: int, high: int) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high else None


def find(
    stored: Mapping[str, TensorInfo], store: Store, config: Mapping[str, Any] | None
) -> list[QuantisedWeight]:
    found: list[QuantisedWeight] = []
    for name, info in stored.items():
        if _STATE_MARK in name:
            weight = _four_bit(name, stored, store)
            if weight is not None:
                found.append(weight)
        elif name.endswith(".SCB"):
            base = name[: -len("SCB")]
            codes = stored.get(base + "weight")
            if codes is None or codes.dtype != "I8" or len(codes.shape) != 2 or info.shape != codes.shape[:1]:
                continue
            parts = [codes.name, name] + (
                [base + "weight_format"] if base + "weight_format" in stored else []
            )
            found.append(BnB8bit(codes.name, codes.shape, "INT8", "bitsandbytes", tuple(parts)))
    return found


def _four_bit(state_name: str, stored: Mapping[str, TensorInfo], store: Store) -> QuantisedWeight | None:
    weight = state_name[: state_name.index(_STATE_MARK)]
    codes = stored.get(weight)
    if codes is None or codes.dtype != "U8" or weight + ".absmax" not in stored:
        return None
    state = _state(store, state_name)
    shape = state.get("shape")
    blocksize = _int(state.get("blocksize"), 1, 1 << 20)
    quant_type = state.get("quant_type")
    if (
        not isinstance(shape, list)
        or not 1 <= len(shape) <= 4
        or any(_int(dim, 1, 1 << 40) is None for dim in shape)
        or blocksize is None
        or quant_type not in ("nf4", "fp4")
    ):
        raise corrupt(
            store, weight, f"quant_state {str(state)[:120]} lacks a valid shape/blocksize/quant_type"
        )
    count = math.prod(shape)
    if codes.numel != ceil_div(count, 2):
        raise corrupt(store, weight, f"{codes.numel} packed bytes cannot hold shape {shape}")
    parts = [weight, weight + ".absmax", weight + ".quant_map", state_name]
    nested_blocksize = 0
    offset = 0.0
    if weight + ".nested_absmax" in stored:
        nested_blocksize = _int(state.get("nested_blocksize"), 1, 1 << 20) or 0
        nested_offset = state.get("nested_offset", 0.0)
        if not nested_blocksize or not isinstance(nested_offset, (int, float)):
            raise corrupt(store, weight, "double-quantised absmax without nested_blocksize/nested_offset")
        offset = float(nested_offset)
        parts += [weight + ".nested_absmax", weight + ".nested_quant_map"]
    if stored[weight + ".absmax"].numel != ceil_div(count, blocksize):
        raise corrupt(
            store,
            weight,
            f"absmax has {stored[weight + '.absmax'].numel} entries for {ceil_div(count, blocksize)} blocks",
        )
    return BnB4bit(weight, tuple(int(d) for d in shape), quant_type.upper(), "bitsandbytes", tuple(parts),
                   blocksize=blocksize, quant_type=quant_type, nested_blocksize=nested_blocksize,
                   nested_offset=offset)  # fmt: skip
