"""GGUF reader (llama.cpp files): tensors in numpy order, dequantised on read, ``general.*`` claims.

Shapes are reported in numpy order (rows first), the reverse of GGUF's ``ne`` list, so a Llama
``token_embd.weight`` is ``(vocab, hidden)`` as in the Hugging Face checkpoint it came from. The
dtype is the ggml type name (``F32``, ``F16``, ``BF16``, ``Q8_0``, ``Q4_K`` ...). Quantised tensors
are dequantised to float32 by ``gguf.quants.dequantize`` (every type the ``gguf`` package knows:
the legacy ``Q4_0``..``Q8_0``, the K-quants ``Q2_K``..``Q6_K``, the IQ types, TQ, MXFP4).

GGUF stores each row (one ``ne0`` run) as whole blocks, and the rows of a tensor back to back, so
``read_rows`` fetches only the blocks of the rows asked for.

``metadata`` holds every key/value; arrays longer than 64 items are summarised as
``{"type": "array", "element_type": ..., "length": n}``. The vocabulary
(``tokenizer.ggml.tokens``) is kept in full and returned by :meth:`GGUFReader.vocabulary`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType
from gguf.quants import dequantize

from modeltrace.errors import UnsupportedFormatError
from modeltrace.formats._gguf_header import parse_header
from modeltrace.formats.base import DENSE_ITEMSIZE, TensorReader, decode_dense, read_dense_rows, row_runs
from modeltrace.types import Declared, TensorInfo

_HF_REPO_URL = re.compile(r"^https?://(?:www\.)?huggingface\.co/([^/\s]+/[^/\s]+?)/?$")
#: ``general.*`` keys copied into ``Declared.extra`` (provenance hints beyond the named fields).
_EXTRA_KEYS = (
    "general.architecture",
    "general.organization",
    "general.author",
    "general.version",
    "general.finetune",
    "general.basename",
    "general.size_label",
    "general.quantized_by",
    "general.license.link",
    "general.url",
    "general.repo_url",
    "general.source.url",
    "general.source.repo_url",
    "general.source.huggingface.repository",
)


def _text(value: object) -> str | None:
    return (value.strip() or None) if isinstance(value, str) else None


def _count(value: object) -> int:
    # Counts come from the file: bound them so a hostile count cannot make us loop for long.
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return 0
    return min(value, 10_000)


class GGUFReader(TensorReader):
    """One ``.gguf`` file (version 2 or 3, little-endian)."""

    format = "gguf"

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        header = parse_header(self.open_file(self.path))
        self.version = header.version
        self.alignment = header.alignment
        self.metadata.update(header.metadata)
        self._tensors = header.tensors
        self._vocabulary = header.kept_arrays.get("tokenizer.ggml.tokens")

    # -- TensorReader ----------------------------------------------------------------------------

    def tensors(self) -> Mapping[str, TensorInfo]:
        return self._tensors

    def raw(self, name: str) -> bytes:
        info = self.info(name)
        return self.open_file(info.file).read(info.offset, info.nbytes)

    def read(self, name: str) -> np.ndarray:
        info = self.info(name)
        return self._decode(self.raw(name), info, info.shape)

    def read_rows(self, name: str, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        return self._read_rows(self.info(name), rows)

    def read_flat_rows(self, name: str, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """Rows of ``name`` viewed as a matrix ``[prod(shape[:-1]), shape[-1]]``.

        A MoE file stacks its routed experts in one 3-D tensor ``[n_expert, rows, cols]``
        (``blk.N.ffn_up_exps``); row ``r`` of expert ``e`` is flat row ``e * rows + r``. GGUF stores
        every ``ne0`` run back to back, so this reads only the blocks of the rows asked for.
        """
        info = self.info(name)
        if len(info.shape) <= 2:
            return self._read_rows(info, rows)
        leading = int(np.prod(info.shape[:-1], dtype=np.int64))
        return self._read_rows(replace(info, shape=(leading, info.shape[-1])), rows)

    def _read_rows(self, info: TensorInfo, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        name = info.name
        if info.dtype in DENSE_ITEMSIZE:
            return read_dense_rows(self, info, rows)
        wanted = [int(row) for row in rows]
        if len(info.shape) < 2:
            # A 1-D quantised tensor packs several "rows" (single values) per block; such tensors are
            # tiny (none in practice), so read it whole and index.
            runs = row_runs(wanted, info.shape[0] if info.shape else 0, info.file, info.name)
            values = self.read(name) if runs else np.empty((0,), np.float32)
            return values[wanted] if wanted else values
        row_shape = info.shape[1:]
        row_bytes = info.nbytes // info.shape[0] if info.shape[0] else 0
        handle = self.open_file(info.file)
        fetched: dict[int, np.ndarray] = {}
        for start, stop in row_runs(wanted, info.shape[0], info.file, info.name):
            block = handle.read(info.offset + start * row_bytes, (stop - start) * row_bytes)
            values = self._decode(block, info, (stop - start, *row_shape))
            for index, row in enumerate(range(start, stop)):
                fetched[row] = values[index]
        if not wanted:
            return np.empty((0, *row_shape), dtype=np.float32)
        return np.stack([fetched[row] for row in wanted])

    @staticmethod
    def _decode(buffer: bytes, info: TensorInfo, shape: tuple[int, ...]) -> np.ndarray:
        if info.dtype in DENSE_ITEMSIZE:
            return decode_dense(buffer, info.dtype, shape)
        quant_type = GGMLQuantizationType[info.dtype]
        if info.nbytes == 0 or 0 in shape:
            return np.zeros(shape, dtype=np.float32)
        # One GGUF row (ne0 values) per line, so dequantize sees whole blocks in every line.
        row_length = shape[-1] if shape else 1
        element_count = int(np.prod(shape, dtype=np.int64))
        line_count = element_count // row_length if row_length else 0
        blocks = np.frombuffer(buffer, dtype=np.uint8).reshape(line_count, -1)
        try:
            with np.errstate(over="ignore", invalid="ignore"):  # damaged scales decode to inf/NaN, quietly
                values = dequantize(blocks, quant_type)
        except NotImplementedError:
            raise UnsupportedFormatError(
                info.file, f"tensor '{info.name}' uses {info.dtype}, which cannot be dequantised yet"
            ) from None
        return np.asarray(values, dtype=np.float32).reshape(shape)

    # -- GGUF specifics --------------------------------------------------------------------------

    def vocabulary(self) -> list[str] | None:
        """The token strings (``tokenizer.ggml.tokens``) in id order, or None if the file has none.

        Invalid UTF-8 in a token is kept as surrogate escapes (``str.encode('utf-8',
        'surrogateescape')`` gives back the exact bytes), so distinct byte tokens stay distinct.
        """
        return list(self._vocabulary) if self._vocabulary is not None else None

    def declared(self) -> Declared:
        """Lineage claims from the ``general.*`` keys written by llama.cpp's converter.

        A base model is named by its Hugging Face repo id when ``general.base_model.N.repo_url``
        points at huggingface.co, else ``organization/name``, else ``name``.
        """
        meta = self.metadata
        base_models = []
        for index in range(_count(meta.get("general.base_model.count"))):
            base = _base_model_name(meta, f"general.base_model.{index}")
            if base:
                base_models.append(base)
        datasets = []
        for index in range(_count(meta.get("general.dataset.count"))):
            dataset = _base_model_name(meta, f"general.dataset.{index}")
            if dataset:
                datasets.append(dataset)
        legacy = meta.get("general.datasets")
        if isinstance(legacy, list):
            datasets.extend(item for item in legacy if isinstance(item, str) and item not in datasets)
        extra = {key: str(meta[key]) for key in _EXTRA_KEYS if _text(meta.get(key))}
        return Declared(
            base_models=tuple(base_models),
            license=_text(meta.get("general.license")),
            license_name=_text(meta.get("general.license.name")),
            datasets=tuple(datasets),
            name=_text(meta.get("general.name")),
            source="GGUF general.* metadata",
            extra=extra,
        )


def _base_model_name(meta: Mapping[str, object], prefix: str) -> str | None:
    repo_url = _text(meta.get(f"{prefix}.repo_url"))
    if repo_url:
        match = _HF_REPO_URL.match(repo_url)
        if match:
            return match.group(1)
    name = _text(meta.get(f"{prefix}.name"))
    organization = _text(meta.get(f"{prefix}.organization"))
    if name and organization:
        return f"{organization}/{name}"
    return name or repo_url


#: The ``tokenizer.ggml.*`` arrays a tokenizer can be rebuilt from (see probe/gguf_vocab.py).
TOKENIZER_ARRAYS = frozenset(
    {"tokenizer.ggml.tokens", "tokenizer.ggml.merges", "tokenizer.ggml.token_type", "tokenizer.ggml.scores"}
)


def read_gguf_metadata(
    path: str | Path, keep: frozenset[str] = TOKENIZER_ARRAYS
) -> tuple[dict[str, object], dict[str, list[object]]]:
    """(metadata, arrays named in ``keep`` in full) of a GGUF file, parsed defensively; no tensor data."""
    from modeltrace.formats.base import RangeFile

    handle = RangeFile(path)
    try:
        header = parse_header(handle, keep)
    finally:
        handle.close()
    return header.metadata, header.kept_arrays
