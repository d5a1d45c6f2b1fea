"""How long the CLI takes to answer ``--help`` and ``--version`` (target: under 0.3 s).

Run: ``.venv/bin/python benchmarks/startup.py [--runs N] [--other PATH/TO/modeltrace]``. Prints a
table of medians over N runs of each command, started as a user starts it (a new process through
the ``modeltrace`` console script). Floors come first, measured in the same loop: a bare
interpreter, importing Typer + Rich (the CLI framework, which modeltrace cannot go below) and
Typer's Rich help formatter, which every ``--help`` loads.
``--other`` times a second installation side by side, e.g. a checkout of an older commit through
a two-line wrapper: ``PYTHONPATH=/old/src exec .venv/bin/python -m modeltrace "$@"``.

Wall time is what a user waits; CPU time (user + system of the child) is steadier on a busy
machine, where other processes stretch the wall time. Not a test: timings belong here, and
``tests/cli/test_startup.py`` checks exactly (no clock) that start-up loads no heavy module.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS: list[tuple[str, list[str]]] = [
    ("modeltrace --version", ["--version"]),
    ("modeltrace --help", ["--help"]),
    ("modeltrace inspect --help", ["inspect", "--help"]),
    ("modeltrace label --help", ["label", "--help"]),
]


def _measure(argv: list[str], runs: int) -> tuple[float, float] | None:
    """Median wall and median CPU seconds of ``runs`` fresh processes running ``argv`` (None: it fails)."""
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        if subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0:
            return None  # e.g. an older modeltrace without --version
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="processes per command (median reported)")
    parser.add_argument("--other", type=Path, help="another modeltrace executable to time side by side")
    args = parser.parse_args()
    here = Path(sys.executable).with_name("modeltrace")
    executables = [("this checkout", here)] + ([("other", args.other)] if args.other else [])
    python = sys.executable
    rows: list[tuple[str, list[tuple[float, float] | None]]] = [
        ("python -c pass (floor)", [_measure([python, "-c", "pass"], args.runs)] * len(executables)),
        (
            "import typer + rich (floor)",
            [_measure([python, "-c", "import typer, rich.console, rich.table"], args.runs)]
            * len(executables),
        ),
        (  # what any --help adds: Typer's Rich help formatter (markdown-it, rich.traceback, ...)
            "+ typer.rich_utils (floor)",
            [_measure([python, "-c", "import typer, rich.console, typer.rich_utils"], args.runs)]
            * len(executables),
        ),
    ]
    for label, argv in COMMANDS:
        rows.append((label, [_measure([str(exe), *argv], args.runs) for _, exe in executables]))

    header = f"{'command':<30}" + "".join(f" {name + ' wall':>20} {'cpu':>7}" for name, _ in executables)
    print(
        f"median of {args.runs} runs, seconds; executables: " + ", ".join(f"{n}={e}" for n, e in executables)
    )
    print(header)
    print("-" * len(header))
    for label, figures in rows:
        cells = (f" {f[0]:>20.3f} {f[1]:>7.3f}" if f else f" {'fails':>20} {'-':>7}" for f in figures)
        print(f"{label:<30}" + "".join(cells))


if __name__ == "__main__":
    main()
