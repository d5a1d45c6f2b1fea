"""A model's identity: the OMS file root and the tensor root, computed together."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modeltrace.errors import FormatError
from modeltrace.formats import open_model
from modeltrace.label.file_digest import GIT_PATHS, FileManifest, file_manifest
from modeltrace.label.tensor_digest import TensorManifest, tensor_manifest

#: Called with (phase, item name, bytes done for this item); phase is "files" or "tensors".
Progress = Callable[[str, str, int], None]


@dataclass(frozen=True)
class ModelDigest:
    """Both digests of one model. ``tensor_error`` says why there is no tensor manifest."""

    path: Path
    files: FileManifest
    tensors: TensorManifest | None
    tensor_error: str | None = None
    #: The weight reader's warnings; ``unsafe_pickle`` as in ``TensorReader.unsafe_pickle``.
    warnings: tuple[str, ...] = ()
    unsafe_pickle: bool = False

    @property
    def oms_root(self) -> str:
        return self.files.root

    @property
    def tensor_root(self) -> str | None:
        return self.tensors.root if self.tensors else None

    def as_dict(self, *, details: bool = False) -> dict[str, Any]:
        result: dict[str, Any] = {
            "path": str(self.path),
            "oms_root": self.oms_root,
            "tensor_root": self.tensor_root,
            "files": len(self.files.files),
            "file_bytes": self.files.total_bytes,
            "tensors": len(self.tensors.tensors) if self.tensors else 0,
            "unsafe_pickle": self.unsafe_pickle,
            "warnings": list(self.warnings),
        }
        if self.tensor_error:
            result["tensor_error"] = self.tensor_error
        if details:
            result["file_digests"] = dict(sorted(self.files.files.items()))
            result["tensor_digests"] = dict(sorted(self.tensors.tensors.items())) if self.tensors else {}
        return result


def digest_model(
    path: str | Path,
    *,
    tensors: bool = True,
    ignored: Iterable[str] = GIT_PATHS,
    workers: int | None = None,
    progress: Progress | None = None,
    strict: bool = True,
) -> ModelDigest:
    """Digest the files of ``path`` and, when it holds weights, its tensors.

    With ``strict=False`` a weight file that cannot be parsed (e.g. a damaged header) does not
    raise: the result has no tensor manifest and ``tensor_error`` says why. ``verify`` uses this
    so that a corrupted model still yields a report naming the file.
    """
    model = Path(path).expanduser()
    files = file_manifest(
        model,
        ignored=ignored,
        workers=workers,
        progress=(lambda name, size: progress("files", name, size)) if progress else None,
    )
    if not tensors:
        return ModelDigest(path=model, files=files, tensors=None)
    try:
        with open_model(model) as source:
            if source.weights is None:
                return ModelDigest(path=model, files=files, tensors=None, tensor_error="no weight files")
            manifest = tensor_manifest(
                source.weights,
                workers=workers,
                progress=(lambda name, size: progress("tensors", name, size)) if progress else None,
            )
            warnings, unsafe = tuple(source.weights.warnings), source.weights.unsafe_pickle
    except FormatError as error:
        if strict:
            raise
        return ModelDigest(path=model, files=files, tensors=None, tensor_error=str(error))
    return ModelDigest(path=model, files=files, tensors=manifest, warnings=warnings, unsafe_pickle=unsafe)
