"""Readers for model files: safetensors, PyTorch checkpoints (no pickle execution), GGUF, ONNX, HF folders.

``open_model(path)`` recognises what a path is and returns a :class:`ModelSource`; its ``weights`` is a
:class:`TensorReader` that lists tensors, reads whole tensors, or reads only chosen rows.
"""

from modeltrace.formats.base import TensorReader
from modeltrace.formats.detect import FORMATS, open_model, open_weights
from modeltrace.formats.source import ModelSource

__all__ = ["FORMATS", "ModelSource", "TensorReader", "open_model", "open_weights"]
