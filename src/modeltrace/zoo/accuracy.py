"""Accuracy of the lineage engine over a zoo manifest: every pair compared, one row per pair, and a
table per transform (detection, false positives, median log10 p, layer maps, bytes read, time).

`modeltrace zoo accuracy`, `make demo`, the tests and ``benchmarks/lineage_accuracy.py`` share it
through the facade, which hands in the comparison (``compare``: suspect path, base path -> the
facade's compare result), so this module reads no model itself.

The manifest is a built zoo's ``zoo.json`` (its version is checked: a zoo built by another
modeltrace is refused with the reason) or a hand-written list of pairs, ``{"pairs": [...]}`` or a
bare list, as the benchmark writes for its synthetic and seed-case families.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from modeltrace.errors import ZooError
from modeltrace.zoo.manifest import check_version

#: Verdicts that count as "the engine found the lineage".
POSITIVE = ("related", "same-weights")

#: The comparison the facade provides: (suspect, base) -> its result (verdict, log10_p, bytes_read,
#: layer_map).
Compare = Callable[[Path, Path], Mapping[str, Any]]
#: Called with (pairs done, pairs in total) before each pair and once at the end.
PairProgress = Callable[[int, int], None]


def read_pairs(manifest_path: Path) -> list[dict[str, Any]]:
    """The pairs of a zoo manifest (version-checked) or of a hand-written pair list."""
    try:
        data = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ZooError(
            f"cannot read zoo manifest '{manifest_path}' ({error}); build one with `modeltrace zoo build`"
        ) from error
    if isinstance(data, dict) and ("version" in data or "models" in data):  # written by `zoo build`
        check_version(data, manifest_path)
    pairs = data.get("pairs") if isinstance(data, dict) else data
    required = ("suspect", "base", "expected")
    if not isinstance(pairs, list) or not all(
        isinstance(pair, dict) and all(key in pair for key in required) for pair in pairs
    ):
        raise ZooError(
            f"'{manifest_path}' holds no list of pairs with {', '.join(required)}; "
            "give a zoo's zoo.json (see docs/zoo.md)"
        )
    return [dict(pair) for pair in pairs]


def _normalise_map(layer_map: Any) -> dict[str, int] | None:
    if layer_map is None:
        return None
    if isinstance(layer_map, list):
        return {str(i): int(v) for i, v in enumerate(layer_map)}
    return {str(k): int(v) for k, v in dict(layer_map).items()}


def run_pairs(
    manifest_path: Path, compare: Compare, progress: PairProgress | None = None
) -> list[dict[str, Any]]:
    """Compare every pair of a manifest; one row per pair (verdict, log10 p, layer map check)."""
    root = manifest_path.parent
    rows = []
    pairs = read_pairs(manifest_path)
    for index, pair in enumerate(pairs):
        if progress is not None:
            progress(index, len(pairs))
        start = time.perf_counter()
        suspect = root / pair.get("suspect_path", pair["suspect"])
        base = root / pair.get("base_path", pair["base"])
        result = compare(suspect, base)
        elapsed = time.perf_counter() - start
        expected_map = _normalise_map(pair.get("layer_map"))
        rows.append(
            {
                "relation": pair.get("relation") or pair["expected"],
                "expected": pair["expected"],
                "verdict": result["verdict"],
                "log10_p": result["log10_p"],
                "bytes_read": result["bytes_read"],
                "seconds": elapsed,
                "detected": result["verdict"] in POSITIVE,
                "map_ok": None if expected_map is None else result["layer_map"] == expected_map,
                "suspect": pair["suspect"],
                "base": pair["base"],
            }
        )
    if progress is not None:
        progress(len(pairs), len(pairs))
    return rows


def summarise(rows: list[dict[str, Any]], alpha: float) -> dict[str, Any]:
    """Per-transform detection and false-positive table of ``rows``, plus the overall pass/fail."""
    table = {}
    for relation in sorted({row["relation"] for row in rows}):
        group = [row for row in rows if row["relation"] == relation]
        positives = [row for row in group if row["expected"] in POSITIVE]
        negatives = [row for row in group if row["expected"] not in POSITIVE]
        finite = [row["log10_p"] for row in group if row["log10_p"] is not None]
        maps = [row["map_ok"] for row in group if row["map_ok"] is not None]
        table[relation] = {
            "pairs": len(group),
            "detected": sum(row["detected"] for row in positives),
            "positives": len(positives),
            "false_positives": sum(row["detected"] for row in negatives),
            "negatives": len(negatives),
            "median_log10_p": statistics.median(finite) if finite else None,
            "layer_map_ok": f"{sum(maps)}/{len(maps)}" if maps else "-",
            "median_bytes_read": statistics.median(row["bytes_read"] for row in group),
            "median_seconds": statistics.median(row["seconds"] for row in group),
        }
    missed = [r for r in rows if r["expected"] in POSITIVE and not r["detected"]]
    false_pos = [r for r in rows if r["expected"] not in POSITIVE and r["detected"]]
    wrong_maps = [r for r in rows if r["map_ok"] is False]
    return {
        "table": table,
        "rows": rows,
        "missed": missed,
        "false_positives": false_pos,
        "wrong_maps": wrong_maps,
        # Exact p-values flag each independent pair with probability up to alpha: this many by chance.
        "expected_false_positives": alpha * sum(r["expected"] not in POSITIVE for r in rows),
        "ok": not (missed or false_pos or wrong_maps),
    }
