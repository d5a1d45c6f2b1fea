"""Build a :class:`Fingerprint` from an opened model, reading only the rows it keeps.

Per MLP block it reads a seeded subset of hidden-unit rows of ``up`` (and ``gate``), the MLP
input norm gain, and the embedding rows of a few hundred anchor tokens, then keeps each unit's
response to each anchor token, ``W_up · diag(g) · E_Tᵀ``. Why this slice:

* hidden units are the exchangeable coordinates of training (exact tests need the same units on
  both sides: rows are chosen from a seed and the unit count, so same-shape models agree);
* the token frame removes residual-stream permutations, sign flips and rotations, folds norm gains,
  and makes models of different hidden sizes comparable (anchor tokens match by string);
* rows are what every format can read cheaply (``read_rows``), so a 2 GB model costs a few MB of I/O;
  the kept units are one contiguous run per projection (:func:`~modeltrace.fingerprint.sampling.unit_run`),
  so over HTTP a projection costs one range request (and one for its block scales).

Per attention layer it reads, the same way, the value-projection rows of a seeded run of value
dimensions, the same run in every key/value head (a head permutation then moves whole sampled runs,
which the value-sign test matches); their sign symmetry with the output projection is what
that test's exact null rests on (see :mod:`modeltrace.lineage.paths`).

Tensors stored ``[in, out]`` (GPT-2 Conv1D, ONNX MatMul) must be read whole to get unit rows; the
fingerprint records the bytes actually read either way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from modeltrace.errors import FingerprintError, ModeltraceError
from modeltrace.fingerprint import vocabulary as vocab_module
from modeltrace.fingerprint.mla import mla_attention_samples, mla_geometry
from modeltrace.fingerprint.model import AttentionSample, BlockSample, Fingerprint, ResidualSample
from modeltrace.fingerprint.roles import (
    MlpBlock,
    ValueProjection,
    assign_roles,
    find_value_projections,
    value_projections_from_graph,
)
from modeltrace.fingerprint.sampling import (
    DEFAULT_SEED,
    anchor_tokens,
    head_band,
    head_runs,
    seeded_rows,
    unit_run,
)
from modeltrace.formats import vocabulary as vocabulary_files
from modeltrace.formats.base import TensorReader
from modeltrace.formats.capabilities import HasGraph, HasVocabulary, ReadsFlatRows, ReportsQuantization
from modeltrace.formats.source import ModelSource
from modeltrace.inspect import config_keys
from modeltrace.inspect.describe import architecture_card
from modeltrace.inspect.dimensions import dims_from_config, dims_from_gguf

MAX_INVENTORY = 20_000
#: Config keys copied into the header: the model's names and its shape hyper-parameters.
_CONFIG_KEYS = ("model_type", "architectures", *config_keys.HYPERPARAMETERS)
#: The architecture card's figures a fingerprint carries (header ``card``), so that whoever holds only
#: the fingerprint (``registry add model.mtfp``, an upload) records what ``modeltrace inspect`` reports.
#: The header's ``parameters`` is another figure: the plain sum of the tensors the reader lists, saved
#: buffers (rotary ``inv_freq``) and multi-token-prediction modules included.
CARD_KEYS = ("total_params", "active_params", "embedding_params", "head_params", "mtp_params", "layers")


@dataclass(frozen=True)
class Budget:
    """How much a fingerprint keeps. ``full()`` is the full-weight path used for verification."""

    units_per_block: int | None = 128  # None: every unit
    anchors_by_string: int = 256
    anchors_by_index: int = 64
    #: Routed experts kept per MoE layer (None: every expert). 4 keeps a Kimi K2 / K2.5 fingerprint
    #: under 2 000 HTTP requests (docs/scale.md): each kept expert costs about four (two projections,
    #: each a run of rows and its scales).
    experts_per_layer: int | None = 4
    value_rows_per_layer: int | None = 128  # attention value rows kept per layer (None: all)
    residual_dims: int | None = 512  # residual dimensions whose anchor-embedding columns are kept
    seed: int = DEFAULT_SEED
    read_whole: bool = False  # read every MLP tensor whole (the full-weight path) instead of its rows

    @classmethod
    def full(cls) -> Budget:
        """The full-weight path: whole tensors read, 4x the units and twice the anchors, every expert.
        (Every unit of a 5,632-unit layer would make the unit matching O(n^3) for no gain in validity.)"""
        return cls(
            units_per_block=512,
            anchors_by_string=384,
            anchors_by_index=128,
            experts_per_layer=None,
            value_rows_per_layer=512,
            residual_dims=1024,
            read_whole=True,
        )


def _vocabulary(source: ModelSource) -> tuple[list[str] | None, str | None]:
    reader = source.weights
    if isinstance(reader, HasVocabulary):
        tokens = reader.vocabulary()
        if tokens:
            return [str(token) for token in tokens], f"{source.format} metadata"
    return vocabulary_files.from_files(source.tokenizer_files)


def _card_figures(source: ModelSource) -> dict[str, Any] | None:
    """The card's :data:`CARD_KEYS`, or None where ``inspect`` cannot read the model's config (the
    fingerprint does not need it, so that is no reason to refuse one)."""
    try:
        card = architecture_card(source).as_dict()
    except ModeltraceError:
        return None
    return {key: card[key] for key in CARD_KEYS}


def _select_blocks(blocks: tuple[MlpBlock, ...], budget: Budget) -> list[MlpBlock]:
    """All dense blocks; for MoE layers the shared expert plus a seeded subset of routed experts."""
    if budget.experts_per_layer is None:
        return list(blocks)
    chosen: list[MlpBlock] = []
    by_layer: dict[int, list[MlpBlock]] = {}
    for block in blocks:
        by_layer.setdefault(block.layer, []).append(block)
    for layer_blocks in by_layer.values():
        routed = [block for block in layer_blocks if block.expert is not None and block.expert >= 0]
        if len(routed) <= budget.experts_per_layer:
            chosen.extend(layer_blocks)
            continue
        keep = set(seeded_rows(len(routed), budget.experts_per_layer, budget.seed).tolist())
        chosen.extend(b for b in layer_blocks if b.expert is None or b.expert < 0)
        chosen.extend(block for position, block in enumerate(routed) if position in keep)
    return chosen


def _unit_rows(
    reader: TensorReader, name: str, block: MlpBlock, rows: np.ndarray, offset: int, whole: bool = False
) -> np.ndarray:
    """Rows ``rows`` (+ ``offset`` for the up half of a fused tensor) in ``[units, hidden]`` layout."""
    if block.interleaved:
        return _interleaved_expert_rows(reader, name, block, rows, up=offset != 0)
    if block.stacked:
        return _expert_slice_rows(reader, name, block, rows, whole)
    if whole and not block.transposed:
        return np.asarray(reader.read(name), dtype=np.float32)[rows + offset]
    if block.transposed:
        return np.asarray(reader.read(name), dtype=np.float32)[:, rows + offset].T
    return np.asarray(reader.read_rows(name, rows + offset), dtype=np.float32)


def _expert_slice_rows(
    reader: TensorReader, name: str, block: MlpBlock, rows: np.ndarray, whole: bool
) -> np.ndarray:
    """Rows of expert ``block.expert`` of a stacked ``[n_expert, units, hidden]`` tensor.

    Row ``r`` of expert ``e`` is row ``e * units + r`` of the tensor viewed as a matrix; a reader
    with ``read_flat_rows`` (GGUF) fetches just those (``whole``: all of this expert's rows, never
    the other experts'), any other reader reads the stacked tensor whole.
    """
    expert = int(block.expert or 0)
    if not isinstance(reader, ReadsFlatRows):
        return np.asarray(reader.read(name), dtype=np.float32)[expert][rows]
    first = expert * block.units
    if whole:
        wanted = np.arange(first, first + block.units)
        return np.asarray(reader.read_flat_rows(name, wanted), dtype=np.float32)[rows]
    return np.asarray(reader.read_flat_rows(name, rows + first), dtype=np.float32)


def _interleaved_expert_rows(
    reader: TensorReader, name: str, block: MlpBlock, rows: np.ndarray, up: bool
) -> np.ndarray:
    """Gate (row ``2j``) or up (row ``2j + 1``) rows of one expert of a gpt-oss ``gate_up_proj``.

    Stored ``[n_expert, 2 * units, hidden]`` (MXFP4) the rows are fetched alone; stored
    ``[n_expert, hidden, 2 * units]`` (bf16) the expert's own ``[hidden, 2 * units]`` slab is read.
    """
    expert = int(block.expert or 0)
    index = 2 * rows + (1 if up else 0)
    shape = reader.tensors()[name].shape
    flat_reader = reader.read_flat_rows if isinstance(reader, ReadsFlatRows) else None
    if block.transposed:
        hidden = shape[1]
        if flat_reader is None:
            return np.asarray(reader.read(name), dtype=np.float32)[expert][:, index].T
        slab = flat_reader(name, np.arange(expert * hidden, (expert + 1) * hidden))
        return np.asarray(slab, dtype=np.float32)[:, index].T
    if flat_reader is None:
        return np.asarray(reader.read(name), dtype=np.float32)[expert][index]
    return np.asarray(flat_reader(name, index + expert * shape[1]), dtype=np.float32)


def _gain_offset(source: ModelSource) -> float:
    """What a norm adds to its stored weight: Gemma's RMSNorm scales by ``1 + w`` in Hugging Face
    checkpoints (llama.cpp's converter adds the 1 when writing GGUF, so GGUF files store the gain)."""
    model_type = str((source.config or {}).get("model_type", ""))
    return 1.0 if model_type.startswith("gemma") and source.format != "gguf" else 0.0


class _Gains:
    """Norm gain vectors, each read once (the experts of a layer share one norm: one request in all)."""

    def __init__(self, reader: TensorReader, offset: float) -> None:
        self._reader = reader
        self._offset = np.float32(offset)
        self._read: dict[str, np.ndarray] = {}

    def __call__(self, name: str | None, hidden: int) -> np.ndarray:
        """The gain vector of the norm feeding a projection; ones when there is none (or not [hidden])."""
        if name is not None:
            if name not in self._read:
                self._read[name] = np.asarray(self._reader.read(name), dtype=np.float32).reshape(-1)
            values = self._read[name]
            if values.shape == (hidden,):
                return values + self._offset
        return np.ones(hidden, dtype=np.float32)


def _block_sample(
    reader: TensorReader, block: MlpBlock, frame: np.ndarray, hidden: int, budget: Budget, gains: _Gains
) -> BlockSample:
    keep = block.units if budget.units_per_block is None else budget.units_per_block
    rows = unit_run(block.units, keep, budget.seed)
    gain = gains(block.norm, hidden)
    hasher = hashlib.sha256()
    tensors = [block.up] + ([block.gate] if block.gate else [])
    if block.fused:
        up_rows = _unit_rows(reader, block.up, block, rows, block.units, budget.read_whole)
        gate_rows: np.ndarray | None = _unit_rows(reader, block.up, block, rows, 0, budget.read_whole)
    else:
        up_rows = _unit_rows(reader, block.up, block, rows, 0, budget.read_whole)
        gate_rows = _unit_rows(reader, block.gate, block, rows, 0, budget.read_whole) if block.gate else None
    for part in (up_rows, gate_rows):
        if part is not None:
            hasher.update(np.ascontiguousarray(part, dtype=np.float32).tobytes())
    # Token frame: response of each kept unit to each anchor token's (normalised-input) embedding.
    up = (up_rows * gain) @ frame.T
    gate = None if gate_rows is None else (gate_rows * gain) @ frame.T
    return BlockSample(block.layer, block.expert, block.units, rows, up, gate, tensors, hasher.hexdigest())


def _value_geometry(source: ModelSource) -> tuple[int, int] | None:
    """``(kv_heads, value head_dim)`` from the config or GGUF metadata, when both are stated."""
    dims = dims_from_config(source.config) if source.config else None
    metadata = source.weights.metadata if source.weights is not None else None
    if (dims is None or dims.kv_heads is None) and metadata:
        dims = dims_from_gguf(metadata)
        arch = metadata.get("general.architecture")
        value_length = metadata.get(f"{arch}.attention.value_length")
        if dims is not None and dims.kv_heads and isinstance(value_length, int) and value_length > 0:
            return dims.kv_heads, value_length
    if dims is None or not dims.kv_heads or not dims.head_dim or dims.attention == "mla":
        return None
    return dims.kv_heads, dims.head_dim


#: Without the head layout a fingerprint keeps this many times more value rows: the other model's
#: fingerprint may know its heads and sample by head, and its rows must find their twins here.
UNKNOWN_HEADS_FACTOR = 4


def value_rows(rows_total: int, keep: int | None, geometry: tuple[int, int] | None, seed: int) -> np.ndarray:
    """Which value rows to keep: the same seeded dimensions of every head when the head layout is known
    (so head permutations keep the sample), else more seeded rows (all of a small layer's)."""
    if keep is None or keep >= rows_total:
        return np.arange(rows_total, dtype=np.int64)
    if geometry is not None and geometry[0] * geometry[1] == rows_total:
        return head_runs(geometry[0], geometry[1], keep, seed)
    return unit_run(rows_total, UNKNOWN_HEADS_FACTOR * keep, seed)


def mla_value_rows(rows_total: int, keep: int | None, geometry: tuple[int, int], seed: int) -> np.ndarray:
    """Which value dimensions of multi-head latent attention to keep: every dimension of a seeded band
    of whole heads (one range of ``kv_b_proj``; a run in each of its 64-128 heads would be a request
    per head)."""
    if keep is None or keep >= rows_total:
        return np.arange(rows_total, dtype=np.int64)
    return head_band(geometry[0], geometry[1], keep, seed)


def _attention_sample(
    reader: TensorReader,
    projection: ValueProjection,
    frame: np.ndarray,
    hidden: int,
    budget: Budget,
    geometry: tuple[int, int] | None,
    gains: _Gains,
) -> AttentionSample:
    rows = value_rows(projection.rows, budget.value_rows_per_layer, geometry, budget.seed)
    wanted = rows + projection.offset
    if projection.transposed:
        values = np.asarray(reader.read(projection.tensor), dtype=np.float32)[:, wanted].T
    elif budget.read_whole:
        values = np.asarray(reader.read(projection.tensor), dtype=np.float32)[wanted]
    else:
        values = np.asarray(reader.read_rows(projection.tensor, wanted), dtype=np.float32)
    gain = gains(projection.norm, hidden)
    digest = hashlib.sha256(np.ascontiguousarray(values, dtype=np.float32).tobytes()).hexdigest()
    return AttentionSample(projection.layer, projection.rows, rows, (values * gain) @ frame.T,
                           projection.tensor, digest)  # fmt: skip


def build_fingerprint(
    source: ModelSource,
    budget: Budget | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Fingerprint:
    """Fingerprint an opened model. ``progress(done, total)`` is called once per block."""
    budget = budget or Budget()
    reader = source.weights
    if reader is None:
        raise FingerprintError(f"'{source.path}' has no weights to fingerprint (only a configuration).")
    tensors = reader.tensors()
    config = source.config or {}
    tokens, vocab_source = _vocabulary(source)
    vocab_size = config.get("vocab_size") if isinstance(config.get("vocab_size"), int) else None
    graph = reader.graph() if isinstance(reader, HasGraph) else None
    roles = assign_roles(
        tensors,
        vocab_size=vocab_size or (len(tokens) if tokens else None),
        hidden_size=config.get("hidden_size") if isinstance(config.get("hidden_size"), int) else None,
        format=source.format,
        graph=graph,
    )
    if roles.embedding is None or roles.hidden_size is None:
        raise FingerprintError(
            f"Cannot fingerprint '{source.path}': no token-embedding matrix found among "
            f"{len(tensors)} tensors (looked for embed_tokens/wte/word_embeddings/token_embd or a "
            "[vocab_size, hidden] matrix)."
        )
    embedding_rows = tensors[roles.embedding].shape[0]
    if tensors[roles.embedding].numel == 0 or embedding_rows > vocabulary_files.MAX_VOCAB:
        # Sampling ranks every row: a zero-width embedding declaring 2**40 rows costs no bytes on
        # disk and would take all memory.
        raise FingerprintError(
            f"Cannot fingerprint '{source.path}': token embedding '{roles.embedding}' "
            f"{list(tensors[roles.embedding].shape)} is empty or over {vocabulary_files.MAX_VOCAB:,} rows."
        )
    # Anchors are chosen and matched by their family-independent spelling (fingerprint/vocabulary.py).
    keys = vocab_module.anchor_keys(tokens) if tokens else None
    anchors = anchor_tokens(
        keys, embedding_rows, budget.anchors_by_string, budget.anchors_by_index, budget.seed
    )
    frame = np.asarray(reader.read_rows(roles.embedding, [row for row, _ in anchors]), dtype=np.float32)
    residual = ResidualSample.from_frame(frame, budget.residual_dims, budget.seed)
    blocks = _select_blocks(roles.blocks, budget)
    samples = []
    gains = _Gains(reader, _gain_offset(source))
    for done, block in enumerate(blocks, start=1):
        samples.append(_block_sample(reader, block, frame, roles.hidden_size, budget, gains))
        if progress is not None:
            progress(done, len(blocks))
    geometry = _value_geometry(source)
    # Value rows by name, or from the graph; never from storage order (the test's null needs values).
    if roles.method == "names":
        value_rows_total = geometry[0] * geometry[1] if geometry else None
        projections = find_value_projections(tensors, roles.hidden_size, value_rows_total)
    else:
        projections = value_projections_from_graph(graph, tensors, roles.hidden_size)
    attention = [
        _attention_sample(reader, p, frame, roles.hidden_size, budget, geometry, gains) for p in projections
    ]
    if roles.method == "names" and not attention:  # MLA: values are rows of kv_b_proj (see fingerprint.mla)
        attention = mla_attention_samples(
            reader, tensors, config, frame, roles.hidden_size,
            lambda total, heads: mla_value_rows(total, budget.value_rows_per_layer, heads, budget.seed),
            budget.read_whole,
        )  # fmt: skip
        mla = mla_geometry(config)
        if attention and mla is not None:
            geometry = (mla.heads, mla.v_dim)
    inventory = [[name, list(info.shape), info.dtype] for name, info in list(tensors.items())[:MAX_INVENTORY]]
    header: dict[str, Any] = {
        # Where the model was read (its URL when remote), for people: the same files at another path
        # give the same fingerprint but other bytes (docs/lineage.md).
        "model": {"name": source.name, "path": source.display, "format": source.format},
        "config": {key: config[key] for key in _CONFIG_KEYS if key in config},
        "inventory": inventory,
        "inventory_truncated": len(tensors) > MAX_INVENTORY,
        "parameters": int(sum(info.numel for info in tensors.values())),
        "card": _card_figures(source),
        "dtypes": sorted({info.dtype for info in tensors.values()}),
        "hidden_size": roles.hidden_size,
        "embedding": roles.embedding,
        "embedding_rows": embedding_rows,
        "role_method": roles.method,
        "mlp_blocks_total": len(roles.blocks),
        "declared_base_models": list(source.declared.base_models),  # claims: direction evidence only
        "vocabulary_source": vocab_source,
        "anchor_spelling": vocab_module.vocabulary_family(tokens),
        "tokenizer_digest": vocab_module.digest(tokens),
        "seed": budget.seed,
        "budget": {
            "units_per_block": budget.units_per_block,
            "experts_per_layer": budget.experts_per_layer,
            "value_rows_per_layer": budget.value_rows_per_layer,
            "anchors": [budget.anchors_by_string, budget.anchors_by_index],
            "residual_dims": budget.residual_dims,
        },
        "bytes_read": reader.bytes_read,
        "total_bytes": reader.total_bytes,
    }
    header["value_geometry"] = list(geometry) if geometry else None
    quantised = isinstance(reader, ReportsQuantization)
    header["quantization"] = reader.quantization_summary() if quantised else None
    return Fingerprint(header, tokens, anchors, frame @ frame.T, samples, attention, residual)
