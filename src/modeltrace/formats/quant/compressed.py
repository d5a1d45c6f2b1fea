"""compressed-tensors (neuralmagic / vLLM llm-compressor) quantised weights.

Stored per linear layer ``X`` (compressed-tensors 0.20, checked against its own decompressors):

* ``pack-quantized`` (INT1..8, Kimi K2.5 ships INT4 this way): ``X.weight_packed`` I32
  ``[rows, ceil(cols * bits / 32)]``, a little-endian bit stream per row, value ``i`` at bits
  ``i*bits ..``, stored unsigned with offset ``2^(bits-1)``; ``X.weight_shape`` I32/I64 ``[2]``;
  ``X.weight_scale`` per tensor ``[1]``, channel ``[rows, 1]``, group ``[rows, cols / g]`` or block;
  asymmetric group/channel zero points ``X.weight_zero_point`` packed the same way down axis 0.
* ``int-quantized`` / ``float-quantized`` / ``naive-quantized``: ``X.weight`` I8 or F8_E4M3 of the full
  shape plus ``X.weight_scale`` (and an optional unpacked ``X.weight_zero_point``).
* ``nvfp4-pack-quantized``: ``X.weight_packed`` U8 ``[rows, cols / 2]`` (FP4 E2M1, low nibble first),
  ``X.weight_scale`` F8_E4M3 ``[rows, cols / 16]``, ``X.weight_global_scale`` F32 ``[1]``; the value
  is ``fp4 * (scale / global_scale)``.
* ``mxfp4-pack-quantized``: the same packing, ``X.weight_scale`` U8 E8M0 exponents per 32 values.

Dequantisation follows the library: ``(q - zero_point) * scale``, the group of column ``c`` being
``c // group_size`` (``X.weight_g_idx[c]`` when the file carries one: activation order).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from modeltrace.formats.quant.base import (
    FP4_E2M1,
    QuantisedWeight,
    Store,
    block_side,
    ceil_div,
    corrupt,
    e8m0_to_float,
    unpack_nibbles_low_first,
)
from modeltrace.types import TensorInfo

_FLOAT_SCALES = ("F32", "F16", "BF16")


def unpack_bitstream(words: np.ndarray, bits: int, count: int) -> np.ndarray:
    """Unsigned ``bits``-wide values ``0..count-1`` of each row of int32 words, value ``i`` at bit
    ``i * bits`` of the row's little-endian bit stream (compressed-tensors' dense packing)."""
    as_bytes = np.ascontiguousarray(words.astype("<i4")).view(np.uint8).reshape(words.shape[0], -1)
    if bits == 4:  # nibbles never straddle a byte
        return unpack_nibbles_low_first(as_bytes)[:, :count].astype(np.int32)
    if bits == 8:
        return as_bytes[:, :count].astype(np.int32)
    stream = np.unpackbits(as_bytes, axis=1, bitorder="little")[:, : count * bits]
    fields = stream.reshape(words.shape[0], count, bits).astype(np.int32)
    return (fields << np.arange(bits, dtype=np.int32)).sum(axis=2, dtype=np.int32)


@dataclass(frozen=True)
class _Scales:
    """Where the scale (and zero point) of element ``(r, c)`` lives: ``kind`` is tensor, channel,
    group or block; ``group`` the group size (columns) or ``block`` the block sides."""

    kind: str
    group: int = 0
    block: tuple[int, int] = (0, 0)

    def label(self) -> str:
        if self.kind == "group":
            return f"group {self.group}"
        if self.kind == "block":
            return f"block {self.block[0]}x{self.block[1]}"
        return self.kind


def _scale_layout(
    scale: TensorInfo, rows: int, cols: int, args: Mapping[str, Any], has_g_idx: bool
) -> _Scales | None:
    shape = tuple(scale.shape)
    if math.prod(shape) == 1:
        return _Scales("tensor")
    if shape in ((rows,), (rows, 1)):
        return _Scales("channel")
    if len(shape) != 2:
        return None
    strategy = args.get("strategy")
    if shape[0] == rows and strategy != "block":
        configured = args.get("group_size") if isinstance(args.get("group_size"), int) else None
        if configured and (has_g_idx or ceil_div(cols, configured) == shape[1]):
            return _Scales("group", group=configured)
        # the library requires groups to divide the columns (compressed_tensors _process_group)
        return _Scales("group", group=cols // shape[1]) if shape[1] and cols % shape[1] == 0 else None
    configured_block = args.get("block_structure")
    wanted = configured_block if isinstance(configured_block, list) and len(configured_block) == 2 else None
    side_rows = block_side(rows, shape[0], wanted[0] if wanted else None)
    side_cols = block_side(cols, shape[1], wanted[1] if wanted else None)
    if side_rows is None or side_cols is None:
        return None
    return _Scales("block", block=(side_rows, side_cols))


@dataclass(frozen=True)
class CompressedTensorsWeight(QuantisedWeight):
    codes: str = ""  # the stored codes tensor (weight_packed or weight)
    encoding: str = "int"  # int (signed integers), float8 (stored F8), fp4 (packed E2M1)
    bits: int = 8
    packed: bool = False  # int codes bit-packed into I32 words
    scale: str = ""
    scales: _Scales = _Scales("tensor")
    zero_point: str | None = None
    zero_packed: bool = False
    global_scale: str | None = None
    g_idx: str | None = None
    e8m0: bool = False  # scale bytes are E8M0 exponents (MXFP4)

    def describe(self) -> str:
        kind = {"int": f"int{self.bits}", "float8": "fp8", "fp4": self.dtype.lower()}[self.encoding]
        symmetry = "asymmetric" if self.zero_point else "symmetric"
        order = ", activation order" if self.g_idx else ""
        return f"{kind} {self.scales.label()} {symmetry}{order}"

    def _codes(self, store: Store, rows: np.ndarray) -> np.ndarray:
        cols = self.shape[1]
        stored = store.rows(self.codes, rows.tolist())
        if self.encoding == "fp4":
            return FP4_E2M1[unpack_nibbles_low_first(stored.astype(np.uint8))[:, :cols]]
        if self.packed:
            offset = 1 << (self.bits - 1)
            return (unpack_bitstream(stored, self.bits, cols) - offset).astype(np.float32)
        return np.asarray(stored, dtype=np.float32)  # I8 codes, or F8 already decoded to values

    def _per_element(self, store: Store, name: str, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Expand scale-shaped ``values`` (already the wanted rows' for channel/group) to ``[rows, cols]``."""
        cols = self.shape[1]
        if self.scales.kind == "tensor":
            return np.broadcast_to(values.reshape(1, 1), (len(rows), cols))
        if self.scales.kind == "channel":
            return np.broadcast_to(values.reshape(len(rows), 1), (len(rows), cols))
        if self.scales.kind == "group":
            if self.g_idx is not None:
                groups = store.whole(self.g_idx).astype(np.int64).reshape(-1)
                if (
                    groups.shape != (cols,)
                    or groups.min(initial=0) < 0
                    or groups.max(initial=0) >= values.shape[1]
                ):
                    raise corrupt(store, self.codes, f"g_idx does not map {cols} columns to groups")
                return values[:, groups]
            return np.repeat(values, self.scales.group, axis=1)[:, :cols]
        side_rows, side_cols = self.scales.block
        per_row = values[rows // side_rows]
        return np.repeat(per_row, side_cols, axis=1)[:, :cols]

    def _scale_rows(self, store: Store, name: str, rows: np.ndarray) -> np.ndarray:
        if self.scales.kind == "tensor":
            return np.asarray(store.whole(name), dtype=np.float32).reshape(-1)[:1]
        if self.scales.kind == "block":
            return np.asarray(store.whole(name), dtype=np.float32)
        return np.asarray(store.rows(name, rows.tolist()), dtype=np.float32).reshape(len(rows), -1)

    def flat_rows(self, store: Store, rows: np.ndarray) -> np.ndarray:
        codes = self._codes(store, rows)
        raw_scale = self._scale_rows(store, self.scale, rows)
        if self.e8m0:
            raw_scale = e8m0_to_float(raw_scale.astype(np.uint8))
        scale = self._per_element(store, self.scale, rows, raw_scale).astype(np.float32)
        if self.global_scale is not None:
            scale = scale / np.float32(
                np.asarray(store.whole(self.global_scale), dtype=np.float32).reshape(-1)[0]
            )
        if self.zero_point is not None:
            codes = codes - self._per_element(store, self.zero_point, rows, self._zero_rows(store, rows))
        return (codes * scale).astype(np.float32)

    def _zero_rows(self, store: Store, rows: np.ndarray) -> np.ndarray:
        assert self.zero_point is not None
        if not self.zero_packed:
            return self._scale_rows(store, self.zero_point, rows)
        words = np.asarray(store.whole(self.zero_point))
        groups = words.shape[1]
        # packed down axis 0: each column's zero points are one bit stream over the rows
        unpacked = unpack_bitstream(words.T.copy(), self.bits, self.shape[0]).T
        offset = 1 << (self.bits - 1)
        return (unpacked[rows] - offset).astype(np.float32).reshape(len(rows), groups)


def _weight_args(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``weights`` arguments of the first config group (bits, strategy, group size, block)."""
    if not config or config.get("quant_method") != "compressed-tensors":
        return {}
    groups = config.get("config_groups")
    if isinstance(groups, dict):
        for group in groups.values():
            weights = group.get("weights") if isinstance(group, dict) else None
            if isinstance(weights, dict):
                return weights
    return {}


def _packed_bits(rows_cols: tuple[int, int], words: int, args: Mapping[str, Any]) -> int | None:
    cols = rows_cols[1]
    configured = args.get("num_bits")
    for bits in ((configured,) if isinstance(configured, int) else ()) + (4, 8, 2, 3, 5, 6, 7, 1):
        if isinstance(bits, int) and 1 <= bits <= 8 and ceil_div(cols * bits, 32) == words:
            return bits
    return None


def find(
    stored: Mapping[str, TensorInfo], store: Store, config: Mapping[str, Any] | None
) -> list[QuantisedWeight]:
    args = _weight_args(config)
    found: list[QuantisedWeight] = []
    for name, info in stored.items():
        if name.endswith(".weight_packed"):
            weight = _packed(name[: -len("_packed")], info, stored, store, args)
        elif name.endswith(".weight") and info.dtype in ("I8", "F8_E4M3", "F8_E5M2") and len(info.shape) == 2:
            weight = _unpacked(name, info, stored, store, args)
        else:
            continue
        if weight is not None:
            found.append(weight)
    return found


def _width_from_config(rows: int, words: int, scale: TensorInfo, args: Mapping[str, Any]) -> int | None:
    """The unpacked width when the configured bits and group size settle it, else None.

    Then ``weight_shape`` is not read: a checkpoint such as Kimi K2.5 holds one per expert projection
    (69 120 tiny tensors), and reading each would cost a request over HTTP before any row is read. The
    library requires groups to divide the width, so ``groups * group_size`` is the width whenever it
    lies in the range the packed words allow.
    """
    bits, group = args.get("num_bits"), args.get("group_size")
    if not isinstance(bits, int) or not isinstance(group, int) or not 1 <= bits <= 8 or group <= 0:
        return None
    if args.get("strategy") != "group" or len(scale.shape) != 2 or scale.shape[0] != rows:
        return None
    width = scale.shape[1] * group
    return width if ceil_div(width * bits, 32) == words else None


def _optional(stored: Mapping[str, TensorInfo], name: str) -> str | None:
    return name if name in stored else None


def _packed(
    base: str, codes: TensorInfo, stored: Mapping[str, TensorInfo], store: Store, args: Mapping[str, Any]
) -> QuantisedWeight | None:
    scale = stored.get(base + "_scale")
    if scale is None or len(codes.shape) != 2:
        return None
    rows, words = codes.shape
    zero = _optional(stored, base + "_zero_point")
    g_idx = _optional(stored, base + "_g_idx")
    parts = [codes.name, scale.name, *(n for n in (zero, g_idx) if n)]
    if codes.dtype == "U8":  # FP4 codes, two per byte
        cols = words * 2
        global_scale = _optional(stored, base + "_global_scale")
        e8m0 = scale.dtype == "U8"
        if global_scale is None and not e8m0 and scale.dtype not in (*_FLOAT_SCALES, "F8_E4M3"):
            return None
        layout = _scale_layout(scale, rows, cols, args, g_idx is not None)
        if layout is None:
            raise corrupt(store, codes.name, f"scale {list(scale.shape)} does not fit [{rows}, {cols}]")
        if global_scale:
            parts.append(global_scale)
        label = "MXFP4" if e8m0 else "NVFP4"
        return CompressedTensorsWeight(
            base, (rows, cols), label, "compressed-tensors", tuple(parts), codes=codes.name, encoding="fp4",
            bits=4, scale=scale.name, scales=layout, zero_point=zero, global_scale=global_scale,
            g_idx=g_idx, e8m0=e8m0,
        )  # fmt: skip
    if codes.dtype != "I32":
        return None
    shape_name = _optional(stored, base + "_shape")
    cols = _width_from_config(rows, words, scale, args) if g_idx is None else None
    if shape_name is not None:
        parts.append(shape_name)
    if shape_name is not None and cols is None:
        declared = np.asarray(store.whole(shape_name)).reshape(-1).tolist()
        if len(declared) != 2 or declared[0] != rows or declared[1] <= 0:
            raise corrupt(store, codes.name, f"weight_shape {declared} does not fit packed [{rows}, {words}]")
        cols = declared[1]
    bits = _packed_bits((rows, cols), words, args) if cols else args.get("num_bits")
    if not isinstance(bits, int) or not 1 <= bits <= 8:
        raise corrupt(store, codes.name, "cannot tell the bit width (no weight_shape and no config)")
    cols = cols or words * 32 // bits
    layout = _scale_layout(scale, rows, cols, args, g_idx is not None)
    if layout is None:
        raise corrupt(store, codes.name, f"scale {list(scale.shape)} does not fit [{rows}, {cols}]")
    zero_packed = False
    if zero is not None:
        zero_info = stored[zero]
        zero_packed = zero_info.dtype == "I32" and zero_info.shape[:1] == (ceil_div(rows * bits, 32),)
    return CompressedTensorsWeight(
        base, (rows, cols), f"INT{bits}", "compressed-tensors", tuple(parts), codes=codes.name,
        encoding="int", bits=bits, packed=True, scale=scale.name, scales=layout, zero_point=zero,
        zero_packed=zero_packed, g_idx=g_idx,
    )  # fmt: skip


def _unpacked(
    name: str, codes: TensorInfo, stored: Mapping[str, TensorInfo], store: Store, args: Mapping[str, Any]
) -> QuantisedWeight | None:
    scale = stored.get(name + "_scale")
    if scale is None or scale.dtype not in _FLOAT_SCALES:
        return None
    rows, cols = codes.shape
    g_idx = _optional(stored, name + "_g_idx")
    layout = _scale_layout(scale, rows, cols, args, g_idx is not None)
    if layout is None:
        raise corrupt(store, name, f"scale {list(scale.shape)} does not fit [{rows}, {cols}]")
    zero = _optional(stored, name + "_zero_point")
    parts = [name, scale.name, *(n for n in (zero, g_idx) if n)]
    floating = codes.dtype.startswith("F8")
    return CompressedTensorsWeight(
        name, (rows, cols), "FP8" if floating else "INT8", "compressed-tensors", tuple(parts), codes=name,
        encoding="float8" if floating else "int", bits=8, scale=scale.name, scales=layout, zero_point=zero,
        g_idx=g_idx,
    )  # fmt: skip
