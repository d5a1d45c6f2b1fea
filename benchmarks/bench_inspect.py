"""How long ``inspect`` takes: config-only cards of the real configs, and the demo zoo's weights.

Run: ``PYTHONPATH=src python benchmarks/bench_inspect.py [DATA_DIR]`` (a folder holding configs/;
default tests/data). Prints a table; not a test.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from modeltrace import api


def _timed(path: Path, repeats: int = 3) -> tuple[float, dict]:
    best = float("inf")
    card: dict = {}
    for _ in range(repeats):
        start = time.perf_counter()
        card = api.inspect(path)
        best = min(best, time.perf_counter() - start)
    return best, card


def main() -> None:
    data = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "tests" / "data"
    paths = sorted(p for p in (data / "configs").glob("*.json") if not p.name.endswith(".index.json"))
    with tempfile.TemporaryDirectory() as home:
        start = time.perf_counter()
        zoo = api.build_demo_zoo(Path(home))
        build_seconds = time.perf_counter() - start
        paths += api.demo_zoo_members(zoo)
        print(f"demo zoo built in {build_seconds * 1000:.0f} ms")
        print(f"{'model':<36} {'format':<12} {'tensors':>9} {'total params':>18} {'ms (best of 3)':>15}")
        for path in paths:
            seconds, card = _timed(path)
            tensors = card["tensor_count"] if card["tensor_count"] is not None else "-"
            row = f"{path.name:<36} {card['format']:<12} {tensors:>9} {card['total_params']:>18,}"
            print(f"{row} {seconds * 1000:>15.1f}")


if __name__ == "__main__":
    main()
