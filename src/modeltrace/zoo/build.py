"""``build_zoo``: train the zoo's bases, derive every child, write the files and ``zoo.json``.

The zoo is a list of recipes run in order (bases first, then children that read their parents'
weights from memory). Each recipe returns one model; :class:`ZooWriter` puts it on disk in its
format and records it for the manifest. ``quick`` trains fewer steps and fewer bases, but keeps
every transform.
"""

from __future__ import annotations

import shutil
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modeltrace.errors import ZooError
from modeltrace.zoo._torch import require_torch
from modeltrace.zoo.arch import ArchConfig, Params
from modeltrace.zoo.corpus import Lexicon, generate_tokens, make_lexicon
from modeltrace.zoo.files import write_hf_folder, write_json
from modeltrace.zoo.manifest import MANIFEST_NAME, ModelRecord, manifest_json

#: Called before each model with (model name, models done, models in total), and once at the end.
ProgressCallback = Callable[[str, int, int], None]


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


class ZooWriter:
    """Writes models into ``directory/models`` and keeps their manifest records."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.records: list[ModelRecord] = []
        self.models: dict[str, Model] = {}

    def seed_of(self, name: str) -> int:
        return next(record.seed for record in self.records if record.name == name)

    def add(
        self,
        name: str,
        model: Model,
        parents: list[str],
        transform: str,
        function_preserving: bool = False,
        seed: int | None = None,
        fmt: str = "safetensors",
        **fields: Any,
    ) -> ModelRecord:
        from modeltrace.zoo import export_gguf, export_onnx, quantize

        folder = self.directory / "models" / name
        relative = f"models/{name}"
        if fmt == "safetensors":
            write_hf_folder(folder, model.config, model.params, model.vocab)
        elif fmt == "safetensors-int8":
            stored, _ = quantize.int8_tensors(model.params)
            write_hf_folder(folder, model.config, stored, model.vocab, extra_config=quantize.INT8_CONFIG)
        elif fmt == "safetensors-fp8":
            stored, dtypes, _ = quantize.fp8_tensors(model.params)
            write_hf_folder(folder, model.config, stored, model.vocab, dtypes, quantize.FP8_CONFIG)
        elif fmt in ("gguf-Q8_0", "gguf-Q4_0"):
            qtype = fmt.split("-")[1]
            folder.parent.mkdir(parents=True, exist_ok=True)
            relative = f"models/{name}.gguf"
            export_gguf.write_gguf(
                self.directory / relative, name, model.params, model.config, model.vocab, qtype
            )
        elif fmt == "onnx-int8":
            # optimum's layout: model.onnx beside config.json and tokenizer.json
            write_hf_folder(folder, model.config, {}, model.vocab)
            (folder / "model.safetensors").unlink()
            export_onnx.write_onnx(folder / "model.onnx", model.params, model.config, name)
        else:
            raise ZooError(f"unknown zoo output format {fmt!r}")
        record = ModelRecord(
            name=name,
            path=relative,
            format=fmt.split("-")[0],
            architecture=model.config.hf_config()["model_type"],
            seed=seed if seed is not None else self.seed_of(parents[0]),
            parents=parents,
            transform=transform,
            function_preserving=function_preserving,
            **fields,
        )
        self.records.append(record)
        self.models[name] = model
        return record


def _prepare_directory(directory: Path) -> None:
    """Create ``directory``, or clear a previous zoo in it; never touch a folder of other files."""
    if directory.exists() and not directory.is_dir():
        raise ZooError(f"zoo folder '{directory}' is a file; choose a folder path")
    if directory.is_dir() and any(directory.iterdir()):
        if not (directory / MANIFEST_NAME).is_file():
            raise ZooError(
                f"zoo folder '{directory}' is not empty and holds no {MANIFEST_NAME}; "
                "choose an empty or new folder (modeltrace only overwrites a previous zoo)"
            )
        shutil.rmtree(directory / "models", ignore_errors=True)
        (directory / MANIFEST_NAME).unlink()
    (directory / "models").mkdir(parents=True, exist_ok=True)


def model_seed(seed: int, name: str) -> int:
    """A per-model seed for data order and sampling, stable across runs and Python versions."""
    return (seed * 1_000_003 + zlib.crc32(name.encode())) % 2**31


def build_zoo(
    directory: str | Path,
    quick: bool = False,
    seed: int = 0,
    threads: int = 2,
    progress: ProgressCallback | None = None,
) -> Path:
    """Build the lineage zoo in ``directory``; returns the path of its ``zoo.json``."""
    require_torch()
    from modeltrace.zoo.recipes import recipes
    from modeltrace.zoo.train import reproducible_torch

    root = Path(directory).expanduser()
    _prepare_directory(root)
    plan = ZooPlan.for_mode(quick, seed)
    lexicon = make_lexicon(seed)
    corpora = Corpora(
        lexicon=lexicon,
        base=generate_tokens(lexicon, plan.corpus_tokens, seed),
        domain=generate_tokens(lexicon, plan.domain_tokens, seed, domain=True),
        held_out=generate_tokens(lexicon, 20_000, seed + 10_000),
        held_out_domain=generate_tokens(lexicon, 20_000, seed + 10_000, domain=True),
    )
    writer = ZooWriter(root)
    steps = recipes(plan, corpora, writer)
    started = time.perf_counter()
    with reproducible_torch(threads):
        for index, (name, recipe) in enumerate(steps):
            if progress is not None:
                progress(name, index, len(steps))
            begin = time.perf_counter()
            record = recipe()
            record.seconds = time.perf_counter() - begin
    if progress is not None:
        progress("done", len(steps), len(steps))
    build = {
        "quick": quick,
        "seed": seed,
        "threads": threads,
        "seconds": round(time.perf_counter() - started, 1),
        "corpus_tokens": len(corpora.base),
        "domain_tokens": len(corpora.domain),
        "vocab_size": len(lexicon.vocab),
    }
    return write_json(root / MANIFEST_NAME, manifest_json(writer.records, build))
