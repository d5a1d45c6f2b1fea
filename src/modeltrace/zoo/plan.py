"""What a zoo build is made of, as data: how much to train, the corpora, a model in memory, the base
architectures and per-model seeds. Shared by the recipes and the builder (no torch, no files)."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from modeltrace.zoo.arch import ArchConfig, Params
from modeltrace.zoo.corpus import Lexicon


@dataclass(frozen=True)
class ZooPlan:
    """How much to train. ``quick`` keeps every transform but trains a fraction of the steps."""

    quick: bool
    seed: int
    bases: int
    base_steps: int
    child_steps: int
    distill_steps: int
    rl_steps: int
    corpus_tokens: int
    domain_tokens: int
    batch: int  # windows of 65 tokens per training step

    @classmethod
    def for_mode(cls, quick: bool, seed: int) -> ZooPlan:
        if quick:
            return cls(quick, seed, bases=2, base_steps=120, child_steps=30, distill_steps=120,
                       rl_steps=6, corpus_tokens=120_000, domain_tokens=40_000, batch=8)  # fmt: skip
        return cls(quick, seed, bases=3, base_steps=600, child_steps=150, distill_steps=600,
                   rl_steps=30, corpus_tokens=400_000, domain_tokens=120_000, batch=16)  # fmt: skip


@dataclass(frozen=True)
class Corpora:
    """The token streams the recipes train on (base, domain) and measure loss on (held out)."""

    lexicon: Lexicon
    base: np.ndarray
    domain: np.ndarray
    held_out: np.ndarray
    held_out_domain: np.ndarray


@dataclass
class Model:
    """A model in memory: what recipes produce and children read."""

    params: Params
    config: ArchConfig
    vocab: list[str]


def llama_config(vocab_size: int) -> ArchConfig:
    return ArchConfig("llama", vocab_size, hidden_size=64, intermediate_size=192, num_layers=4,
                      num_heads=4, num_kv_heads=2)  # fmt: skip


def gpt2_config(vocab_size: int) -> ArchConfig:
    return ArchConfig("gpt2", vocab_size, hidden_size=96, intermediate_size=384, num_layers=3,
                      num_heads=4, num_kv_heads=4)  # fmt: skip


def model_seed(seed: int, name: str) -> int:
    """A per-model seed for data order and sampling, stable across runs and Python versions."""
    return (seed * 1_000_003 + zlib.crc32(name.encode())) % 2**31
