"""The facade for fingerprints, lineage comparisons and identification.

A "model or fingerprint" argument is a path: a fingerprint file written by ``fingerprint()`` or
anything ``formats.open_model`` reads.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from modeltrace.api._blas import single_threaded_blas
from modeltrace.errors import FormatError, UsageError
from modeltrace.fingerprint.build import Budget, build_fingerprint
from modeltrace.fingerprint.model import Fingerprint, is_fingerprint_file, load_fingerprint
from modeltrace.formats.detect import is_model_folder, open_model, sniff_file
from modeltrace.formats.source import ModelSource
from modeltrace.lineage import DEFAULT_ALPHA
from modeltrace.lineage.comparison import Comparison

Progress = Callable[[int, int], None]


def load_or_fingerprint(
    path: str | Path, *, full: bool = False, progress: Progress | None = None
) -> Fingerprint:
    """A fingerprint file as is, or a model fingerprinted now (``full``: the full-weight path)."""
    if is_fingerprint_file(path):
        return load_fingerprint(path)
    with open_model(path) as source:
        return build_fingerprint(source, Budget.full() if full else Budget(), progress)


@single_threaded_blas
def fingerprint(model: str | Path, output: str | Path, *, progress: Progress | None = None) -> dict[str, Any]:
    """Fingerprint ``model`` into the file ``output``; returns a summary (size, bytes read, blocks)."""
    with open_model(model) as source:
        built = build_fingerprint(source, Budget(), progress)
        transfer = _transfer(source)
    size = built.save(output)
    total = int(built.header.get("total_bytes") or 0)
    summary = {
        "model": str(model),
        "output": str(output),
        "file_bytes": size,
        "bytes_read": built.bytes_read,
        "total_bytes": total,
        "fraction_read": built.bytes_read / total if total else None,
        "mlp_blocks": len(built.blocks),
        "attention_layers": len(built.attention),  # layers whose value rows were kept (value-sign test)
        "anchors": len(built.anchors),
        "vocabulary": None if built.vocabulary is None else len(built.vocabulary),
        "role_method": built.header.get("role_method"),
    }
    if transfer is not None:
        summary["transfer"] = transfer
    return summary


def _transfer(source: ModelSource) -> dict[str, Any] | None:
    """Requests and bytes a remote model cost (retries included), the Hub resolver's share of the
    requests and the commit read (keys in docs/scale.md); None for a local model."""
    stats = source.transfer
    return None if stats is None else stats.report()


@single_threaded_blas
def compare(
    suspect: str | Path,
    base: str | Path,
    *,
    alpha: float = DEFAULT_ALPHA,
    full: bool = False,
    report: str | Path | None = None,
) -> Comparison:
    """Was ``suspect`` derived from ``base``? The verdict, its exact p-value, relation, layer map and
    the evidence; ``as_dict()`` is the JSON of ``compare --json`` (see docs/lineage.md)."""
    if not 0 < alpha < 1:
        raise UsageError(f"alpha must lie in (0, 1), got {alpha}.")
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="modeltrace-load") as pool:
        loaded = _start_loading(pool, suspect, base, full=full)
        # The statistics (scipy, ~0.3 s) load on first use, so that `modeltrace --help` stays quick;
        # here while two fingerprint files unzip on the pool's threads.
        from modeltrace.lineage.compare import compare_fingerprints
        from modeltrace.lineage.report import render_html

        result = compare_fingerprints(*loaded(), alpha=alpha)
    result = replace(result, suspect_path=str(suspect), base_path=str(base))
    if report is not None:
        Path(report).write_text(render_html(result.as_dict()), encoding="utf-8")
        result = replace(result, report=str(report))
    return result


def _start_loading(
    pool: ThreadPoolExecutor, suspect: str | Path, base: str | Path, *, full: bool
) -> Callable[[], tuple[Fingerprint, Fingerprint]]:
    """Both sides of a comparison, when called. Two fingerprint files start loading at once on ``pool``
    (unzipping and float16 -> float32 release the GIL: a Kimi K2 fingerprint with 320 anchors is
    50 MB, ~0.5 s to load); models are fingerprinted on the call, one after the other, as before (two
    remote models at once would double the connections to one host). Either way the suspect's error
    is the one raised when both fail."""
    if not (is_fingerprint_file(suspect) and is_fingerprint_file(base)):
        return lambda: (load_or_fingerprint(suspect, full=full), load_or_fingerprint(base, full=full))
    pending = [pool.submit(load_fingerprint, path) for path in (suspect, base)]
    return lambda: (pending[0].result(), pending[1].result())


def _candidate_kind(path: Path) -> str | None:
    """What a folder entry offers as a candidate (fingerprint, weight format, model folder), or why not
    (as ``"skip: reason"``): files are recognised by content, as every other command does."""
    if path.is_dir():
        return "folder"
    if is_fingerprint_file(path):
        return "fingerprint"
    try:
        detected = sniff_file(path)
    except FormatError as error:
        return f"skip: {error.reason}"
    if detected == "config":
        return "skip: a configuration without weights"
    return detected


def _candidate_paths(against: str | Path) -> tuple[list[Path], list[dict[str, str]]]:
    """The candidates in ``against`` and, for every entry left out, why."""
    root = Path(against)
    if root.is_file():
        return [root], []
    if not root.is_dir():
        raise UsageError(f"--against '{root}' is neither a file nor a folder of models/fingerprints.")
    if is_model_folder(root):
        return [root], []
    found: list[Path] = []
    skipped: list[dict[str, str]] = []
    for path in sorted(root.iterdir()):
        if path.name.startswith("."):
            skipped.append({"path": str(path), "reason": "hidden entry"})
            continue
        kind = _candidate_kind(path)
        if kind is not None and kind.startswith("skip: "):
            skipped.append({"path": str(path), "reason": kind.removeprefix("skip: ")})
        else:
            found.append(path)
    if not found:
        reasons = "; ".join(f"{Path(item['path']).name}: {item['reason']}" for item in skipped[:5])
        detail = f" ({reasons})." if reasons else "."
        raise UsageError(f"No models or fingerprints found in '{root}'{detail}")
    return found, skipped


@single_threaded_blas
def identify(
    suspect: str | Path,
    against: str | Path | list[str | Path],
    *,
    alpha: float = DEFAULT_ALPHA,
) -> dict[str, Any]:
    """Rank candidate bases for ``suspect`` (a folder of models/fingerprints, or a list of paths)."""
    if isinstance(against, list):
        paths, skipped = [Path(p) for p in against], []
    else:
        paths, skipped = _candidate_paths(against)
    # A folder of candidates often holds the suspect itself; it is no candidate for its own base.
    own_path = Path(suspect).resolve()
    paths = [path for path in paths if path.resolve() != own_path]
    if not paths:
        raise UsageError("No candidates left to compare against (the only one given is the suspect itself).")
    suspect_fp = load_or_fingerprint(suspect)
    candidates = [(str(path), load_or_fingerprint(path)) for path in paths]
    from modeltrace.lineage.identify import identify as identify_candidates

    result = identify_candidates(suspect_fp, candidates, alpha=alpha)
    result["skipped"] = skipped  # entries of the --against folder that are no candidate, and why
    return result
