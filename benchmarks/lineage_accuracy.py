"""Lineage accuracy benchmark: per transform, detection rate at alpha, false positives on independent
pairs, median log10 p, bytes read and time; and the >= 2 GB fingerprint-vs-full-weights check.

Usage:
    PYTHONPATH=src python benchmarks/lineage_accuracy.py ZOO/zoo.json        # a zoo manifest
    PYTHONPATH=src python benchmarks/lineage_accuracy.py --synthetic DIR     # build a small synthetic zoo
    PYTHONPATH=src python benchmarks/lineage_accuracy.py --big DIR           # 2 GB fingerprint check

A manifest is JSON ``{"pairs": [{"suspect", "base", "expected", "relation", "layer_map"}, ...]}`` (or a
bare list of pairs); paths are relative to the manifest. ``expected`` is ``related``, ``unrelated`` or
``same-weights``; ``layer_map`` (optional) is ``{suspect layer: base layer}`` or a list indexed by
suspect layer.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from modeltrace import api

POSITIVE = ("related", "same-weights")


def _pairs(manifest_path: Path) -> list[dict[str, Any]]:
    data = json.loads(manifest_path.read_text())
    pairs = data["pairs"] if isinstance(data, dict) else data
    return [dict(pair) for pair in pairs]


def _normalise_map(layer_map: Any) -> dict[str, int] | None:
    if layer_map is None:
        return None
    if isinstance(layer_map, list):
        return {str(i): int(v) for i, v in enumerate(layer_map)}
    return {str(k): int(v) for k, v in dict(layer_map).items()}


def run_pairs(manifest_path: str | Path, alpha: float = 0.01, full: bool = False) -> list[dict[str, Any]]:
    """Compare every pair of the manifest; one row per pair with what the table aggregates."""
    manifest_path = Path(manifest_path)
    root = manifest_path.parent
    rows = []
    for pair in _pairs(manifest_path):
        start = time.perf_counter()
        suspect = root / pair.get("suspect_path", pair["suspect"])
        base = root / pair.get("base_path", pair["base"])
        result = api.compare(suspect, base, alpha=alpha, full=full)
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
    return rows


def lineage_accuracy(manifest_path: str | Path, alpha: float = 0.01, full: bool = False) -> dict[str, Any]:
    """Per-transform summary of a manifest (what the benchmark prints), plus the overall pass/fail."""
    rows = run_pairs(manifest_path, alpha, full)
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
        "ok": not (missed or false_pos or wrong_maps),
    }


def print_table(summary: dict[str, Any], alpha: float) -> None:
    header = (
        f"{'transform':34s} {'pairs':>5s} {'detected':>9s} {'FP':>6s} {'med log10 p':>12s} "
        f"{'map':>6s} {'bytes read':>12s} {'time s':>7s}"
    )
    print(f"alpha = {alpha}")
    print(header)
    for relation, row in summary["table"].items():
        detected = f"{row['detected']}/{row['positives']}" if row["positives"] else "-"
        fp = f"{row['false_positives']}/{row['negatives']}" if row["negatives"] else "-"
        med = "n/a" if row["median_log10_p"] is None else f"{row['median_log10_p']:.1f}"
        print(
            f"{relation[:34]:34s} {row['pairs']:5d} {detected:>9s} {fp:>6s} {med:>12s} "
            f"{row['layer_map_ok']:>6s} {row['median_bytes_read']:12,.0f} {row['median_seconds']:7.2f}"
        )
    for row in summary["missed"] + summary["false_positives"] + summary["wrong_maps"]:
        print(
            f"  ! {row['relation']}: {row['suspect']} vs {row['base']} -> {row['verdict']} "
            f"(log10 p {row['log10_p']}, map ok {row['map_ok']})"
        )
    print("PASS" if summary["ok"] else "FAIL")


# --- synthetic models (tests/lineage/synthetic.py holds the generator and transforms) ----------------


def _synthetic_module() -> Any:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "lineage"))
    import synthetic  # type: ignore[import-not-found]

    return synthetic


def build_synthetic_zoo(folder: Path) -> Path:
    """A small stand-in zoo (until the real one is merged): transforms of one base and independent pairs."""
    syn = _synthetic_module()
    rng = np.random.default_rng(0)
    base = syn.make_params(1)
    models = {
        "base": base,
        "fine_tuned": syn.fine_tune(base, rng, 0.3),
        "units_permuted": syn.permute_units(base, rng),
        "residual_permuted": syn.rotate_residual(base, rng),
        "layers_dropped": syn.drop_layers(base, [0, 1, 3]),
        "layers_duplicated": syn.drop_layers(base, [0, 1, 1, 2, 3]),
    }
    for seed in range(10, 20):
        models[f"independent_{seed}"] = syn.make_params(seed, universal=0.3)
    for name, params in models.items():
        syn.write_model(folder / name, params)
    pairs = [
        {"suspect": "base", "base": "base", "expected": "same-weights", "relation": "identical"},
        {"suspect": "fine_tuned", "base": "base", "expected": "related", "relation": "fine-tuned"},
        {"suspect": "units_permuted", "base": "base", "expected": "related", "relation": "units permuted"},
        {
            "suspect": "residual_permuted",
            "base": "base",
            "expected": "related",
            "relation": "residual permuted",
        },
        {
            "suspect": "layers_dropped",
            "base": "base",
            "expected": "related",
            "relation": "layers dropped",
            "layer_map": [0, 1, 3],
        },
        {
            "suspect": "layers_duplicated",
            "base": "base",
            "expected": "related",
            "relation": "layers duplicated",
            "layer_map": [0, 1, 1, 2, 3],
        },
    ]
    pairs += [
        {
            "suspect": f"independent_{s}",
            "base": f"independent_{s + 1}",
            "expected": "unrelated",
            "relation": "independent",
        }
        for s in range(10, 20, 2)
    ]
    pairs += [
        {"suspect": f"independent_{s}", "base": "base", "expected": "unrelated", "relation": "independent"}
        for s in range(10, 20)
    ]
    manifest = folder / "zoo.json"
    manifest.write_text(json.dumps({"pairs": pairs}, indent=1))
    return manifest


def big_model_check(folder: Path) -> bool:
    """Write a >= 2 GB Llama-shaped safetensors model and a fine-tuned child; compare via fingerprints
    and via the full-weight path; print bytes read and verdicts of both."""
    from safetensors.numpy import save_file

    syn = _synthetic_module()
    hidden, inner, layers, vocab = 2048, 5632, 20, 32000
    rng = np.random.default_rng(0)
    for name, noise in (("big_base", 0.0), ("big_child", 0.2)):
        target = folder / name
        if (target / "model.safetensors").is_file():
            continue
        target.mkdir(parents=True, exist_ok=True)
        tensors = {
            "model.embed_tokens.weight": np.random.default_rng(1).standard_normal(
                (vocab, hidden), dtype=np.float32
            )
        }
        for layer in range(layers):
            p = f"model.layers.{layer}."
            layer_rng = np.random.default_rng(100 + layer)
            for role, shape in (
                ("self_attn.q_proj", (hidden, hidden)),
                ("self_attn.k_proj", (hidden, hidden)),
                ("self_attn.v_proj", (hidden, hidden)),
                ("self_attn.o_proj", (hidden, hidden)),
                ("mlp.gate_proj", (inner, hidden)),
                ("mlp.up_proj", (inner, hidden)),
                ("mlp.down_proj", (hidden, inner)),
            ):
                value = layer_rng.standard_normal(shape, dtype=np.float32)
                if noise:
                    value += noise * rng.standard_normal(shape, dtype=np.float32)
                tensors[p + role + ".weight"] = value.astype(np.float16)
            tensors[p + "post_attention_layernorm.weight"] = np.ones(hidden, dtype=np.float16)
        tensors["model.embed_tokens.weight"] = tensors["model.embed_tokens.weight"].astype(np.float16)
        save_file(tensors, str(target / "model.safetensors"))
        del tensors
        syn.write_model.__globals__["json"].dump(
            {
                "model_type": "llama",
                "hidden_size": hidden,
                "intermediate_size": inner,
                "vocab_size": vocab,
                "num_hidden_layers": layers,
            },
            (target / "config.json").open("w"),
        )
        vocab_map = {f"t{i}": i for i in range(vocab)}
        (target / "tokenizer.json").write_text(
            json.dumps({"model": {"type": "WordLevel", "vocab": vocab_map}})
        )
    size = (folder / "big_base" / "model.safetensors").stat().st_size
    print(f"model size: {size / 1e9:.2f} GB each")
    verdicts = {}
    for label, full in (("fingerprint", False), ("full weights", True)):
        start = time.perf_counter()
        result = api.compare(folder / "big_child", folder / "big_base", full=full)
        per_model = result["bytes_read_detail"]["suspect"]
        print(
            f"{label:13s}: verdict {result['verdict']}, log10 p {result['log10_p']:.1f} "
            f"({result['p_value_kind']}), "
            f"read {per_model:,} bytes of {size:,} per model ({per_model / size:.2%}), "
            f"{time.perf_counter() - start:.1f} s"
        )
        verdicts[label] = result["verdict"]
    fingerprint_fraction = api.fingerprint(folder / "big_base", folder / "big_base.mtfp")["fraction_read"]
    print(f"modeltrace fingerprint: read {fingerprint_fraction:.2%} of the bytes")
    ok = verdicts["fingerprint"] == verdicts["full weights"] and fingerprint_fraction <= 0.05
    print("PASS" if ok else "FAIL")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("manifest", nargs="?", help="zoo manifest (zoo.json)")
    parser.add_argument("--synthetic", metavar="DIR", help="build and run a small synthetic zoo in DIR")
    parser.add_argument("--big", metavar="DIR", help="run the >= 2 GB fingerprint check in DIR")
    parser.add_argument("--alpha", type=float, default=0.01)
    args = parser.parse_args()
    if args.big:
        big_model_check(Path(args.big))
    manifest = Path(args.manifest) if args.manifest else None
    if args.synthetic:
        manifest = build_synthetic_zoo(Path(args.synthetic))
    if manifest is not None:
        print_table(lineage_accuracy(manifest, args.alpha), args.alpha)
    elif not args.big:
        parser.error("give a manifest, --synthetic DIR or --big DIR")


if __name__ == "__main__":
    main()
