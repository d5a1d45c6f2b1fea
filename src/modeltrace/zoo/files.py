"""Writing zoo models to disk: a minimal safetensors writer and the Hugging Face folder layout.

The writer needs only numpy, so ``modeltrace zoo build`` works from a plain install with the
``torch`` extra; the ``safetensors`` package checks its output in the tests.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from modeltrace.errors import ZooError
from modeltrace.zoo.arch import ArchConfig, config_from_hf
from modeltrace.zoo.corpus import write_tokenizer

_SAFETENSORS_DTYPE = {
    np.dtype("float32"): "F32", np.dtype("float16"): "F16", np.dtype("int8"): "I8",
    np.dtype("uint8"): "U8", np.dtype("int32"): "I32", np.dtype("int64"): "I64",
}  # fmt: skip


def write_safetensors(
    path: Path,
    tensors: Mapping[str, np.ndarray],
    dtypes: Mapping[str, str] | None = None,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write ``tensors`` (in the given order) as one safetensors file.

    ``dtypes`` overrides the stored dtype name of a tensor whose bytes numpy cannot type, e.g.
    ``F8_E4M3`` codes held in a uint8 array.
    """
    dtypes = dtypes or {}
    header: dict[str, Any] = {"__metadata__": dict(metadata)} if metadata else {}
    blobs: list[bytes] = []
    offset = 0
    for name, array in tensors.items():
        contiguous = np.ascontiguousarray(array)
        dtype = dtypes.get(name) or _SAFETENSORS_DTYPE.get(contiguous.dtype)
        if dtype is None:
            raise ZooError(f"cannot store tensor '{name}' of numpy dtype {contiguous.dtype} in safetensors")
        blob = contiguous.astype(contiguous.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {
            "dtype": dtype,
            "shape": list(contiguous.shape),
            "data_offsets": [offset, offset + len(blob)],
        }
        blobs.append(blob)
        offset += len(blob)
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-len(encoded) % 8)  # the format asks for the data buffer to start 8-aligned
    with path.open("wb") as handle:
        handle.write(struct.pack("<Q", len(encoded)))
        handle.write(encoded)
        for blob in blobs:
            handle.write(blob)
    return path


def write_json(path: Path, payload: Any) -> Path:
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return path


def write_hf_folder(
    folder: Path,
    config: ArchConfig,
    tensors: Mapping[str, np.ndarray],
    vocab: list[str],
    dtypes: Mapping[str, str] | None = None,
    extra_config: Mapping[str, Any] | None = None,
) -> Path:
    """``config.json`` + ``model.safetensors`` + ``tokenizer.json``, as ``save_pretrained`` lays out."""
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "config.json", {**config.hf_config(), **(extra_config or {})})
    write_tokenizer(folder, vocab)
    write_safetensors(folder / "model.safetensors", tensors, dtypes, metadata={"format": "pt"})
    return folder


def read_hf_folder(folder: Path) -> tuple[dict[str, np.ndarray], ArchConfig, list[str]]:
    """Read a zoo model folder back: (float32 parameters by HF name, config, vocabulary by id).

    Goes through modeltrace's own reader, which dequantises FP8 weights with block scales and int8
    weights with a per-row ``weight_scale`` (the compressed-tensors layout the zoo writes).
    """
    from modeltrace.formats import open_model

    with open_model(folder) as source:
        if source.weights is None or source.config is None:
            raise ZooError(
                f"'{folder}' is not a zoo model folder (needs config.json and safetensors weights)"
            )
        tensors = {name: source.weights.read(name) for name in source.weights.tensors()}
        config = config_from_hf(source.config)
    tokenizer = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    vocab_map: dict[str, int] = tokenizer["model"]["vocab"]
    vocab = sorted(vocab_map, key=vocab_map.__getitem__)
    return {name: value.astype(np.float32) for name, value in tensors.items()}, config, vocab
