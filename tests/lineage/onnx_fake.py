"""A stand-in ONNX reader for tests, used only when ``modeltrace.formats.onnx_file`` is not installed.

It presents int8 initialisers ``X_q`` + ``X_scale`` (dequantised by Cast/Mul graph nodes) as one
float32 logical tensor ``X``, as the real reader's contract says, so the role assignment is exercised
on the anonymous names (``val_49``) exported files carry.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from modeltrace.formats.base import TensorReader
from modeltrace.formats.source import ModelSource
from modeltrace.types import TensorInfo


class FakeOnnxReader(TensorReader):
    format = "onnx"

    def __init__(self, path: str | Path) -> None:
        import onnx
        from onnx import numpy_helper

        super().__init__(path)
        model = onnx.load(str(path))
        raw = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
        self._arrays: dict[str, np.ndarray] = {}
        for name, value in raw.items():
            if name.endswith("_scale") and name[: -len("_scale")] + "_q" in raw:
                continue
            if name.endswith("_q") and name[:-2] + "_scale" in raw:
                self._arrays[name[:-2]] = value.astype(np.float32) * raw[name[:-2] + "_scale"]
            elif value.dtype.kind == "f":
                self._arrays[name] = value.astype(np.float32)
        self._size = os.path.getsize(path)

    def tensors(self) -> Mapping[str, TensorInfo]:
        return {
            name: TensorInfo(name, tuple(v.shape), "F32", v.nbytes, str(self.path))
            for name, v in self._arrays.items()
        }

    def read(self, name: str) -> np.ndarray:
        return self._arrays[name]

    def read_rows(self, name: str, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        return self._arrays[name][np.asarray(rows, dtype=np.int64)]

    def raw(self, name: str) -> bytes:
        return self._arrays[name].tobytes()

    @property
    def bytes_read(self) -> int:
        return self._size


def open_fake_onnx(path: Path) -> ModelSource:
    return ModelSource(path=path, format="onnx", weights=FakeOnnxReader(path))
