"""What ``modeltrace scan SOURCE...`` names: model folders and files, folders of models, globs, URLs,
``hf://`` repositories and text files that list more sources.

* a URL (``https://``, ``http://``, ``hf://``) is one source, read later by range requests;
* ``@FILE``, or a file ending in ``.txt``/``.list``, lists sources one per line (a line starting
  with ``#``, or `` #`` after a source, is a comment; relative paths are relative to the list
  file's folder; lists may name lists, 4 deep);
* a folder that holds a model (``config.json`` or weight files) is one source; any other folder is
  a collection: each entry that is a folder or a model file is a source, the rest is ignored;
* a pattern with ``*``, ``?`` or ``[`` that names no existing path is a glob (``**`` recurses).

Local sources become absolute paths, so that a rescan from another working directory finds them
registered. Nothing here reads a model: the checks look at names and the first bytes of files.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path

from modeltrace.errors import FormatError
from modeltrace.formats.detect import sniff_file
from modeltrace.formats.remote import is_remote

LIST_SUFFIXES = (".txt", ".list")
MAX_LIST_DEPTH = 4
_MODEL_FILE_SUFFIXES = (".safetensors", ".gguf", ".bin", ".pt", ".pth", ".ckpt", ".onnx", ".mtfp")
_GLOB_CHARACTERS = ("*", "?", "[")


@dataclass
class Expanded:
    """The sources found, in order and without duplicates, and the arguments that named none."""

    sources: list[str] = field(default_factory=list)
    #: (argument, reason): an argument that named nothing scannable (missing path, empty glob...).
    unusable: list[tuple[str, str]] = field(default_factory=list)
    #: (path, reason): entries of a collection folder that are no model (a README, a hidden file).
    ignored: list[tuple[str, str]] = field(default_factory=list)

    def add(self, source: str) -> None:
        if source not in self._seen:
            self._seen.add(source)
            self.sources.append(source)

    _seen: set[str] = field(default_factory=set, repr=False)


def expand_sources(arguments: list[str]) -> Expanded:
    """Every source the arguments name (see the module docstring)."""
    found = Expanded()
    for argument in arguments:
        _expand(argument.strip(), Path.cwd(), found, depth=0)
    return found


def _expand(argument: str, base: Path, found: Expanded, depth: int) -> None:
    if not argument:
        return
    if is_remote(argument):
        found.add(argument.rstrip("/") if argument.startswith("hf://") else argument)
        return
    if argument.startswith("@"):
        _read_list(argument, _local(argument[1:], base), found, depth)
        return
    path = _local(argument, base)
    if path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
        _read_list(argument, path, found, depth)
    elif path.is_dir():
        _add_folder(path, found)
    elif path.is_file():
        found.add(str(path))
    elif any(mark in argument for mark in _GLOB_CHARACTERS):
        pattern = argument if Path(argument).is_absolute() else str(base / argument)
        matches = sorted(glob.glob(pattern, recursive=True))
        if not matches:
            found.unusable.append((argument, "the pattern matches nothing"))
        for match in matches:
            target = Path(match).resolve()
            # A glob names models: a folder it matches is one model, not a collection to open.
            if target.is_dir() or _is_model_file(target):
                found.add(str(target))
            else:
                found.ignored.append((str(target), "not a model folder or model file"))
    else:
        found.unusable.append((argument, "no such file or folder"))


def _local(text: str, base: Path) -> Path:
    path = Path(text).expanduser()
    return (path if path.is_absolute() else base / path).resolve()


def _read_list(argument: str, path: Path, found: Expanded, depth: int) -> None:
    if depth >= MAX_LIST_DEPTH:
        found.unusable.append((argument, f"source lists nest more than {MAX_LIST_DEPTH} deep"))
        return
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        found.unusable.append((argument, f"cannot read the source list: {error}"))
        return
    for line in text.splitlines():
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        # A trailing comment follows whitespace: a '#' inside a URL or a name stays part of it.
        entry = entry.split(" #", 1)[0].split("\t#", 1)[0].strip()
        _expand(entry, path.parent, found, depth + 1)


def is_model_folder(path: Path) -> bool:
    """A folder that is itself one model: a config.json or weight files directly inside."""
    if (path / "config.json").is_file():
        return True
    return any(
        child.is_file() and child.name.lower().endswith((*_MODEL_FILE_SUFFIXES, ".index.json"))
        for child in path.iterdir()
    )


def _add_folder(path: Path, found: Expanded) -> None:
    if is_model_folder(path):
        found.add(str(path))
        return
    entries = sorted(path.iterdir())
    before = len(found.sources)
    for entry in entries:
        if entry.name.startswith("."):
            found.ignored.append((str(entry), "hidden entry"))
        elif entry.is_dir() or _is_model_file(entry):
            found.add(str(entry.resolve()))
        else:
            found.ignored.append((str(entry), "not a model folder or model file"))
    if len(found.sources) == before:
        found.unusable.append((str(path), "the folder holds no model and no model folders"))


def _is_model_file(path: Path) -> bool:
    if not path.is_file():
        return False
    if path.name.lower().endswith(_MODEL_FILE_SUFFIXES):
        return True
    try:
        return sniff_file(path) != "config" or path.name == "config.json"
    except FormatError:
        return False
