"""compressed-tensors ``pack-quantized`` INT4 (Kimi K2.5's release format), written from its definition.

Symmetric int4 in groups along the input: ``scale = max|w| / 8`` per group (the int4 range's half
width, as compressed-tensors computes it), codes ``round(w / scale)`` clipped to [-8, 7], stored
offset by 8 as unsigned nibbles, eight per int32 word, value i at bits 4i..4i+3 (``weight_packed``),
with ``weight_scale`` [rows, groups] and ``weight_shape`` [rows, cols]. modeltrace's reader is checked
against the compressed-tensors library on files that library wrote (tests/formats).
"""

from __future__ import annotations

import numpy as np

_BITS = 4
_QMIN, _QMAX = -(2 ** (_BITS - 1)), 2 ** (_BITS - 1) - 1


def pack_nibbles(codes: np.ndarray) -> np.ndarray:
    """Unsigned 4-bit values [rows, cols] into little-endian int32 words [rows, ceil(cols / 8)]."""
    rows, cols = codes.shape
    padded = np.zeros((rows, -(-cols // 8) * 8), dtype=np.uint32)
    padded[:, :cols] = codes
    words = np.zeros((rows, padded.shape[1] // 8), dtype=np.uint32)
    for position in range(8):
        words |= padded[:, position::8] << np.uint32(_BITS * position)
    return words.view(np.int32)


def pack_int4_groups(weight: np.ndarray, group: int = 32) -> dict[str, np.ndarray]:
    """``weight_packed``, ``weight_scale``, ``weight_shape`` of a 2-D weight; ``group`` divides its width."""
    rows, cols = weight.shape
    if cols % group:
        raise ValueError(f"{cols} columns are not a whole number of groups of {group}")
    grouped = weight.astype(np.float32).reshape(rows, cols // group, group)
    scale = np.maximum(np.abs(grouped).max(axis=2) / ((_QMAX - _QMIN) / 2), 1e-8).astype(np.float32)
    codes = np.clip(np.round(grouped / scale[..., None]), _QMIN, _QMAX).reshape(rows, cols)
    return {
        "weight_packed": pack_nibbles((codes - _QMIN).astype(np.uint32)),
        "weight_scale": scale,
        "weight_shape": np.array([rows, cols], dtype=np.int64),
    }
