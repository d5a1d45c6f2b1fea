"""Time the offline probe-set optimisation and print a table (not a test).

Run: PYTHONPATH=src python benchmarks/probe_set.py
"""

from __future__ import annotations

import time

from modeltrace.probe import library, probeset


def main() -> None:
    specs = library.builtin_specs()
    started = time.perf_counter()
    references = {spec.name: library.load(spec) for spec in specs}
    loaded = time.perf_counter()
    built = probeset.build_probe_set(references, library.library_digest(specs))
    done = time.perf_counter()
    print(f"{'step':<28}{'seconds':>10}")
    print(f"{'load ' + str(len(specs)) + ' references':<28}{loaded - started:>10.2f}")
    print(f"{'optimise ' + str(len(built.units)) + ' units':<28}{done - loaded:>10.2f}")
    print(f"min pair distance: {built.min_pair_distance} of {len(built.units)} units")
    print(f"weakest pairs: {built.weakest_pairs}")


if __name__ == "__main__":
    main()
