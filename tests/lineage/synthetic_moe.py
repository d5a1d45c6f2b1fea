"""Small mixture-of-experts fingerprints built in memory (the shape of a Kimi K2 fingerprint, scaled
down): for the block pairing and the comparison value."""

from __future__ import annotations

import hashlib

import numpy as np

from modeltrace.fingerprint.model import AttentionSample, BlockSample, Fingerprint

EXPERTS, UNITS, ANCHORS, HIDDEN = 4, 16, 64, 96


def moe(seed: int, layers: int = 3, parent: dict[str, np.ndarray] | None = None) -> tuple[Fingerprint, dict]:
    """A small MoE fingerprint (a dense first layer, then a shared and EXPERTS routed experts per layer);
    ``parent`` (another call's weights) makes it that model fine-tuned."""
    rng = np.random.default_rng(seed)
    weights: dict[str, np.ndarray] = {}

    def draw(name: str, shape: tuple[int, ...]) -> np.ndarray:
        fresh = rng.standard_normal(shape).astype(np.float32)
        weights[name] = fresh if parent is None else parent[name] + 0.2 * fresh
        return weights[name]

    embed = draw("embed", (ANCHORS, HIDDEN))
    keys = [(0, None)] + [(layer, e) for layer in range(1, layers) for e in range(-1, EXPERTS)]
    blocks = []
    for layer, expert in keys:
        up = draw(f"{layer}.{expert}.up", (UNITS, HIDDEN)) @ embed.T
        gate = draw(f"{layer}.{expert}.gate", (UNITS, HIDDEN)) @ embed.T
        digest = hashlib.sha256(up.tobytes()).hexdigest()
        blocks.append(BlockSample(layer, expert, 64, np.arange(UNITS), up, gate, [f"{layer}.mlp"], digest))
    attention = []
    for layer in range(layers):
        value = draw(f"{layer}.v", (16, HIDDEN)) @ embed.T
        digest = hashlib.sha256(value.tobytes()).hexdigest()
        attention.append(AttentionSample(layer, 64, np.arange(16), value, f"{layer}.v", digest))
    header = {"model": {"name": f"moe-{seed}"}, "role_method": "names", "tokenizer_digest": "t"}
    anchors = [(row, None) for row in range(ANCHORS)]
    return Fingerprint(header, None, anchors, embed @ embed.T, blocks, attention), weights
