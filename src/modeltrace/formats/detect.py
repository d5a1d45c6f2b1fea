"""Recognise what a path is and open it: ``open_model`` (everything) and ``open_weights`` (tensors).

A path may be a model folder (Hugging Face layout, or any folder holding one weight format), a
weight file (``.safetensors``, ``*.index.json``, ``.bin``/``.pt``/``.pth``/``.ckpt``, ``.gguf``,
``.onnx``) or a bare ``config.json``. Files are recognised by their first bytes where the format
has a magic number, else by name; ``format=`` overrides the guess.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from modeltrace.errors import CorruptFileError, UnsupportedFormatError
from modeltrace.formats.base import TensorReader, open_regular
from modeltrace.formats.hf_folder import read_card, read_json_if_present, tokenizer_files
from modeltrace.formats.source import ModelSource
from modeltrace.formats.symlinks import SymlinkPolicy, check_symlink, symlink_policy
from modeltrace.types import Declared

#: Weight formats and the class that reads each; imported lazily so one broken optional
#: dependency does not stop the others.
READERS: dict[str, tuple[str, str]] = {
    "safetensors": ("modeltrace.formats.safetensors", "SafetensorsReader"),
    "pytorch": ("modeltrace.formats.pytorch", "PyTorchReader"),
    "gguf": ("modeltrace.formats.gguf_file", "GGUFReader"),
    "onnx": ("modeltrace.formats.onnx_file", "ONNXReader"),
}
FORMATS = (*READERS, "hf", "config")

_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")


def _reader_class(format_name: str) -> type[TensorReader]:
    module_name, class_name = READERS[format_name]
    return getattr(importlib.import_module(module_name), class_name)  # type: ignore[no-any-return]


def _resolve(path: str | Path) -> Path:
    candidate = Path(path).expanduser()
    try:
        return candidate.resolve(strict=True)
    except FileNotFoundError:
        raise UnsupportedFormatError(candidate, "no such file or folder") from None
    except (RuntimeError, OSError) as error:  # RuntimeError: symlink loop on Python 3.11-3.12
        raise CorruptFileError(candidate, f"cannot resolve path ({error})") from error


def sniff_file(path: Path) -> str:
    """The format of a single file: ``safetensors``, ``pytorch``, ``gguf``, ``onnx`` or ``config``."""
    name = path.name.lower()
    descriptor = open_regular(path)
    try:
        head = os.pread(descriptor, 16, 0)
    except OSError as error:
        raise CorruptFileError(path, f"cannot read file ({error.strerror})") from error
    finally:
        os.close(descriptor)
    if head.startswith(b"GGUF"):
        return "gguf"
    if name.endswith(".safetensors"):
        return "safetensors"
    if name.endswith(".index.json"):
        return "pytorch" if ".bin." in name or ".pt." in name else "safetensors"
    if name.endswith(".json"):
        return "config"
    if name.endswith(".onnx"):
        return "onnx"
    if name.endswith(_PICKLE_SUFFIXES) or head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":
        return "pytorch"
    if name.endswith(".gguf"):
        return "gguf"  # named .gguf but wrong magic: let the reader say what is wrong
    by_content = _sniff_content(head)
    if by_content is not None:
        return by_content
    raise UnsupportedFormatError(
        path, "not a recognised model file (expected .safetensors, .bin/.pt, .gguf, .onnx or config.json)"
    )


#: ONNX ModelProto fields that may follow ``ir_version`` (field 1): producer name/version, domain,
#: model version, doc string, graph, opset imports. Their protobuf tags are one byte each.
_ONNX_NEXT_TAGS = frozenset({0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42})


def _sniff_content(head: bytes) -> str | None:
    """The format of a file whose name says nothing, from its first bytes (the readers then validate).

    safetensors: an 8-byte little-endian header length, then the JSON header's ``{``. ONNX has no magic;
    a serialised ModelProto opens with ``ir_version`` (tag 0x08, a small varint) and another model field.
    """
    if len(head) >= 10 and head[8:9] == b"{" and 2 <= int.from_bytes(head[:8], "little") < 1 << 32:
        return "safetensors"
    if len(head) >= 3 and head[0] == 0x08 and 1 <= head[1] <= 30 and head[2] in _ONNX_NEXT_TAGS:
        return "onnx"
    return None


def _weights_in_folder(folder: Path) -> tuple[str, Path, list[Path] | None] | None:
    """The weight format and entry file of a model folder, preferring safetensors."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        return "safetensors", index, None
    safetensors_files = sorted(folder.glob("*.safetensors"))
    if len(safetensors_files) == 1:
        return "safetensors", safetensors_files[0], None
    if safetensors_files:
        return "safetensors", folder, safetensors_files
    for index_name in ("pytorch_model.bin.index.json",):
        if (folder / index_name).is_file():
            return "pytorch", folder / index_name, None
    pickles = sorted(p for suffix in _PICKLE_SUFFIXES for p in folder.glob(f"*{suffix}"))
    if pickles:
        return "pytorch", pickles[0], None
    for pattern in ("*.gguf", "*.onnx", "onnx/*.onnx"):
        found = sorted(folder.glob(pattern))
        if found:
            return ("gguf" if pattern == "*.gguf" else "onnx"), found[0], None
    return None


def is_model_folder(folder: Path) -> bool:
    """Whether ``folder`` is itself one model rather than a folder of models: it holds a config.json, a
    weight index, or safetensors files (read as the shards of one model). Single-file checkpoints side
    by side without a config (``.bin``/``.pt``, ``.gguf``, ``.onnx``) are separate models."""
    if (folder / "config.json").is_file():
        return True
    found = _weights_in_folder(folder)
    return found is not None and (found[0] == "safetensors" or found[1].name.endswith(".index.json"))


def open_weights(path: str | Path, format: str | None = None) -> TensorReader:
    """Open the tensors of a weight file or model folder."""
    source = open_model(path, format)
    if source.weights is None:
        raise UnsupportedFormatError(source.path, "no weight files found (only configuration)")
    return source.weights


def _open_reader(format_name: str, entry: Path, shards: list[Path] | None = None) -> TensorReader:
    reader_class = _reader_class(format_name)
    if shards is not None:
        return reader_class(entry, shards=shards)  # type: ignore[call-arg]
    return reader_class(entry)


def open_model(
    path: str | Path, format: str | None = None, *, symlinks: SymlinkPolicy | None = None
) -> ModelSource:
    """Open anything modeltrace reads. ``format`` overrides detection (see ``FORMATS``).

    ``path`` may also be a URL string: ``https://...`` (a model folder or one file served over HTTP)
    or ``hf://ORG/REPO[@REVISION]``; only headers and the bytes asked for are transferred.
    ``symlinks`` says which symlinks leaving a model folder are followed (see
    :mod:`modeltrace.formats.symlinks`; default: the policy in force, ``hf-cache``)."""
    if symlinks is not None:
        with symlink_policy(symlinks):
            return open_model(path, format)
    if format is not None and format not in FORMATS:
        raise UnsupportedFormatError(path, f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    if isinstance(path, str) and path.startswith(("http://", "https://", "hf://")):
        from modeltrace.formats.remote_model import open_remote_model

        return open_remote_model(path, format)
    resolved = _resolve(path)
    if resolved.is_dir():
        return _open_folder(resolved, None if format in (None, "hf") else format)
    detected = format or sniff_file(resolved)
    if detected == "hf":
        return _open_folder(resolved.parent, None)
    if detected == "config":
        config = read_json_if_present(resolved)
        return ModelSource(path=resolved, format="config", config=config)
    reader = _open_reader(detected, resolved)
    return ModelSource(path=resolved, format=detected, weights=reader, declared=reader.declared())


def _open_folder(folder: Path, format: str | None) -> ModelSource:
    for name in ("config.json", "generation_config.json", "README.md"):
        check_symlink(folder / name, folder)
    config = read_json_if_present(folder / "config.json")
    generation_config = read_json_if_present(folder / "generation_config.json")
    card, declared = read_card(folder)
    found = _weights_in_folder(folder)
    if found is not None:
        for weight_file in [found[1], *(found[2] or [])]:
            check_symlink(weight_file, folder)
    tokenizers = tokenizer_files(folder)
    for tokenizer_file in tokenizers.values():
        check_symlink(tokenizer_file, folder)
    reader: TensorReader | None = None
    format_name = "config"
    if format is not None and format != "config":
        entry = found[1] if found and found[0] == format else None
        if entry is None:
            raise UnsupportedFormatError(folder, f"no {format} weights in this folder")
        reader = _open_reader(format, entry, found[2] if found else None)
        format_name = format
    elif found is not None and format != "config":
        format_name, entry, shards = found
        reader = _open_reader(format_name, entry, shards)
    if reader is not None and config is not None and hasattr(reader, "use_config"):
        reader.use_config(config)  # quantisation_config settles what quantised tensors leave open
    if reader is not None and declared == Declared():
        declared = reader.declared()
    if reader is None and config is None:
        raise UnsupportedFormatError(folder, "folder holds no config.json and no weight files")
    return ModelSource(
        path=folder,
        format=format_name,
        weights=reader,
        config=config,
        generation_config=generation_config,
        declared=declared,
        card=card,
        tokenizer_files=tokenizers,
    )
