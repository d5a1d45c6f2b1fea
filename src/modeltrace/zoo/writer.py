"""``ZooWriter``: puts each model the recipes make on disk in its format and keeps its manifest record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modeltrace.errors import ZooError
from modeltrace.zoo.files import write_hf_folder
from modeltrace.zoo.manifest import ModelRecord
from modeltrace.zoo.plan import Model


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
        """Write ``model`` as ``fmt`` (``safetensors``, ``safetensors-int8``, ``safetensors-fp8``,
        ``gguf-Q8_0``, ``gguf-Q4_0`` or ``onnx-int8``) and record it; ``seed`` defaults to the first
        parent's, ``fields`` are further :class:`ModelRecord` fields (layer_map, teacher, metrics)."""
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
