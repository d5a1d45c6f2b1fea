"""A virtual Kimi-K2-shaped checkpoint: safetensors shards whose headers come from the config and
whose tensor bytes are generated on demand from a seed and the offset, so a 1 T-parameter model
is served over HTTP without a terabyte on disk.

Layout: the block-FP8 release layout (``X.weight`` F8_E4M3 with ``X.weight_scale_inv`` F32 per
128 x 128 block; embeddings, norms and the router in BF16), one shard per decoder layer plus one
for the embeddings and the head, and ``model.safetensors.index.json``.

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
ITEMSIZE = {"F8_E4M3": 1, "BF16": 2, "F32": 4}


@dataclass(frozen=True)
class Tensor:
    name: str
    dtype: str
    shape: tuple[int, ...]
    start: int  # offset in the shard's data section
    nbytes: int


def kimi_tensors(
    config: dict[str, Any], layers: int | None = None
) -> dict[str, list[tuple[str, str, tuple[int, ...]]]]:
    """Shard name -> (tensor name, dtype, shape) of a DeepSeek-V3 / Kimi K2 block-FP8 checkpoint."""
    c = config.get("text_config", config)
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
        return [
            (f"{name}.weight", "F8_E4M3", (rows, cols)),
            (f"{name}.weight_scale_inv", "F32", (-(-rows // 128), -(-cols // 128))),
        ]

    def mlp(prefix: str, inner: int) -> list[tuple[str, str, tuple[int, ...]]]:
        return (
            fp8(f"{prefix}.gate_proj", inner, hidden)
            + fp8(f"{prefix}.up_proj", inner, hidden)
            + fp8(f"{prefix}.down_proj", hidden, inner)
        )

    shards: dict[str, list[tuple[str, str, tuple[int, ...]]]] = {}
    for layer in range(n_layers):
        p = f"model.layers.{layer}"
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
                items += mlp(f"{p}.mlp.experts.{expert}", inner)
        shards[f"model-{layer + 1:05d}-of-{total_shards:05d}.safetensors"] = items
    shards[f"model-{total_shards:05d}-of-{total_shards:05d}.safetensors"] = [
        ("model.embed_tokens.weight", "BF16", (vocab, hidden)),
        ("model.norm.weight", "BF16", (hidden,)),
        ("lm_head.weight", "BF16", (vocab, hidden)),
    ]
    return shards


class Shard:
    """One virtual safetensors file: its header bytes and where each tensor's bytes lie."""

    def __init__(self, items: list[tuple[str, str, tuple[int, ...]]]) -> None:
        header: dict[str, Any] = {}
        self.tensors: list[Tensor] = []
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
    return {
        "F8_E4M3": codes,
        "BF16": bf16.astype("<u2").view(np.uint8),
        "F32": scales.view(np.uint8),
    }


def _noise(seed: int) -> dict[str, np.ndarray]:
    """XOR masks of a fine-tune: the low mantissa bits of about half the FP8 and BF16 values."""
    rng = np.random.default_rng(seed)
    f8 = rng.integers(0, 8, POOL_BYTES, dtype=np.uint8) * rng.integers(0, 2, POOL_BYTES, dtype=np.uint8)
    bf16 = np.zeros(POOL_BYTES, dtype=np.uint8)
    bf16[0::2] = rng.integers(0, 32, POOL_BYTES // 2, dtype=np.uint8)  # low byte of each little-endian value
    return {"F8_E4M3": f8, "BF16": bf16, "F32": np.zeros(POOL_BYTES, dtype=np.uint8)}


class VirtualModel:
    """A virtual checkpoint: ``files`` maps a file name to its bytes (small files) or a Shard."""

    def __init__(
        self,
        config: dict[str, Any],
        seed: int,
        *,
        parent: VirtualModel | None = None,
        layers: int | None = None,
    ) -> None:
        self.config = dict(config)
        if layers is not None:
            self.config["num_hidden_layers"] = layers
        self.pools = parent.pools if parent is not None else _pools(seed)
        self.noise = _noise(seed) if parent is not None else None
        self.shards = {name: Shard(items) for name, items in kimi_tensors(config, layers).items()}
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
            out += self._tensor_bytes(tensor, first, last)
            position = data_start + tensor.start + last
            index += 1
        return bytes(out)

    def _tensor_bytes(self, tensor: Tensor, first: int, last: int) -> bytes:
        pool = self.pools[tensor.dtype]
        item = ITEMSIZE[tensor.dtype]
        digest = hashlib.blake2b(tensor.name.encode(), digest_size=8).digest()
        origin = int.from_bytes(digest, "little") % (POOL_BYTES // item) * item
        positions = (origin + np.arange(first, last, dtype=np.int64)) % POOL_BYTES
        values = pool[positions]
        if self.noise is not None:
            values = values ^ self.noise[tensor.dtype][positions]
        return values.tobytes()
