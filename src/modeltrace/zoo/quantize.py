"""Safetensors quantisation of zoo models: int8 per output channel and FP8 with 128x128 block scales.

* int8 follows the ``compressed-tensors`` "int-quantized" layout: ``X.weight`` (I8) plus
  ``X.weight_scale`` (F32, one per output row); value = int8 * scale.
* FP8 follows DeepSeek-V3 / Kimi K2: ``X.weight`` (F8_E4M3) plus ``X.weight_scale_inv`` (F32,
  one per 128x128 block); value = fp8 * scale_inv. modeltrace's safetensors reader folds these.

Only the linear layers of the decoder are quantised; embeddings, LM head and norms stay F32, as
both toolchains do by default.
"""

from __future__ import annotations

import math

import numpy as np

from modeltrace.formats.base import F8_E4M3_TABLE
from modeltrace.zoo.arch import Params

FP8_BLOCK = 128
FP8_MAX = 448.0  # largest finite float8_e4m3fn

#: finite E4M3 values in ascending order and their byte codes, for nearest-value rounding
_F8_FINITE = np.flatnonzero(np.isfinite(F8_E4M3_TABLE))
_F8_ORDER = _F8_FINITE[np.argsort(F8_E4M3_TABLE[_F8_FINITE], kind="stable")]
_F8_SORTED = F8_E4M3_TABLE[_F8_ORDER]


def is_decoder_linear(name: str) -> bool:
    return (
        name.startswith("model.layers.")
        and name.endswith(".weight")
        and ("_proj." in name or ".experts." in name)
    )


def quantize_int8_rows(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-row int8: returns (codes int8 [rows, cols], scale float32 [rows, 1])."""
    scale = np.abs(weight).max(axis=1, keepdims=True) / 127.0
    scale = np.where(scale == 0, 1.0, scale).astype(np.float32)
    codes = np.clip(np.round(weight / scale), -127, 127).astype(np.int8)
    return codes, scale


def encode_fp8_e4m3(values: np.ndarray) -> np.ndarray:
    """Round float32 values to the nearest float8_e4m3fn, returned as uint8 codes (saturating)."""
    flat = np.clip(values.astype(np.float32).ravel(), -FP8_MAX, FP8_MAX)
    upper = np.clip(np.searchsorted(_F8_SORTED, flat), 1, len(_F8_SORTED) - 1)
    lower = upper - 1
    nearer_lower = (flat - _F8_SORTED[lower]) <= (_F8_SORTED[upper] - flat)
    return _F8_ORDER[np.where(nearer_lower, lower, upper)].astype(np.uint8).reshape(values.shape)


def quantize_fp8_blocks(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FP8 E4M3 with one scale per 128x128 block: (codes uint8, scale_inv float32 [rb, cb])."""
    rows, cols = weight.shape
    row_blocks, col_blocks = math.ceil(rows / FP8_BLOCK), math.ceil(cols / FP8_BLOCK)
    scale_inv = np.ones((row_blocks, col_blocks), np.float32)
    codes = np.empty(weight.shape, np.uint8)
    for rb in range(row_blocks):
        for cb in range(col_blocks):
            block = np.s_[rb * FP8_BLOCK : (rb + 1) * FP8_BLOCK, cb * FP8_BLOCK : (cb + 1) * FP8_BLOCK]
            amax = float(np.abs(weight[block]).max())
            scale = amax / FP8_MAX if amax > 0 else 1.0
            scale_inv[rb, cb] = scale
            codes[block] = encode_fp8_e4m3(weight[block] / scale)
    return codes, scale_inv


def int8_tensors(params: Params) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(tensors to store, dequantised parameters) for the int8 layout."""
    stored: dict[str, np.ndarray] = {}
    dequantised: Params = {}
    for name, value in params.items():
        if is_decoder_linear(name):
            codes, scale = quantize_int8_rows(value)
            stored[name], stored[name + "_scale"] = codes, scale
            dequantised[name] = codes.astype(np.float32) * scale
        else:
            stored[name] = dequantised[name] = value
    return stored, dequantised


def fp8_tensors(params: Params) -> tuple[dict[str, np.ndarray], dict[str, str], Params]:
    """(tensors to store, dtype overrides, dequantised parameters) for the FP8 block layout."""
    stored: dict[str, np.ndarray] = {}
    dtypes: dict[str, str] = {}
    dequantised: Params = {}
    for name, value in params.items():
        if is_decoder_linear(name):
            codes, scale_inv = quantize_fp8_blocks(value)
            stored[name], stored[name + "_scale_inv"] = codes, scale_inv
            dtypes[name] = "F8_E4M3"
            per_element = np.repeat(np.repeat(scale_inv, FP8_BLOCK, 0), FP8_BLOCK, 1)[
                : value.shape[0], : value.shape[1]
            ]
            dequantised[name] = F8_E4M3_TABLE[codes] * per_element
        else:
            stored[name] = dequantised[name] = value
    return stored, dtypes, dequantised


INT8_CONFIG = {
    "quantization_config": {
        "quant_method": "compressed-tensors",
        "format": "int-quantized",
        "config_groups": {
            "group_0": {
                "targets": ["Linear"],
                "weights": {"num_bits": 8, "type": "int", "symmetric": True, "strategy": "channel"},
            }
        },
        "ignore": ["lm_head"],
    }
}
FP8_CONFIG = {
    "quantization_config": {
        "quant_method": "fp8",
        "fmt": "e4m3",
        "activation_scheme": "dynamic",
        "weight_block_size": [FP8_BLOCK, FP8_BLOCK],
    }
}
