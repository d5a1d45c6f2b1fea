"""Run the four commands on a hostile input in a child process, bounded in time and memory.

The child gets an address-space limit (``RLIMIT_AS``) well above the documented memory bound, so a
bomb fails fast instead of swapping the test machine; its peak resident memory (``ru_maxrss``)
is then checked against the bound itself.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

DRIVER = Path(__file__).with_name("hostile_driver.py")
#: docs/formats.md: on any input file under 100 MB each command ends within 10 s (on an idle
#: machine: the tests allow a loaded CI box six times that) and 1 GB of memory.
DOCUMENTED_SECONDS = 10
DOCUMENTED_MEMORY = 1024**3
#: Address space the child may map at all: numpy and BLAS reserve far more than they touch.
ADDRESS_SPACE_LIMIT = 6 * 1024**3


@dataclass
class Outcome:
    returncode: int
    seconds: float
    max_rss: int
    timed_out: bool
    results: list[dict] = field(default_factory=list)
    stderr: str = ""

    def problems(self) -> list[str]:
        """Everything that breaks the promise: a signal, a hang, a bomb, a traceback, exit not 0/3."""
        found = []
        if self.timed_out:
            found.append(f"timed out after {self.seconds:.0f} s")
        elif self.returncode != 0:
            found.append(f"child died with {self.returncode} ({self.stderr[-800:]})")
        if self.max_rss > DOCUMENTED_MEMORY:
            found.append(f"peak memory {self.max_rss / 1e6:,.0f} MB")
        for result in self.results:
            if result["traceback"] or result["exit"] not in (0, 3):
                detail = result["traceback"] or result["stderr"]
                found.append(f"{result['command']}: exit {result['exit']}: {detail}")
        return found

    def exits(self) -> dict[str, int]:
        return {result["command"]: result["exit"] for result in self.results}


def _limit_memory() -> None:  # runs in the child
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_LIMIT, ADDRESS_SPACE_LIMIT))


def run_commands(path: Path, workdir: Path, *commands: str, timeout: float = 60) -> Outcome:
    """Run the driver on ``path``; ``commands`` defaults to all four."""
    environment = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    started = time.monotonic()
    child = subprocess.Popen(
        [sys.executable, str(DRIVER), str(path), str(workdir), *commands],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=_limit_memory,
        env=environment,
        start_new_session=True,
    )
    timed_out = False
    try:
        stdout, stderr = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(child.pid, signal.SIGKILL)
        stdout, stderr = child.communicate()
    # The driver reports its own peak resident memory after each command (a child that died has
    # its signal or MemoryError traceback reported instead).
    seconds = time.monotonic() - started
    results = [json.loads(line) for line in stdout.decode().splitlines() if line.startswith("{")]
    peak = max((int(result.get("max_rss", 0)) for result in results), default=0)
    return Outcome(child.returncode, seconds, peak, timed_out, results, stderr.decode(errors="replace"))
