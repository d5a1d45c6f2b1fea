"""Optional reader capabilities, typed: what some formats offer beyond :class:`TensorReader`.

Every reader lists and reads tensors; some also know more. Consumers (the fingerprint) ask with
``isinstance(reader, HasVocabulary)`` instead of probing attributes by name, so that a renamed method
or a field read from the wrong class is a type error, not a silent fallback.

* :class:`HasVocabulary`: the token strings stored in the weight file (GGUF ``tokenizer.ggml.tokens``).
* :class:`HasGraph`: the computation graph (ONNX), from which roles come where weights are anonymous.
* :class:`ReadsFlatRows`: rows of a tensor viewed as a matrix ``[prod(shape[:-1]), shape[-1]]``, so one
  expert of a stacked ``[n_expert, units, hidden]`` tensor is read without the others (GGUF).
* :class:`ReportsQuantization`: the quantisation scheme of the weights (safetensors: compressed-tensors,
  GPTQ, AWQ, bitsandbytes, MXFP4, FP8 scales; see :mod:`modeltrace.formats.quant`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from modeltrace.formats.onnx_graph import Graph


@runtime_checkable
class HasVocabulary(Protocol):
    def vocabulary(self) -> list[str] | None:
        """The token strings in id order, or None when the file has none."""


@runtime_checkable
class HasGraph(Protocol):
    def graph(self) -> Graph:
        """The model's computation graph."""


@runtime_checkable
class ReadsFlatRows(Protocol):
    def read_flat_rows(self, name: str, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """Rows of ``name`` viewed as a matrix ``[prod(shape[:-1]), shape[-1]]``."""


@runtime_checkable
class ReportsQuantization(Protocol):
    def quantization_summary(self) -> dict[str, Any] | None:
        """The quantisation method and encodings found (and config.json's declaration), or None."""
