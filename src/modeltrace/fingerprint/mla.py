"""Value rows of multi-head latent attention (MLA: DeepSeek-V2/V3, Kimi K2/K2.5, GLM-5), for the
value-sign test.

MLA has no ``v_proj``. Keys and values come out of one latent: ``c = kv_a_layernorm(kv_a(x)[:kv_lora])``
(``kv_a_proj_with_mqa``'s first ``kv_lora_rank`` rows; the rest feed the shared rotary key), then
``kv_b_proj`` maps ``c`` to every head's keys and values. Its rows are, per head ``h``, ``qk_nope_head_dim``
key rows followed by ``v_head_dim`` value rows (transformers' DeepSeek-V3 attention views the output
as ``[heads, nope + v]`` and splits it ``[nope, v]``), so value dimension ``j`` of head ``h`` is row
``h * (nope + v) + nope + j``, and the output projection reads it as column ``h * v + j`` of ``o_proj``.

The symmetry the test needs holds exactly: flipping the sign of one such ``kv_b_proj`` row and of the
matching ``o_proj`` column changes nothing the network computes (attention weights do not depend on
values, rotary embeddings touch only the ``qk_rope_head_dim`` key/query slice, and no bias or norm
sits between the value and ``o_proj``), the initialisation is symmetric, and elementwise optimisers are
equivariant under the flip.

What the fingerprint keeps for a value dimension is its row of the *composed* value map from the
attention input to that value: ``w_v · diag(g_kv) · W_kv_a[:kv_lora] · diag(g_in)``, in the token frame
like every other row. The latent's RMS normalisation only rescales each token by a positive factor, so
it cannot move a sign. The composed row flips exactly when ``w_v`` does; the latent map itself is shared
by every value and key, and is read whole (``kv_lora_rank`` rows of ``kv_a_proj_with_mqa``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from modeltrace.fingerprint.model import AttentionSample
from modeltrace.formats.base import TensorReader
from modeltrace.inspect.layouts import text_config
from modeltrace.types import TensorInfo

_LAYER = re.compile(r"(?:^|\.)layers\.(\d+)\.(.*)$")
_KV_B = "self_attn.kv_b_proj.weight"
_KV_A = "self_attn.kv_a_proj_with_mqa.weight"
_KV_NORM = "self_attn.kv_a_layernorm.weight"
_OUTPUT = "self_attn.o_proj.weight"
_INPUT_NORM = "input_layernorm.weight"


@dataclass(frozen=True)
class MlaGeometry:
    """Head layout of MLA from the config: ``heads`` heads of ``nope`` key and ``v_dim`` value rows."""

    heads: int
    nope: int
    v_dim: int
    kv_lora: int

    @property
    def value_rows(self) -> int:
        return self.heads * self.v_dim

    def tensor_rows(self, value_rows: np.ndarray) -> np.ndarray:
        """``kv_b_proj`` rows of value dimensions numbered head after head (``h * v_dim + j``)."""
        head, dim = np.divmod(np.asarray(value_rows, dtype=np.int64), self.v_dim)
        return head * (self.nope + self.v_dim) + self.nope + dim


@dataclass(frozen=True)
class MlaValues:
    """One MLA layer's tensors, as the value-sign test reads them."""

    layer: int
    kv_b: str
    kv_a: str
    kv_norm: str | None
    input_norm: str | None
    geometry: MlaGeometry


def mla_geometry(config: Mapping[str, Any] | None) -> MlaGeometry | None:
    """The MLA head layout the (text part of the) config states, or None."""
    if not config:
        return None
    text = text_config(config)
    sizes: list[int] = []
    for key in ("num_attention_heads", "qk_nope_head_dim", "v_head_dim", "kv_lora_rank"):
        value = text.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= 1 << 24:
            return None
        sizes.append(value)
    heads, nope, v_dim, kv_lora = sizes
    return MlaGeometry(heads, nope, v_dim, kv_lora)


def find_mla_values(
    tensors: Mapping[str, TensorInfo], hidden: int, geometry: MlaGeometry | None
) -> tuple[MlaValues, ...]:
    """Each layer's MLA value tensors, by name, when their shapes agree with ``geometry``.

    Without the config's head layout nothing is read: the value rows cannot be told from the key
    rows of ``kv_b_proj`` by shape alone, and the test's null needs them to be values.
    """
    if geometry is None:
        return ()
    by_layer: dict[int, dict[str, str]] = {}
    for name in tensors:
        match = _LAYER.search(name)
        if match:
            by_layer.setdefault(int(match.group(1)), {})[match.group(2)] = name
    found = []
    g = geometry
    for layer in sorted(by_layer):
        names = by_layer[layer]
        kv_b, kv_a, output = names.get(_KV_B), names.get(_KV_A), names.get(_OUTPUT)
        if kv_b is None or kv_a is None:
            continue
        a_shape = tensors[kv_a].shape
        if tensors[kv_b].shape != (g.heads * (g.nope + g.v_dim), g.kv_lora):
            continue
        if len(a_shape) != 2 or a_shape[1] != hidden or a_shape[0] < g.kv_lora:
            continue
        if output is not None and tensors[output].shape != (hidden, g.value_rows):
            continue  # o_proj disagrees with the value layout: do not guess which rows are values
        found.append(MlaValues(layer, kv_b, kv_a, names.get(_KV_NORM), names.get(_INPUT_NORM), g))
    return tuple(found)


def _gain(reader: TensorReader, name: str | None, size: int) -> np.ndarray:
    if name is not None:
        values = np.asarray(reader.read(name), dtype=np.float32).reshape(-1)
        if values.shape == (size,):
            return values
    return np.ones(size, dtype=np.float32)


def mla_value_sample(
    reader: TensorReader,
    values: MlaValues,
    rows: np.ndarray,
    frame: np.ndarray,
    read_whole: bool,
) -> AttentionSample:
    """The token-frame responses of value dimensions ``rows`` (numbered head after head) of one layer."""
    g = values.geometry
    wanted = g.tensor_rows(rows)
    if read_whole:
        value_rows = np.asarray(reader.read(values.kv_b), dtype=np.float32)[wanted]
    else:
        value_rows = np.asarray(reader.read_rows(values.kv_b, wanted), dtype=np.float32)
    latent = np.asarray(reader.read_rows(values.kv_a, np.arange(g.kv_lora)), dtype=np.float32)
    hidden = latent.shape[1]
    composed = (value_rows * _gain(reader, values.kv_norm, g.kv_lora)) @ latent
    composed *= _gain(reader, values.input_norm, hidden)
    digest = hashlib.sha256(np.ascontiguousarray(value_rows, dtype=np.float32).tobytes()).hexdigest()
    return AttentionSample(values.layer, g.value_rows, np.asarray(rows, dtype=np.int64), composed @ frame.T,
                           values.kv_b, digest)  # fmt: skip


def mla_attention_samples(
    reader: TensorReader,
    tensors: Mapping[str, TensorInfo],
    config: Mapping[str, Any] | None,
    frame: np.ndarray,
    hidden: int,
    choose_rows: Callable[[int, tuple[int, int]], np.ndarray],
    read_whole: bool = False,
) -> list[AttentionSample]:
    """Value samples of every MLA layer; ``choose_rows(rows_total, (heads, v_dim))`` picks the rows."""
    samples = []
    for values in find_mla_values(tensors, hidden, mla_geometry(config)):
        g = values.geometry
        rows = choose_rows(g.value_rows, (g.heads, g.v_dim))
        samples.append(mla_value_sample(reader, values, rows, frame, read_whole))
    return samples
