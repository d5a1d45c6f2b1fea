"""Spec encoders for the quantised formats modeltrace reads: numpy, written from each format's
definition (docs/formats.md, "Quantised weights"), used to quantise synthetic models in the tests.

They are checked twice: the reader's dequantisation equals the reference libraries' on files those
libraries wrote (tests/formats/test_quantised_reference.py), and encode-then-read reproduces the
weights to the format's precision here (tests/formats/test_quantised_spec.py).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from modeltrace.formats.base import F8_E4M3_TABLE
from modeltrace.formats.quant.base import FP4_E2M1

Stored = dict[str, tuple[str, np.ndarray]]  # name -> (safetensors dtype, array holding the bytes)


def write_safetensors(path: Path, tensors: Stored) -> None:
    """Any dtype spelling (F8_E4M3, BF16 ...) with the bytes given: safetensors.numpy cannot write those."""
    header: dict[str, object] = {}
    chunks: list[bytes] = []
    offset = 0
    for name, (dtype, array) in tensors.items():
        data = np.ascontiguousarray(array).tobytes()
        shape = list(array.shape)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + b"".join(chunks))


def dense(array: np.ndarray) -> tuple[str, np.ndarray]:
    return "F32", np.asarray(array, dtype=np.float32)


def bf16(array: np.ndarray) -> tuple[str, np.ndarray]:
    bits = np.asarray(array, dtype=np.float32).view(np.uint32)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)  # round to nearest even
    return "BF16", rounded


def _nearest(values: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Index of the nearest entry of ``table`` for each value (ties to the first)."""
    return np.abs(values[..., None] - table).argmin(axis=-1)


_E4M3_POSITIVE = F8_E4M3_TABLE[:127]  # codes 0x00..0x7e: 0 .. 448, increasing (0x7f is NaN)


def e4m3_codes(values: np.ndarray) -> np.ndarray:
    """Nearest E4M3 code of each value (saturating at 448), by bisection of the positive codes."""
    magnitude = np.minimum(np.abs(values), 448)
    upper = np.clip(np.searchsorted(_E4M3_POSITIVE, magnitude), 1, 126)
    lower = upper - 1
    code = np.where(magnitude - _E4M3_POSITIVE[lower] <= _E4M3_POSITIVE[upper] - magnitude, lower, upper)
    return (code | ((np.signbit(values) & (code > 0)).astype(np.int64) << 7)).astype(np.uint8)


def pack_bitstream(values: np.ndarray, bits: int) -> np.ndarray:
    """Unsigned ``bits``-wide values of each row into int32 words, value i at bit i*bits (little-endian)."""
    rows, count = values.shape
    words = -(-count * bits // 32)
    stream = np.zeros((rows, words * 32), dtype=np.uint8)
    for bit in range(bits):
        stream[:, np.arange(count) * bits + bit] = (values >> bit) & 1
    packed = np.packbits(stream, axis=1, bitorder="little")
    return packed.view("<i4").reshape(rows, words)


# -- compressed-tensors -------------------------------------------------------------------------


def ct_pack(weight: np.ndarray, bits: int = 4, group: int | None = 32, symmetric: bool = True) -> Stored:
    rows, cols = weight.shape
    grouped = weight.reshape(rows, -1, group or cols)
    qmax, qmin = 2 ** (bits - 1) - 1, -(2 ** (bits - 1))
    if symmetric:
        scale = np.abs(grouped).max(axis=2) / ((qmax - qmin) / 2)
        zero = np.zeros_like(scale)
    else:
        low, high = np.minimum(grouped.min(axis=2), 0), np.maximum(grouped.max(axis=2), 0)
        scale = (high - low) / (qmax - qmin)
        zero = np.clip(np.round(qmin - low / scale), qmin, qmax)
    scale = np.maximum(scale, 1e-8).astype(np.float32)
    codes = np.clip(np.round(grouped / scale[..., None]) + zero[..., None], qmin, qmax).reshape(rows, cols)
    offset = 1 << (bits - 1)
    stored: Stored = {
        "weight_packed": ("I32", pack_bitstream((codes + offset).astype(np.int64), bits)),
        "weight_scale": dense(scale),
        "weight_shape": ("I64", np.array([rows, cols], dtype=np.int64)),
    }
    if not symmetric:
        stored["weight_zero_point"] = (
            "I32",
            pack_bitstream((zero.T + offset).astype(np.int64), bits).T.copy(),
        )
    return stored


def ct_fp8(weight: np.ndarray, block: int | None = None) -> Stored:
    """float-quantized: per-channel scales, or ``block`` x ``block`` block scales."""
    rows, cols = weight.shape
    if block is None:
        scale = np.abs(weight).max(axis=1, keepdims=True) / 448
        per_element = scale
    else:
        tiles = weight.reshape(rows // block, block, cols // block, block)
        scale = np.abs(tiles).max(axis=(1, 3)) / 448
        per_element = np.repeat(np.repeat(scale, block, axis=0), block, axis=1)
    scale = np.maximum(scale, 1e-12).astype(np.float32)
    per_element = np.maximum(per_element, 1e-12)
    return {"weight": ("F8_E4M3", e4m3_codes(weight / per_element)), "weight_scale": dense(scale)}


def ct_nvfp4(weight: np.ndarray) -> Stored:
    rows, cols = weight.shape
    global_scale = np.float32(448 * 6 / max(np.abs(weight).max(), 1e-12))
    groups = weight.reshape(rows, cols // 16, 16)
    local = np.abs(groups).max(axis=2) / 6 * global_scale
    scale_codes = e4m3_codes(local)
    effective = F8_E4M3_TABLE[scale_codes] / global_scale
    effective = np.where(effective == 0, 1.0, effective)
    flat = _fp4_codes(groups / effective[..., None]).reshape(rows, cols)
    return {
        "weight_packed": ("U8", (flat[:, 0::2] | (flat[:, 1::2] << 4)).astype(np.uint8)),
        "weight_scale": ("F8_E4M3", scale_codes),
        "weight_global_scale": dense(np.array([global_scale])),
    }


def _fp4_codes(values: np.ndarray) -> np.ndarray:
    codes = _nearest(np.abs(values), FP4_E2M1[:8]).astype(np.uint8)
    return codes | ((np.signbit(values) & (codes > 0)).astype(np.uint8) << 3)


def mxfp4_blocks(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """gpt-oss MXFP4 of ``[..., cols]``: ``[..., cols / 32, 16]`` bytes and ``[..., cols / 32]`` E8M0."""
    groups = weight.reshape(*weight.shape[:-1], -1, 32)
    peak = np.maximum(np.abs(groups).max(axis=-1), 1e-30)
    exponent = np.clip(np.floor(np.log2(peak)) - 2, -127, 127)  # 6 = 1.5 * 2^2: the largest E2M1
    codes = _fp4_codes(groups / np.exp2(exponent)[..., None])
    packed = (codes[..., 0::2] | (codes[..., 1::2] << 4)).astype(np.uint8)
    return packed, (exponent + 127).astype(np.uint8)


# -- GPTQ / AWQ ---------------------------------------------------------------------------------


def _asymmetric(values: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """codes, scale, zero of the last axis' min/max grid (GPTQ/AWQ's asymmetric quantiser)."""
    top = 2**bits - 1
    low, high = np.minimum(values.min(axis=-1), 0), np.maximum(values.max(axis=-1), 0)
    scale = np.maximum((high - low) / top, 1e-8)
    zero = np.clip(np.round(-low / scale), 0, top)
    codes = np.clip(np.round(values / scale[..., None]) + zero[..., None], 0, top)
    return codes.astype(np.int64), scale.astype(np.float32), zero.astype(np.int64)


def gptq(
    weight: np.ndarray, bits: int = 4, group: int = 32, act_order: bool = False, seed: int = 0
) -> Stored:
    """Classic GPTQ layout (zeros stored minus one); ``act_order`` assigns input channels to groups in
    a permuted order and stores it as ``g_idx``, as desc_act checkpoints do."""
    out_features, in_features = weight.shape
    order = np.random.default_rng(seed).permutation(in_features) if act_order else np.arange(in_features)
    g_idx = np.empty(in_features, dtype=np.int32)
    g_idx[order] = np.arange(in_features) // group
    groups = in_features // group
    codes = np.empty((in_features, out_features), dtype=np.int64)
    scales = np.empty((groups, out_features), dtype=np.float32)
    zeros = np.empty((groups, out_features), dtype=np.int64)
    for g in range(groups):
        members = np.flatnonzero(g_idx == g)
        c, s, z = _asymmetric(weight[:, members], bits)  # per output row, over the group's inputs
        codes[members] = c.T
        scales[g], zeros[g] = s, z
    stored: Stored = {
        "qweight": ("I32", pack_bitstream(codes.T, bits).T.copy()),
        "qzeros": ("I32", pack_bitstream(zeros - 1, bits)),
        "scales": ("F16", scales.astype(np.float16)),
    }
    if act_order:
        stored["g_idx"] = ("I32", g_idx)
    return stored


_AWQ_ORDER = (0, 2, 4, 6, 1, 3, 5, 7)


def _awq_pack(values: np.ndarray) -> np.ndarray:
    rows, cols = values.shape
    packed = np.zeros((rows, cols // 8), dtype=np.uint32)
    for nibble, column in enumerate(_AWQ_ORDER):
        packed |= values[:, column::8].astype(np.uint32) << np.uint32(4 * nibble)
    return packed.view(np.int32)


def awq(weight: np.ndarray, group: int = 32) -> Stored:
    out_features, in_features = weight.shape
    grouped = weight.reshape(out_features, in_features // group, group)
    codes, scale, zero = _asymmetric(grouped, 4)  # [out, groups, group], [out, groups]
    return {
        "qweight": ("I32", _awq_pack(codes.reshape(out_features, in_features).T)),
        "qzeros": ("I32", _awq_pack(zero.T)),
        "scales": ("F16", scale.T.astype(np.float16)),
    }


# -- bitsandbytes -------------------------------------------------------------------------------


def bnb_4bit(weight: np.ndarray, code_book: np.ndarray, quant_type: str = "nf4", double: bool = True,
             blocksize: int = 64, nested_code: np.ndarray | None = None) -> Stored:  # fmt: skip
    """``code_book``: the 16-entry quant_map (NF4 or FP4, as bitsandbytes stores it);
    ``nested_code``: the 256-entry map for double quantisation of the absmax."""
    flat = weight.reshape(-1)
    blocks = flat.reshape(-1, blocksize)
    absmax = np.abs(blocks).max(axis=1).astype(np.float32)
    codes = _nearest(blocks / absmax[:, None], code_book).reshape(-1).astype(np.uint8)
    packed = ((codes[0::2] << 4) | codes[1::2]).astype(np.uint8).reshape(-1, 1)
    state: dict[str, object] = {"quant_type": quant_type, "blocksize": blocksize, "dtype": "float32",
                                "shape": list(weight.shape)}  # fmt: skip
    stored: Stored = {"weight": ("U8", packed)}
    if double:
        assert nested_code is not None
        offset = float(absmax.mean())
        centred = absmax - offset
        nested_blocks = -(-centred.size // 256)
        padded = np.zeros(nested_blocks * 256, dtype=np.float32)
        padded[: centred.size] = centred
        nested_absmax = np.abs(padded.reshape(nested_blocks, 256)).max(axis=1)
        scaled = centred / np.repeat(nested_absmax, 256)[: centred.size]
        stored["weight.absmax"] = ("U8", _nearest(scaled, nested_code).astype(np.uint8))
        stored["weight.nested_absmax"] = dense(nested_absmax)
        stored["weight.nested_quant_map"] = dense(nested_code)
        state.update(nested_blocksize=256, nested_dtype="float32", nested_offset=offset)
    else:
        stored["weight.absmax"] = dense(absmax)
    stored["weight.quant_map"] = dense(code_book)
    blob = np.frombuffer(json.dumps(state).encode(), dtype=np.uint8)
    stored[f"weight.quant_state.bitsandbytes__{quant_type}"] = ("U8", blob.copy())
    return stored


def bnb_int8(weight: np.ndarray) -> Stored:
    scb = np.maximum(np.abs(weight).max(axis=1), 1e-8).astype(np.float32)
    codes = np.clip(np.round(weight / scb[:, None] * 127), -127, 127).astype(np.int8)
    return {"weight": ("I8", codes), "SCB": dense(scb)}


# -- whole synthetic models ---------------------------------------------------------------------

_CT = {"quant_method": "compressed-tensors"}
_CT_INT4 = {"num_bits": 4, "type": "int", "strategy": "group", "group_size": 16, "symmetric": True}

#: scheme -> (per-weight encoder ``(weight, seed) -> parts``, quantization_config for config.json)
SCHEMES = {
    "ct-int4-group": (
        lambda w, _: ct_pack(w, 4, 16),
        {**_CT, "format": "pack-quantized", "config_groups": {"group_0": {"weights": _CT_INT4}}},
    ),
    "ct-int4-asym": (lambda w, _: ct_pack(w, 4, 16, symmetric=False), {**_CT, "format": "pack-quantized"}),
    "ct-int8-channel": (lambda w, _: ct_pack(w, 8, None), {**_CT, "format": "pack-quantized"}),
    "ct-fp8-channel": (lambda w, _: ct_fp8(w), {**_CT, "format": "float-quantized"}),
    "ct-fp8-block": (lambda w, _: ct_fp8(w, 8), {**_CT, "format": "float-quantized"}),
    "ct-nvfp4": (lambda w, _: ct_nvfp4(w), {**_CT, "format": "nvfp4-pack-quantized"}),
    "gptq-act-order": (
        lambda w, seed: gptq(w, 4, 16, act_order=True, seed=seed),
        {"quant_method": "gptq", "bits": 4, "group_size": 16, "desc_act": True},
    ),
    "awq": (lambda w, _: awq(w, 16), {"quant_method": "awq", "bits": 4, "group_size": 16, "version": "gemm"}),
    "bnb-int8": (lambda w, _: bnb_int8(w), {"quant_method": "bitsandbytes", "load_in_8bit": True}),
}


def quantised_model(base: Path, folder: Path, encode, quant_config: dict) -> Path:  # type: ignore[no-untyped-def]
    """Copy the synthetic model at ``base`` to ``folder`` with every attention/MLP projection quantised by
    ``encode(weight, seed) -> {suffix: (dtype, array)}`` (suffixes relative to ``X.``), the rest kept F32."""
    from modeltrace.formats.safetensors import SafetensorsReader

    folder.mkdir(parents=True, exist_ok=True)
    stored: Stored = {}
    with SafetensorsReader(base / "model.safetensors") as reader:
        for seed, name in enumerate(reader.tensors()):
            values = np.asarray(reader.read(name), dtype=np.float32)
            if name.endswith("_proj.weight") and ".layers." in name:
                prefix = name[: -len("weight")]
                for suffix, tensor in encode(values, seed).items():
                    stored[prefix + suffix] = tensor
            else:
                stored[name] = dense(values)
    write_safetensors(folder / "model.safetensors", stored)
    config = json.loads((base / "config.json").read_text())
    config["quantization_config"] = quant_config
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "tokenizer.json").write_text((base / "tokenizer.json").read_text())
    return folder
