"""A virtual Kimi-K2-shaped checkpoint: safetensors shards whose headers come from the config and
whose tensor bytes are generated on demand from a seed and the offset, so a 1 T-parameter model
is served over HTTP without a terabyte on disk.

Layouts, one shard per decoder layer plus one for the embeddings and the head, and
``model.safetensors.index.json``:

* ``fp8``: the block-FP8 layout of the Kimi K2 release (``X.weight`` F8_E4M3 with
  ``X.weight_scale_inv`` F32 per 128 x 128 block; embeddings, norms and the router in BF16);
* ``int4``: the compressed-tensors ``pack-quantized`` layout of the Kimi K2.5 release (its
  ``text_config.quantization_config``: symmetric INT4 in groups of 32): every routed expert
  projection is ``X.weight_packed`` I32 ``[rows, cols / 8]`` + ``X.weight_scale`` BF16
  ``[rows, cols / 32]`` + ``X.weight_shape`` I32 ``[2]``; attention, the shared expert, the dense
  layer's MLP, embeddings and head stay BF16 (the config's ``ignore`` list); tensor names carry the
  release's ``language_model.`` prefix. The vision tower is left out (the fingerprint reads only the
  text backbone).

Bytes: each dtype draws from a seeded pool (FP8 codes of normal values, BF16 normal values, F32
block scales); a tensor reads the pool cyclically from a start derived from its name, so any byte
range is a copy out of the pool. A *child* (``parent=`` another model) XORs seeded noise into the
low mantissa bits of its parent's FP8 and BF16 bytes: a fine-tune, elementwise correlated with its
parent. A model with another seed and no parent is independent.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from modeltrace.formats.base import F8_E4M3_TABLE

POOL_BYTES = 1 << 24
ITEMSIZE = {"F8_E4M3": 1, "BF16": 2, "F32": 4, "I32": 4}
LAYOUTS = ("fp8", "int4")
INT4_GROUP = 32


@dataclass(frozen=True)
class Tensor:
    name: str
    dtype: str
    shape: tuple[int, ...]
    start: int  # offset in the shard's data section
    nbytes: int


def kimi_tensors(
    config: dict[str, Any], layers: int | None = None, layout: str = "fp8"
) -> dict[str, list[tuple[str, str, tuple[int, ...]]]]:
    """Shard name -> (tensor name, dtype, shape) of a DeepSeek-V3 / Kimi K2 checkpoint in ``layout``."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout {layout!r}: expected one of {LAYOUTS}")
    c = config.get("text_config", config)
    prefix = "language_model." if layout == "int4" else ""
    hidden, vocab = c["hidden_size"], c["vocab_size"]
    heads, rope, nope, v_dim = (
        c["num_attention_heads"],
        c["qk_rope_head_dim"],
        c["qk_nope_head_dim"],
        c["v_head_dim"],
    )
    q_rank, kv_rank = c["q_lora_rank"], c["kv_lora_rank"]
    n_layers = layers or c["num_hidden_layers"]
    total_shards = n_layers + 1

    def fp8(name: str, rows: int, cols: int) -> list[tuple[str, str, tuple[int, ...]]]:
        if layout == "int4":  # everything but the routed experts is BF16 in the INT4 release
            return [(f"{name}.weight", "BF16", (rows, cols))]
        return [
            (f"{name}.weight", "F8_E4M3", (rows, cols)),
            (f"{name}.weight_scale_inv", "F32", (-(-rows // 128), -(-cols // 128))),
        ]

    def int4(name: str, rows: int, cols: int) -> list[tuple[str, str, tuple[int, ...]]]:
        return [
            (f"{name}.weight_packed", "I32", (rows, cols // 8)),
            (f"{name}.weight_scale", "BF16", (rows, cols // INT4_GROUP)),
            (f"{name}.weight_shape", "I32", (2,)),
        ]

    def mlp(prefix: str, inner: int, routed: bool = False) -> list[tuple[str, str, tuple[int, ...]]]:
        linear = int4 if routed and layout == "int4" else fp8
        return (
            linear(f"{prefix}.gate_proj", inner, hidden)
            + linear(f"{prefix}.up_proj", inner, hidden)
            + linear(f"{prefix}.down_proj", hidden, inner)
        )

    shards: dict[str, list[tuple[str, str, tuple[int, ...]]]] = {}
    for layer in range(n_layers):
        p = f"{prefix}model.layers.{layer}"
        items = [
            (f"{p}.input_layernorm.weight", "BF16", (hidden,)),
            (f"{p}.post_attention_layernorm.weight", "BF16", (hidden,)),
            (f"{p}.self_attn.q_a_layernorm.weight", "BF16", (q_rank,)),
            (f"{p}.self_attn.kv_a_layernorm.weight", "BF16", (kv_rank,)),
            *fp8(f"{p}.self_attn.q_a_proj", q_rank, hidden),
            *fp8(f"{p}.self_attn.q_b_proj", heads * (nope + rope), q_rank),
            *fp8(f"{p}.self_attn.kv_a_proj_with_mqa", kv_rank + rope, hidden),
            *fp8(f"{p}.self_attn.kv_b_proj", heads * (nope + v_dim), kv_rank),
            *fp8(f"{p}.self_attn.o_proj", hidden, heads * v_dim),
        ]
        if layer < c.get("first_k_dense_replace", 0):
            items += mlp(f"{p}.mlp", c["intermediate_size"])
        else:
            inner = c["moe_intermediate_size"]
            items += [
                (f"{p}.mlp.gate.weight", "BF16", (c["n_routed_experts"], hidden)),
                (f"{p}.mlp.gate.e_score_correction_bias", "F32", (c["n_routed_experts"],)),
            ]
            items += mlp(f"{p}.mlp.shared_experts", inner * c.get("n_shared_experts", 1))
            for expert in range(c["n_routed_experts"]):
                items += mlp(f"{p}.mlp.experts.{expert}", inner, routed=True)
        shards[f"model-{layer + 1:05d}-of-{total_shards:05d}.safetensors"] = items
    shards[f"model-{total_shards:05d}-of-{total_shards:05d}.safetensors"] = [
        (f"{prefix}model.embed_tokens.weight", "BF16", (vocab, hidden)),
        (f"{prefix}model.norm.weight", "BF16", (hidden,)),
        (f"{prefix}lm_head.weight", "BF16", (vocab, hidden)),
    ]
    return shards


class Shard:
    """One virtual safetensors file: its header bytes and where each tensor's bytes lie."""

    def __init__(self, items: list[tuple[str, str, tuple[int, ...]]], shapes: dict[str, bytes]) -> None:
        header: dict[str, Any] = {}
        self.tensors: list[Tensor] = []
        #: Tensors whose bytes are content, not seeded noise (``weight_shape``: the logical shape).
        self.fixed = shapes
        offset = 0
        for name, dtype, shape in sorted(items):
            nbytes = int(np.prod(shape)) * ITEMSIZE[dtype]
            header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
            self.tensors.append(Tensor(name, dtype, shape, offset, nbytes))
            offset += nbytes
        text = json.dumps(header, separators=(",", ":")).encode()
        text += b" " * (-len(text) % 8)
        self.header = struct.pack("<Q", len(text)) + text
        self.size = len(self.header) + offset
        self._starts = np.array([t.start for t in self.tensors], dtype=np.int64)


def _pools(seed: int) -> dict[str, np.ndarray]:
    """Seeded bytes per dtype; FP8 codes avoid the top exponent, so XOR noise never makes a NaN."""
    rng = np.random.default_rng(seed)
    finite = np.arange(0x78)  # E4M3 magnitudes below 256: exponent < 15
    values, order = F8_E4M3_TABLE[finite], np.argsort(F8_E4M3_TABLE[finite])
    wanted = np.abs(rng.standard_normal(POOL_BYTES).astype(np.float32)) * 8
    index = np.clip(np.searchsorted(values[order], wanted), 0, len(order) - 1)
    codes = finite[order][index].astype(np.uint8) | (rng.integers(0, 2, POOL_BYTES, dtype=np.uint8) << 7)
    bf16 = (rng.standard_normal(POOL_BYTES // 2).astype(np.float32) * 0.02).view(np.uint32) >> 16
    scales = rng.uniform(0.5e-3, 1.5e-3, POOL_BYTES // 4).astype("<f4")
    group = rng.uniform(0.5e-3, 1.5e-3, POOL_BYTES // 2).astype("<f4")  # positive BF16 INT4 group scales
    group_scales = group.view(np.uint32) >> 16
    return {
        "F8_E4M3": codes,
        "BF16": bf16.astype("<u2").view(np.uint8),
        "F32": scales.view(np.uint8),
        "I32": rng.integers(0, 256, POOL_BYTES, dtype=np.uint8),  # eight INT4 codes per word
        "SCALE_BF16": group_scales.astype("<u2").view(np.uint8),
    }


def _noise(seed: int) -> dict[str, np.ndarray]:
    """XOR masks of a fine-tune: the low mantissa bits of about half the FP8 and BF16 values."""
    rng = np.random.default_rng(seed)
    f8 = rng.integers(0, 8, POOL_BYTES, dtype=np.uint8) * rng.integers(0, 2, POOL_BYTES, dtype=np.uint8)
    bf16 = np.zeros(POOL_BYTES, dtype=np.uint8)
    bf16[0::2] = rng.integers(0, 32, POOL_BYTES // 2, dtype=np.uint8)  # low byte of each little-endian value
    # INT4: the lowest bit of a quarter of the codes (a step of one quantum), both nibbles of a byte.
    nibble = rng.integers(0, 4, (2, POOL_BYTES), dtype=np.uint8) == 0
    i32 = (nibble[0] * np.uint8(0x01)) | (nibble[1] * np.uint8(0x10))
    zeros = np.zeros(POOL_BYTES, dtype=np.uint8)
    return {"F8_E4M3": f8, "BF16": bf16, "F32": zeros, "I32": i32.astype(np.uint8), "SCALE_BF16": bf16}


class VirtualModel:
    """A virtual checkpoint: ``files`` maps a file name to its bytes (small files) or a Shard."""

    def __init__(
        self,
        config: dict[str, Any],
        seed: int,
        *,
        parent: VirtualModel | None = None,
        layers: int | None = None,
        layout: str = "fp8",
    ) -> None:
        self.config = json.loads(json.dumps(config))
        if layers is not None:
            text = self.config.get("text_config", self.config)
            text["num_hidden_layers"] = layers
        self.pools = parent.pools if parent is not None else _pools(seed)
        self.noise = _noise(seed) if parent is not None else None
        self.shards = {}
        for name, items in kimi_tensors(config, layers, layout).items():
            # weight_packed [rows, cols / 8] -> its weight_shape holds [rows, cols]
            shapes = {
                tensor[: -len("_packed")] + "_shape": np.array(
                    [shape[0], shape[1] * 8], dtype="<i4"
                ).tobytes()
                for tensor, _, shape in items
                if tensor.endswith(".weight_packed")
            }
            self.shards[name] = Shard(items, shapes)
        weight_map = {t.name: name for name, shard in self.shards.items() for t in shard.tensors}
        total = sum(shard.size for shard in self.shards.values())
        self.small = {
            "config.json": json.dumps(self.config, indent=1).encode(),
            "model.safetensors.index.json": json.dumps(
                {"metadata": {"total_size": total}, "weight_map": weight_map}
            ).encode(),
        }
        self.total_bytes = total

    def size(self, name: str) -> int | None:
        if name in self.small:
            return len(self.small[name])
        shard = self.shards.get(name)
        return None if shard is None else shard.size

    def read(self, name: str, start: int, stop: int) -> bytes:
        """Bytes ``start..stop-1`` of file ``name`` (exclusive ``stop``)."""
        if name in self.small:
            return self.small[name][start:stop]
        shard = self.shards[name]
        out = bytearray()
        position = start
        if position < len(shard.header):
            out += shard.header[position : min(stop, len(shard.header))]
            position = len(shard.header)
        data_start = len(shard.header)
        index = max(0, int(np.searchsorted(shard._starts, position - data_start, side="right")) - 1)
        while position < stop and index < len(shard.tensors):
            tensor = shard.tensors[index]
            first = position - data_start - tensor.start
            last = min(stop - data_start - tensor.start, tensor.nbytes)
            out += self._tensor_bytes(tensor, first, last, shard.fixed.get(tensor.name))
            position = data_start + tensor.start + last
            index += 1
        return bytes(out)

    def _tensor_bytes(self, tensor: Tensor, first: int, last: int, fixed: bytes | None = None) -> bytes:
        if fixed is not None:
            return fixed[first:last]
        kind = "SCALE_BF16" if tensor.name.endswith(".weight_scale") else tensor.dtype
        pool = self.pools[kind]
        item = ITEMSIZE[tensor.dtype]
        digest = hashlib.blake2b(tensor.name.encode(), digest_size=8).digest()
        origin = int.from_bytes(digest, "little") % (POOL_BYTES // item) * item
        positions = (origin + np.arange(first, last, dtype=np.int64)) % POOL_BYTES
        values = pool[positions]
        if self.noise is not None:
            values = values ^ self.noise[kind][positions]
        return values.tobytes()
