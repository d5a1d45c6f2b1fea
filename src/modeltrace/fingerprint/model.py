"""The :class:`Fingerprint` value and its file format.

A fingerprint file is a zip archive holding ``header.json`` (format version, model description,
tensor inventory, anchor tokens, per-block metadata), ``vocabulary.json`` (token strings by id, or
null) and ``arrays.npz`` (float arrays only). Loading never unpickles (``allow_pickle=False``) and
checks every array against the header before use.

What a block keeps (see :mod:`modeltrace.fingerprint.build` for why): for a seeded run of its
hidden units, the unit's input weights expressed in the *token frame* ``W_up · diag(g) · E_Tᵀ``:
how strongly each unit responds to each anchor token's embedding. That frame is invariant to any
permutation, sign flip or rotation of the residual stream and to norm gains folded into weights,
and is comparable between models whose hidden sizes differ. Per attention layer it keeps, the same
way, the value rows of a seeded run of value dimensions (the same run in every head, so that a head
permutation moves whole sampled runs; a band of whole heads for multi-head latent attention): see
:class:`AttentionSample`.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from modeltrace.errors import FingerprintError
from modeltrace.fingerprint.sampling import seeded_rows
from modeltrace.fingerprint.vocabulary import anchor_key, vocabulary_family

FORMAT_NAME = "modeltrace-fingerprint"
#: 2: attention value samples; 3: residual-dimension sample, normalised anchor spellings; 4: units and
#: value dimensions kept as contiguous runs (one range request per tensor), not scattered rows.
FORMAT_VERSION = 4
#: Versions this code reads: a version 1 file is a version 2 file without value rows (no value-sign test);
#: a version 2 file has no residual sample (no residual-dimension test) and raw anchor spellings; a
#: version 3 file holds scattered units, so against a version 4 file no block keeps the same units (no
#: fixed-point test: rebuild the older fingerprint) while every other test still runs.
READABLE_VERSIONS = (1, 2, 3, 4)
#: Largest member accepted when loading (a fingerprint is a few MB; this bounds a zip bomb).
MAX_MEMBER_BYTES = 512 * 1024 * 1024


@dataclass
class BlockSample:
    """The sampled hidden units of one MLP (a layer's, or one expert's)."""

    layer: int
    expert: int | None
    units: int  # hidden units in the block
    unit_rows: np.ndarray  # int64 indices of the units kept
    up: np.ndarray  # [kept units, anchors] token-frame responses of the up projection
    gate: np.ndarray | None  # same for the gate projection (gated MLPs)
    tensors: list[str]
    digest: str  # SHA-256 of the sampled rows as read (equal digests: equal sampled weights)

    @property
    def label(self) -> str:
        return f"{self.layer}" if self.expert is None else f"{self.layer}.e{self.expert}"

    def features(self) -> np.ndarray:
        """Up and gate responses side by side: the signature matched between models."""
        return self.up if self.gate is None else np.concatenate([self.up, self.gate], axis=1)


@dataclass
class AttentionSample:
    """The sampled value dimensions of one attention layer (rows of ``W_v``, head after head)."""

    layer: int
    rows_total: int  # value rows in the layer (kv_heads * head_dim)
    unit_rows: np.ndarray  # int64 indices of the rows kept
    value: np.ndarray  # [kept rows, anchors] token-frame responses of the value projection
    tensor: str
    digest: str  # SHA-256 of the sampled rows as read


@dataclass
class ResidualSample:
    """The anchor tokens' embedding values in a seeded subset of residual dimensions: the columns of
    ``E_T`` in the residual basis, which the token frame deliberately forgets (see
    :mod:`modeltrace.lineage.residual`). The dimensions depend on the seed and the hidden size only,
    so two models of the same width keep the same ones."""

    hidden: int
    dims: np.ndarray  # int64 residual dimensions kept
    columns: np.ndarray  # [anchors, kept dims]
    digest: str  # SHA-256 of the columns as read

    @classmethod
    def from_frame(cls, frame: np.ndarray, keep: int | None, seed: int) -> ResidualSample:
        hidden = frame.shape[1]
        dims = seeded_rows(hidden, hidden if keep is None else keep, seed)
        columns = np.ascontiguousarray(frame[:, dims], dtype=np.float32)
        return cls(hidden, dims, columns, hashlib.sha256(columns.tobytes()).hexdigest())


@dataclass
class Fingerprint:
    """What the lineage tests need from one model, a few MB whatever the model's size."""

    header: dict[str, Any]
    vocabulary: list[str] | None
    anchors: list[tuple[int, str | None]]  # (embedding row, token string or None)
    anchor_gram: np.ndarray  # [anchors, anchors] Gram of the anchor embedding rows (rotation invariant)
    blocks: list[BlockSample] = field(default_factory=list)
    attention: list[AttentionSample] = field(default_factory=list)
    residual: ResidualSample | None = None  # None in files older than version 3

    @property
    def name(self) -> str:
        return str(self.header.get("model", {}).get("name", "model"))

    @property
    def bytes_read(self) -> int:
        return int(self.header.get("bytes_read", 0))

    def layers(self) -> list[int]:
        return sorted({block.layer for block in self.blocks})

    def save(self, path: str | Path) -> int:
        """Write the fingerprint; returns the file size in bytes."""
        arrays: dict[str, np.ndarray] = {"anchor_gram": self.anchor_gram.astype(np.float32)}
        block_meta = []
        for index, block in enumerate(self.blocks):
            arrays[f"b{index}.rows"] = block.unit_rows.astype(np.int64)
            arrays[f"b{index}.up"] = block.up.astype(np.float16)
            if block.gate is not None:
                arrays[f"b{index}.gate"] = block.gate.astype(np.float16)
            block_meta.append(
                {
                    "layer": block.layer,
                    "expert": block.expert,
                    "units": block.units,
                    "gated": block.gate is not None,
                    "tensors": block.tensors,
                    "digest": block.digest,
                }
            )
        attention_meta = []
        for index, sample in enumerate(self.attention):
            arrays[f"a{index}.rows"] = sample.unit_rows.astype(np.int64)
            arrays[f"a{index}.value"] = sample.value.astype(np.float16)
            attention_meta.append(
                {"layer": sample.layer, "rows_total": sample.rows_total, "tensor": sample.tensor,
                 "digest": sample.digest}
            )  # fmt: skip
        residual_meta = None
        if self.residual is not None:
            arrays["residual.dims"] = self.residual.dims.astype(np.int64)
            arrays["residual.columns"] = self.residual.columns.astype(np.float16)
            residual_meta = {"hidden": self.residual.hidden, "digest": self.residual.digest}
        header = {
            **self.header,
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "anchors": [[row, token] for row, token in self.anchors],
            "blocks": block_meta,
            "attention": attention_meta,
            "residual": residual_meta,
        }
        npz = _zip_bytes([(f"{key}.npy", _npy_bytes(array)) for key, array in arrays.items()])
        data = _zip_bytes(
            [
                ("header.json", json.dumps(header).encode("utf-8")),
                ("vocabulary.json", json.dumps(self.vocabulary).encode("utf-8")),
                ("arrays.npz", npz),
            ]
        )
        Path(path).write_bytes(data)
        return len(data)


#: Every member's timestamp (zip's earliest): the same model fingerprinted twice gives the same bytes.
_FIXED_DATE = (1980, 1, 1, 0, 0, 0)


def _zip_bytes(members: list[tuple[str, bytes]]) -> bytes:
    """A deflated zip of ``members`` in the order given whose bytes depend on the members alone: fixed
    timestamps, permissions and creator system (``zipfile`` would stamp the time and the platform)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=_FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, on every platform
            info.external_attr = 0o644 << 16
            archive.writestr(info, data, compresslevel=6)
    return buffer.getvalue()


def _npy_bytes(array: np.ndarray) -> bytes:
    """One array in ``.npy`` format, as ``np.savez`` stores each member (no pickled objects)."""
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def _member(archive: zipfile.ZipFile, name: str, path: Path) -> bytes:
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise FingerprintError(f"Cannot read fingerprint '{path}': member '{name}' is missing.") from None
    if info.file_size > MAX_MEMBER_BYTES:
        raise FingerprintError(f"Cannot read fingerprint '{path}': '{name}' is {info.file_size:,} bytes.")
    return archive.read(name)


def _array(arrays: Any, key: str, path: Path, kind: str) -> np.ndarray:
    if key not in arrays.files:
        raise FingerprintError(f"Cannot read fingerprint '{path}': array '{key}' is missing.")
    value = np.asarray(arrays[key])
    if value.dtype.kind != kind:
        raise FingerprintError(f"Cannot read fingerprint '{path}': array '{key}' has dtype {value.dtype}.")
    return value


def is_fingerprint_file(path: str | Path) -> bool:
    candidate = Path(path)
    if not candidate.is_file() or not zipfile.is_zipfile(candidate):
        return False
    try:
        with zipfile.ZipFile(candidate) as archive:
            return "header.json" in archive.namelist() and "arrays.npz" in archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def load_fingerprint(path: str | Path) -> Fingerprint:
    """Read a fingerprint file written by :meth:`Fingerprint.save`, validating it."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            header = json.loads(_member(archive, "header.json", path))
            vocabulary = json.loads(_member(archive, "vocabulary.json", path))
            npz = _member(archive, "arrays.npz", path)
    except (OSError, zipfile.BadZipFile, ValueError) as error:  # ValueError: JSON, UTF-8, huge ints
        raise FingerprintError(f"Cannot read fingerprint '{path}': {str(error)[:200]}.") from error
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise FingerprintError(f"'{path}' is not a modeltrace fingerprint (no '{FORMAT_NAME}' header).")
    if header.get("format_version") not in READABLE_VERSIONS:
        readable = ", ".join(map(str, READABLE_VERSIONS))
        raise FingerprintError(
            f"Fingerprint '{path}' has format version {header.get('format_version')!r}; this modeltrace "
            f"reads versions {readable}. Rebuild it with `modeltrace fingerprint`."
        )
    if vocabulary is not None and not (
        isinstance(vocabulary, list) and all(isinstance(t, str) for t in vocabulary)
    ):
        raise FingerprintError(f"Cannot read fingerprint '{path}': vocabulary is not a list of strings.")
    try:
        return _decode(path, header, vocabulary, npz)
    except (ValueError, KeyError, TypeError, OSError, zipfile.BadZipFile) as error:  # e.g. an object array
        if isinstance(error, FingerprintError):
            raise
        raise FingerprintError(f"Cannot read fingerprint '{path}': {error}.") from error


def _decode(path: Path, header: dict[str, Any], vocabulary: list[str] | None, npz: bytes) -> Fingerprint:
    try:
        anchors = [(int(row), None if token is None else str(token)) for row, token in header["anchors"]]
        block_meta = list(header["blocks"])
        attention_meta = list(header.get("attention", []))
        residual_meta = header.get("residual")
    except (KeyError, TypeError, ValueError) as error:
        raise FingerprintError(f"Cannot read fingerprint '{path}': malformed header ({error}).") from error
    with np.load(io.BytesIO(npz), allow_pickle=False) as arrays:
        gram = _array(arrays, "anchor_gram", path, "f")
        if gram.shape != (len(anchors), len(anchors)):
            raise FingerprintError(f"Cannot read fingerprint '{path}': anchor Gram shape {gram.shape}.")
        blocks = []
        for index, meta in enumerate(block_meta):
            rows = _array(arrays, f"b{index}.rows", path, "i")
            up = _array(arrays, f"b{index}.up", path, "f").astype(np.float32)
            gate = (
                _array(arrays, f"b{index}.gate", path, "f").astype(np.float32) if meta.get("gated") else None
            )
            if up.shape != (len(rows), len(anchors)) or (gate is not None and gate.shape != up.shape):
                raise FingerprintError(
                    f"Cannot read fingerprint '{path}': block {index} has shape {up.shape}."
                )
            expert = meta.get("expert")
            blocks.append(
                BlockSample(
                    int(meta["layer"]),
                    None if expert is None else int(expert),
                    int(meta["units"]),
                    rows,
                    up,
                    gate,
                    [str(t) for t in meta.get("tensors", [])],
                    str(meta.get("digest", "")),
                )
            )
        attention = [_attention_sample(arrays, index, meta, len(anchors), path)
                     for index, meta in enumerate(attention_meta)]  # fmt: skip
        residual = _residual_sample(arrays, residual_meta, len(anchors), path)
    if header.get("format_version") in (1, 2) and vocabulary is not None:
        # Older files spelled anchors as the tokenizer does; match them under today's spelling.
        family = vocabulary_family(vocabulary)
        anchors = [(row, None if token is None else anchor_key(token, family)) for row, token in anchors]
    kept_apart = ("anchors", "blocks", "attention", "residual")
    header = {key: value for key, value in header.items() if key not in kept_apart}
    return Fingerprint(header, vocabulary, anchors, gram.astype(np.float32), blocks, attention, residual)


def _residual_sample(arrays: Any, meta: Any, anchors: int, path: Path) -> ResidualSample | None:
    if meta is None:
        return None
    if not isinstance(meta, dict) or not isinstance(meta.get("hidden"), int):
        raise FingerprintError(f"Cannot read fingerprint '{path}': malformed residual sample header.")
    dims = _array(arrays, "residual.dims", path, "i")
    columns = _array(arrays, "residual.columns", path, "f").astype(np.float32)
    hidden = int(meta["hidden"])
    if columns.shape != (anchors, len(dims)) or (len(dims) and (dims.min() < 0 or dims.max() >= hidden)):
        raise FingerprintError(f"Cannot read fingerprint '{path}': residual sample of shape {columns.shape}.")
    return ResidualSample(hidden, dims, columns, str(meta.get("digest", "")))


def _attention_sample(
    arrays: Any, index: int, meta: dict[str, Any], anchors: int, path: Path
) -> AttentionSample:
    rows = _array(arrays, f"a{index}.rows", path, "i")
    value = _array(arrays, f"a{index}.value", path, "f").astype(np.float32)
    if value.shape != (len(rows), anchors):
        raise FingerprintError(
            f"Cannot read fingerprint '{path}': attention sample {index} has shape {value.shape}."
        )
    return AttentionSample(
        int(meta["layer"]), int(meta["rows_total"]), rows, value, str(meta.get("tensor", "")),
        str(meta.get("digest", "")),
    )  # fmt: skip
