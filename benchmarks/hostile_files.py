"""Seconds and peak memory of ``inspect``/``digest``/``fingerprint``/``compare`` on hostile files.

Builds every hostile input of ``tests/formats/test_hostile_files.py`` (issue 19) and runs the four
commands on each in a child process, as the test does, then prints per case the slowest command's
seconds, the child's peak resident memory and the exit codes, against the bound docs/formats.md
states (10 s per command on an idle core, 1 GB). Not a test: run it on an idle machine.

Run: ``.venv/bin/python benchmarks/hostile_files.py``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: tests/ is a package

from tests.formats.hostile_run import DOCUMENTED_MEMORY, DOCUMENTED_SECONDS, run_commands
from tests.formats.test_hostile_files import CASES


def main() -> None:
    print(f"{'case':40s} {'slowest s':>9s} {'peak MB':>8s}  exits (inspect digest fingerprint compare)")
    worst_seconds = worst_memory = 0.0
    for case, build in CASES.items():
        with tempfile.TemporaryDirectory() as scratch:
            folder = Path(scratch) / "model"
            folder.mkdir()
            outcome = run_commands(build(folder), Path(scratch), timeout=120)
        slowest = max((float(result["seconds"]) for result in outcome.results), default=outcome.seconds)
        worst_seconds, worst_memory = max(worst_seconds, slowest), max(worst_memory, outcome.max_rss)
        exits = " ".join(str(code) for code in outcome.exits().values()) or f"died {outcome.returncode}"
        print(f"{case:40s} {slowest:9.2f} {outcome.max_rss / 1e6:8.0f}  {exits}")
    print(
        f"\nworst: {worst_seconds:.2f} s per command (bound {DOCUMENTED_SECONDS} s), "
        f"{worst_memory / 1e6:.0f} MB (bound {DOCUMENTED_MEMORY / 1e6:.0f} MB)"
    )


if __name__ == "__main__":
    main()
