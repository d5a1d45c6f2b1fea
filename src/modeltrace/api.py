"""The public Python API of modeltrace: one facade over every layer.

The CLI and the service call only this module (and :mod:`modeltrace.errors`). Each section below
belongs to one layer; functions here validate inputs, open files through ``formats`` and hand
values in memory to the pure layers (fingerprint, lineage, licences).
"""

from __future__ import annotations

import modeltrace


def version() -> str:
    """The installed modeltrace version."""
    return modeltrace.__version__


# --- lineage -------------------------------------------------------------------------------------
# Fingerprints and comparisons. A "model or fingerprint" argument is a path: a fingerprint file
# written by ``fingerprint()`` or anything ``formats.open_model`` reads.

from collections.abc import Callable as _Callable  # noqa: E402
from pathlib import Path as _Path  # noqa: E402
from typing import Any as _Any  # noqa: E402

from modeltrace.errors import UsageError as _UsageError  # noqa: E402
from modeltrace.fingerprint.build import Budget as _Budget  # noqa: E402
from modeltrace.fingerprint.build import build_fingerprint as _build_fingerprint  # noqa: E402
from modeltrace.fingerprint.model import Fingerprint  # noqa: E402
from modeltrace.fingerprint.model import is_fingerprint_file as _is_fingerprint_file  # noqa: E402
from modeltrace.fingerprint.model import load_fingerprint as _load_fingerprint  # noqa: E402
from modeltrace.formats.detect import open_model as _open_model  # noqa: E402
from modeltrace.lineage.compare import DEFAULT_ALPHA, DEFAULT_SURROGATES  # noqa: E402
from modeltrace.lineage.compare import compare_fingerprints as _compare_fingerprints  # noqa: E402
from modeltrace.lineage.identify import identify as _identify  # noqa: E402
from modeltrace.lineage.report import render_html as _render_html  # noqa: E402

Progress = _Callable[[int, int], None]


def load_or_fingerprint(
    path: str | _Path, *, full: bool = False, progress: Progress | None = None
) -> Fingerprint:
    """A fingerprint file as is, or a model fingerprinted now (``full``: the full-weight path)."""
    if _is_fingerprint_file(path):
        return _load_fingerprint(path)
    with _open_model(path) as source:
        return _build_fingerprint(source, _Budget.full() if full else _Budget(), progress)


def fingerprint(
    model: str | _Path, output: str | _Path, *, progress: Progress | None = None
) -> dict[str, _Any]:
    """Fingerprint ``model`` into the file ``output``; returns a summary (size, bytes read, blocks)."""
    with _open_model(model) as source:
        built = _build_fingerprint(source, _Budget(), progress)
    size = built.save(output)
    total = int(built.header.get("total_bytes") or 0)
    return {
        "model": str(model),
        "output": str(output),
        "file_bytes": size,
        "bytes_read": built.bytes_read,
        "total_bytes": total,
        "fraction_read": built.bytes_read / total if total else None,
        "mlp_blocks": len(built.blocks),
        "anchors": len(built.anchors),
        "vocabulary": None if built.vocabulary is None else len(built.vocabulary),
        "role_method": built.header.get("role_method"),
    }


def compare(
    suspect: str | _Path,
    base: str | _Path,
    *,
    alpha: float = DEFAULT_ALPHA,
    surrogates: int = DEFAULT_SURROGATES,
    full: bool = False,
    report: str | _Path | None = None,
) -> dict[str, _Any]:
    """Was ``suspect`` derived from ``base``? Keys: verdict, p_value, log10_p, p_value_kind, relation,
    layer_map, bytes_read, and the evidence (see docs/lineage.md)."""
    if not 0 < alpha < 1:
        raise _UsageError(f"alpha must lie in (0, 1), got {alpha}.")
    result = _compare_fingerprints(
        load_or_fingerprint(suspect, full=full),
        load_or_fingerprint(base, full=full),
        alpha=alpha,
        surrogates=surrogates,
    )
    result["suspect_path"], result["base_path"] = str(suspect), str(base)
    if report is not None:
        _Path(report).write_text(_render_html(result), encoding="utf-8")
        result["report"] = str(report)
    return result


def _candidate_paths(against: str | _Path) -> list[_Path]:
    root = _Path(against)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise _UsageError(f"--against '{root}' is neither a file nor a folder of models/fingerprints.")
    if (root / "config.json").is_file() or any(root.glob("*.safetensors")):
        return [root]  # the folder is itself one model
    found = [
        p
        for p in sorted(root.iterdir())
        if p.is_dir() or _is_fingerprint_file(p) or p.suffix in (".gguf", ".onnx", ".safetensors")
    ]
    if not found:
        raise _UsageError(f"No models or fingerprints found in '{root}'.")
    return found


def identify(
    suspect: str | _Path,
    against: str | _Path | list[str | _Path],
    *,
    alpha: float = DEFAULT_ALPHA,
    surrogates: int = DEFAULT_SURROGATES,
) -> dict[str, _Any]:
    """Rank candidate bases for ``suspect`` (a folder of models/fingerprints, or a list of paths)."""
    paths = [_Path(p) for p in against] if isinstance(against, list) else _candidate_paths(against)
    suspect_fp = load_or_fingerprint(suspect)
    candidates = [(str(path), load_or_fingerprint(path)) for path in paths]
    return _identify(suspect_fp, candidates, alpha=alpha, surrogates=surrogates)
