"""Lineage accuracy benchmark: per transform, detection rate at alpha, false positives on independent
pairs, median log10 p, bytes read and time; and the >= 2 GB fingerprint-vs-full-weights check.

Usage:
    PYTHONPATH=src python benchmarks/lineage_accuracy.py ZOO/zoo.json        # a zoo manifest
    PYTHONPATH=src python benchmarks/lineage_accuracy.py --synthetic DIR     # build a small synthetic zoo
    PYTHONPATH=src python benchmarks/lineage_accuracy.py --big DIR           # 2 GB fingerprint check
    PYTHONPATH=src python benchmarks/lineage_accuracy.py --seed-case DIR     # the Kimi-shaped family

A manifest is JSON ``{"pairs": [{"suspect", "base", "expected", "relation", "layer_map"}, ...]}`` (or a
bare list of pairs); paths are relative to the manifest. ``expected`` is ``related``, ``unrelated`` or
``same-weights``; ``layer_map`` (optional) is ``{suspect layer: base layer}`` or a list indexed by
suspect layer.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from modeltrace import api

# The runner lives in the package so that `modeltrace zoo accuracy`, `make demo` and the tests share it.
run_pairs = api.run_zoo_pairs
lineage_accuracy = api.zoo_accuracy


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
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: tests/ is a package
    from tests.lineage import synthetic

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


def build_seed_case_zoo(folder: Path, families: int = 5) -> Path:
    """The seed case (docs/zoo.md) from ``families`` seeds: per seed, the pruned INT4 vendor product vs
    its FP8 base (related, layer map identity) and the independent model vs the base (unrelated); and
    each product against the next seed's base (unrelated: same data and shape, another lineage)."""
    from modeltrace.zoo import seed_case

    seeds = [2 * index for index in range(families)]  # seed s and s + 1 are one family's two runs
    for seed in seeds:
        api.build_seed_case(folder / f"s{seed}", seed=seed)
    identity = list(range(seed_case.SHAPE.layers))
    pairs: list[dict[str, Any]] = []
    for index, seed in enumerate(seeds):
        base = f"s{seed}/{seed_case.BASE}"
        pairs.append({"suspect": f"s{seed}/{seed_case.CHILD}", "base": base, "expected": "related",
                      "relation": "seed case: pruned INT4 product", "layer_map": identity})  # fmt: skip
        pairs.append({"suspect": f"s{seed}/{seed_case.INDEPENDENT}", "base": base, "expected": "unrelated",
                      "relation": "seed case: independent, same arch"})  # fmt: skip
        other = f"s{seeds[(index + 1) % len(seeds)]}/{seed_case.BASE}"
        pairs.append({"suspect": f"s{seed}/{seed_case.CHILD}", "base": other, "expected": "unrelated",
                      "relation": "seed case: product vs other base"})  # fmt: skip
    manifest = folder / "zoo.json"
    manifest.write_text(json.dumps({"pairs": pairs}, indent=1))
    return manifest


def big_model_check(folder: Path) -> bool:
    """Write a >= 2 GB Llama-shaped safetensors model, a fine-tuned child and an independent model;
    compare child and independent model with the base via fingerprints and via the full-weight path;
    print bytes read and verdicts of both paths."""
    from safetensors.numpy import save_file

    hidden, inner, layers, vocab = 2048, 5632, 20, 32000
    rng = np.random.default_rng(0)
    # (name, seed of the layer weights, noise added on top): the child keeps the base's weights.
    for name, layer_seed, noise in (("big_base", 100, 0.0), ("big_child", 100, 0.2), ("big_other", 500, 0.0)):
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
            layer_rng = np.random.default_rng(layer_seed + layer)
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
        json.dump(
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
    verdicts: dict[tuple[str, str], str] = {}
    for suspect in ("big_child", "big_other"):
        for label, full in (("fingerprint", False), ("full weights", True)):
            start = time.perf_counter()
            result = api.compare(folder / suspect, folder / "big_base", full=full)
            per_model = (result.bytes_read_detail or {}).get("suspect", 0)
            log10_p = "n/a" if result.log10_p is None else f"{result.log10_p:.1f}"
            print(
                f"{suspect} vs big_base, {label:12s}: verdict {result.verdict}, log10 p {log10_p} "
                f"({result.p_value_kind}), "
                f"read {per_model:,} bytes of {size:,} per model ({per_model / size:.2%}), "
                f"{time.perf_counter() - start:.1f} s"
            )
            verdicts[suspect, label] = result.verdict
    fingerprint_fraction = api.fingerprint(folder / "big_base", folder / "big_base.mtfp")["fraction_read"]
    print(f"modeltrace fingerprint: read {fingerprint_fraction:.2%} of the bytes")
    same_verdicts = all(
        verdicts[suspect, "fingerprint"] == verdicts[suspect, "full weights"]
        for suspect in ("big_child", "big_other")
    )
    expected = (
        verdicts["big_child", "fingerprint"] == "related"
        and verdicts["big_other", "fingerprint"] == "unrelated"
    )
    ok = same_verdicts and expected and fingerprint_fraction <= 0.05
    print("PASS" if ok else "FAIL")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("manifest", nargs="?", help="zoo manifest (zoo.json)")
    parser.add_argument("--synthetic", metavar="DIR", help="build and run a small synthetic zoo in DIR")
    parser.add_argument("--big", metavar="DIR", help="run the >= 2 GB fingerprint check in DIR")
    parser.add_argument("--seed-case", metavar="DIR", help="build and run the seed-case family in DIR")
    parser.add_argument("--alpha", type=float, default=0.01)
    args = parser.parse_args()
    if args.big:
        big_model_check(Path(args.big))
    manifest = Path(args.manifest) if args.manifest else None
    if args.synthetic:
        manifest = build_synthetic_zoo(Path(args.synthetic))
    if args.seed_case:
        manifest = build_seed_case_zoo(Path(args.seed_case))
    if manifest is not None:
        print_table(lineage_accuracy(manifest, args.alpha), args.alpha)
    elif not args.big:
        parser.error("give a manifest, --synthetic DIR, --seed-case DIR or --big DIR")


if __name__ == "__main__":
    main()
