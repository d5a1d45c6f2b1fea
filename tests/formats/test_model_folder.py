"""``is_model_folder``: one model, or a folder of models (identify's --against FOLDER relies on it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from modeltrace.formats.detect import is_model_folder


@pytest.mark.parametrize(
    ("files", "one_model"),
    [
        (["config.json", "pytorch_model.bin"], True),
        (["pytorch_model.bin.index.json", "pytorch_model-00001-of-00002.bin"], True),  # shards, no config
        (["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"], True),
        (["model.safetensors"], True),
        (["base.bin", "child.pt"], False),  # single-file checkpoints side by side: one model each
        (["base.gguf", "child.gguf"], False),
        (["a.onnx", "b.mtfp"], False),
    ],
)
def test_a_folder_is_one_model_when_open_model_reads_it_as_one(
    tmp_path: Path, files: list[str], one_model: bool
) -> None:
    for name in files:
        (tmp_path / name).write_bytes(b"")
    assert is_model_folder(tmp_path) is one_model
