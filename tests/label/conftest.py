"""Small model folders built inline: a few safetensors tensors, a config and a model card."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

CARD = """---
license: apache-2.0
base_model: org/base-7b
base_model_relation: finetune
datasets:
- org/instructions
---
# tiny
"""


def tiny_tensors() -> dict[str, np.ndarray]:
    generator = np.random.default_rng(7)
    return {
        "embed.weight": generator.standard_normal((16, 8)).astype(np.float32),
        "layer.0.weight": generator.standard_normal((8, 8)).astype(np.float16),
        "layer.0.bias": np.arange(8, dtype=np.int64),
        "head.weight": generator.standard_normal((4, 8)).astype(np.float32),
    }


def write_model(folder: Path, *, shards: int = 1, card: str | None = CARD) -> Path:
    """A Hugging Face-style folder: config.json, README.md, and the tensors in ``shards`` files."""
    folder.mkdir(parents=True, exist_ok=True)
    tensors = tiny_tensors()
    (folder / "config.json").write_text(
        json.dumps({"model_type": "tiny", "architectures": ["TinyForCausalLM"], "hidden_size": 8})
    )
    if card is not None:
        (folder / "README.md").write_text(card)
    names = sorted(tensors)
    if shards == 1:
        save_file(tensors, str(folder / "model.safetensors"))
        return folder
    weight_map = {}
    for index in range(shards):
        part = names[index::shards]
        file_name = f"model-{index + 1:05d}-of-{shards:05d}.safetensors"
        save_file({name: tensors[name] for name in part}, str(folder / file_name))
        weight_map.update(dict.fromkeys(part, file_name))
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": weight_map})
    )
    return folder


@pytest.fixture
def tiny_model(tmp_path: Path) -> Path:
    return write_model(tmp_path / "tiny")


@pytest.fixture(scope="session")
def make_model():  # type: ignore[no-untyped-def]
    """``make_model(folder, shards=1, card=CARD)``: write a tiny model folder."""
    return write_model


@pytest.fixture
def reference_tensors() -> dict[str, np.ndarray]:
    """The tensors every tiny model holds."""
    return tiny_tensors()


@pytest.fixture(scope="session")
def fake_sigstore(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A running fake Sigstore (fake_sigstore/servers.py) and its trust config file.

    Yields ``(fake, trust_config_path)``. Skipped when the ``sigstore`` extra is not installed.
    """
    pytest.importorskip("sigstore", reason="needs the modeltrace[sigstore] extra")
    from tests.label.fake_sigstore import FakeSigstore

    with pytest.MonkeyPatch.context() as patch:
        # The servers are local; never send their requests to a proxy set in the environment.
        patch.setenv("NO_PROXY", "127.0.0.1,localhost")
        patch.setenv("no_proxy", "127.0.0.1,localhost")
        with FakeSigstore() as fake:
            yield fake, fake.write_trust_config(tmp_path_factory.mktemp("sigstore") / "trust.json")
