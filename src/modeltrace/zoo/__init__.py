"""The lineage zoo: small transformer LMs trained on CPU, with children derived by every transform
the lineage engine must recognise, and ``zoo.json``, the answer key of the accuracy benchmark.

``build_zoo(directory, quick=False)`` needs the ``torch`` extra; reading the manifest does not.
Modules: ``corpus`` (text and tokenizer), ``arch`` (architectures as data), ``network`` and
``train`` (torch), ``transforms`` (weight-space derivations), ``quantize``, ``export_gguf``,
``export_onnx``, ``files`` (safetensors writer, HF folders), ``manifest``, ``plan`` (what a build is
made of), ``recipes``, ``writer``, ``build``; ``demo`` (the numpy-only demo zoo), ``seed_case`` (the
numpy-only seed-case family) and ``accuracy`` (the engine's accuracy over a zoo manifest) need no torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from modeltrace.zoo.manifest import MANIFEST_NAME, MANIFEST_VERSION

if TYPE_CHECKING:
    from modeltrace.zoo.build import ProgressCallback


def build_zoo(
    directory: str | Path,
    quick: bool = False,
    seed: int = 0,
    threads: int = 2,
    progress: ProgressCallback | None = None,
) -> Path:
    """Build the zoo in ``directory`` (see :func:`modeltrace.zoo.build.build_zoo`)."""
    from modeltrace.zoo.build import build_zoo as _build

    return _build(directory, quick=quick, seed=seed, threads=threads, progress=progress)


def load_manifest(directory_or_file: str | Path) -> dict[str, Any]:
    """Read ``zoo.json`` from a zoo folder (or the file itself)."""
    from modeltrace.zoo.manifest import read_manifest

    return read_manifest(Path(directory_or_file))


__all__ = ["MANIFEST_NAME", "MANIFEST_VERSION", "build_zoo", "load_manifest"]
