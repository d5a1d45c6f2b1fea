"""GPTQ and AWQ 4-bit (2/3/8-bit GPTQ too) linear layers, stored ``[in, out]`` in int32 words.

GPTQ (AutoGPTQ / GPTQModel / transformers' optimum path): ``X.qweight`` I32 ``[in * bits / 32, out]``
packed down the input axis as a little-endian bit stream per column; ``X.qzeros`` I32
``[groups, out * bits / 32]`` packed along the output axis; ``X.scales`` ``[groups, out]``; optional
``X.g_idx`` I32 ``[in]``, the group of each input channel (activation order, ``desc_act``). Value:
``scales[g, o] * (q[i, o] - z[g, o])`` with ``g = g_idx[i]`` (else ``i // group_size``). The classic
"gptq" checkpoint format stores ``z - 1`` (AutoGPTQ's historical off-by-one, kept for
compatibility); GPTQModel's ``checkpoint_format: gptq_v2`` stores ``z`` itself.

AWQ (AutoAWQ GEMM): ``X.qweight`` I32 ``[in, out / 8]`` packed along the output axis in the order
``0 2 4 6 1 3 5 7`` (nibble ``k`` of a word holds output column ``8w + order[k]``), ``X.qzeros``
``[in / group, out / 8]`` packed the same way, ``X.scales`` ``[in / group, out]``; value
``(q - z) * s``, no offset on the zeros.

The logical weight is ``X.weight`` ``[out, in]`` (``nn.Linear``'s layout); its rows are columns of
the stored words, so a row read dequantises only the wanted columns of the whole tensors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from modeltrace.formats.quant.base import QuantisedWeight, Store, ceil_div, corrupt
from modeltrace.formats.quant.compressed import unpack_bitstream
from modeltrace.types import TensorInfo

#: Output column held by nibble k of an AWQ word, and its inverse.
AWQ_ORDER = (0, 2, 4, 6, 1, 3, 5, 7)
AWQ_NIBBLE_OF_COLUMN = tuple(AWQ_ORDER.index(column) for column in range(8))


@dataclass(frozen=True)
class GPTQWeight(QuantisedWeight):
    bits: int = 4
    group_size: int = 128
    zero_offset: int = 1  # 1 for the classic "gptq" format (zeros stored minus one), 0 for gptq_v2
    g_idx: str | None = None

    def describe(self) -> str:
        order = ", activation order" if self.g_idx else ""
        return f"int{self.bits} group {self.group_size}{order}"

    def flat_rows(self, store: Store, rows: np.ndarray) -> np.ndarray:
        base = self.name[: -len("weight")]
        out_features, in_features = self.shape
        words = np.asarray(store.whole(base + "qweight"))[:, rows]  # [in*bits/32, wanted]
        codes = unpack_bitstream(np.ascontiguousarray(words.T), self.bits, in_features)  # [wanted, in]
        zero_words = np.asarray(store.whole(base + "qzeros"))
        zeros = unpack_bitstream(zero_words, self.bits, out_features)[:, rows].T + self.zero_offset
        scales = np.asarray(store.whole(base + "scales"), dtype=np.float32)[:, rows].T  # [wanted, groups]
        if self.g_idx is not None:
            groups = np.asarray(store.whole(self.g_idx)).astype(np.int64).reshape(-1)
            if groups.shape != (in_features,) or groups.min() < 0 or groups.max() >= scales.shape[1]:
                raise corrupt(store, self.parts[0], f"g_idx does not map {in_features} inputs to groups")
        else:
            groups = np.arange(in_features) // self.group_size
        return ((codes - zeros[:, groups]) * scales[:, groups]).astype(np.float32)


@dataclass(frozen=True)
class AWQWeight(QuantisedWeight):
    group_size: int = 128

    def describe(self) -> str:
        return f"int4 group {self.group_size}"

    def flat_rows(self, store: Store, rows: np.ndarray) -> np.ndarray:
        base = self.name[: -len("weight")]
        in_features = self.shape[1]
        word_columns = rows // 8
        shifts = np.array([4 * AWQ_NIBBLE_OF_COLUMN[int(r) % 8] for r in rows], dtype=np.uint32)
        words = np.asarray(store.whole(base + "qweight")).view(np.uint32)[:, word_columns]
        codes = ((words >> shifts) & 0xF).astype(np.int32).T  # [wanted, in]
        zero_words = np.asarray(store.whole(base + "qzeros")).view(np.uint32)[:, word_columns]
        zeros = ((zero_words >> shifts) & 0xF).astype(np.int32).T  # [wanted, groups]
        scales = np.asarray(store.whole(base + "scales"), dtype=np.float32)[:, rows].T
        groups = np.arange(in_features) // self.group_size
        return ((codes - zeros[:, groups]) * scales[:, groups]).astype(np.float32)


def _gptq_bits(out_features: int, zero_words: int, configured: Any) -> int | None:
    """The bit width that packs ``out_features`` zero points into ``zero_words`` words (config first)."""
    candidates = ([configured] if isinstance(configured, int) else []) + [4, 8, 2, 3]
    return next((b for b in candidates if 2 <= b <= 8 and ceil_div(out_features * b, 32) == zero_words), None)


def _config_value(config: Mapping[str, Any] | None, key: str) -> Any:
    return (config or {}).get(key)


def find(
    stored: Mapping[str, TensorInfo], store: Store, config: Mapping[str, Any] | None
) -> list[QuantisedWeight]:
    method = str(_config_value(config, "quant_method") or "").lower()
    checkpoint_format = str(_config_value(config, "checkpoint_format") or "gptq").lower()
    found: list[QuantisedWeight] = []
    for name, qweight in stored.items():
        if not name.endswith(".qweight") or qweight.dtype not in ("I32", "U32") or len(qweight.shape) != 2:
            continue
        base = name[: -len("qweight")]
        qzeros, scales = stored.get(base + "qzeros"), stored.get(base + "scales")
        if qzeros is None or scales is None or len(scales.shape) != 2 or len(qzeros.shape) != 2:
            continue
        groups, out_features = scales.shape
        parts = [name, qzeros.name, scales.name]
        if qweight.shape[1] == out_features and method != "awq":
            bits = _gptq_bits(out_features, qzeros.shape[1], _config_value(config, "bits"))
            if bits is None:
                raise corrupt(
                    store, name, f"qzeros {list(qzeros.shape)} give no bit width for {out_features} outputs"
                )
            in_features = qweight.shape[0] * 32 // bits
            g_idx = base + "g_idx" if base + "g_idx" in stored else None
            if g_idx:
                parts.append(g_idx)
                in_features = stored[g_idx].numel
            if (
                qzeros.shape[0] != groups
                or groups == 0
                or ceil_div(in_features * bits, 32) != qweight.shape[0]
            ):
                raise corrupt(
                    store,
                    name,
                    f"qweight {list(qweight.shape)}, qzeros and scales {list(scales.shape)} disagree",
                )
            configured_group = _config_value(config, "group_size")
            group_size = (
                configured_group
                if isinstance(configured_group, int) and configured_group > 0
                else ceil_div(in_features, groups)
            )
            if configured_group == -1:
                group_size = in_features
            offset = 0 if checkpoint_format == "gptq_v2" else 1
            found.append(
                GPTQWeight(base + "weight", (out_features, in_features), f"INT{bits}", "gptq", tuple(parts),
                           bits=bits, group_size=group_size, zero_offset=offset, g_idx=g_idx)
            )  # fmt: skip
        elif qweight.shape[1] * 8 == out_features and qzeros.shape == (groups, qweight.shape[1]):
            in_features = qweight.shape[0]
            if groups == 0 or in_features % groups:
                raise corrupt(store, name, f"{groups} scale groups do not divide {in_features} inputs")
            found.append(AWQWeight(base + "weight", (out_features, in_features), "INT4", "awq", tuple(parts),
                                   group_size=in_features // groups))  # fmt: skip
    return found
