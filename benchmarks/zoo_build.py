"""Zoo build time: wall seconds per model and in total, for the quick and/or full zoo.

Usage:
    PYTHONPATH=src python benchmarks/zoo_build.py DIR [--full] [--threads 2] [--seed 0]

Builds the quick zoo in DIR/quick (and the full one in DIR/full with --full) and prints one row
per model (transform, format, seconds, held-out loss before -> after where it trained), then the
totals. Timings depend on the machine and on what else runs on it; report them with both.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

from modeltrace import api


def build_and_report(folder: Path, quick: bool, threads: int, seed: int) -> None:
    started = time.perf_counter()
    manifest = api.load_zoo_manifest(api.build_zoo(folder, quick=quick, seed=seed, threads=threads))
    wall = time.perf_counter() - started
    print(f"\n{'quick' if quick else 'full'} zoo in {folder}")
    print(f"{'model':40s} {'transform':28s} {'format':12s} {'seconds':>8s}  loss before -> after")
    for model in manifest["models"]:
        metrics = model["metrics"]
        loss = (
            f"{metrics['loss_before']:.3f} -> {metrics['loss_after']:.3f}" if "loss_before" in metrics else ""
        )
        name, transform, fmt = model["name"], model["transform"], model["format"]
        print(f"{name:40s} {transform:28s} {fmt:12s} {model['seconds']:8.2f}  {loss}")
    kinds: dict[str, int] = {}
    for pair in manifest["pairs"]:
        kinds[pair["expected"]] = kinds.get(pair["expected"], 0) + 1
    print(f"{len(manifest['models'])} models, pairs {kinds}, wall {wall:.1f} s (threads={threads})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--full", action="store_true", help="also build the full zoo")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )
    build_and_report(arguments.directory / "quick", True, arguments.threads, arguments.seed)
    if arguments.full:
        build_and_report(arguments.directory / "full", False, arguments.threads, arguments.seed)


if __name__ == "__main__":
    main()
