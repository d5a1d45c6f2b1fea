"""Run ``inspect``, ``digest``, ``fingerprint`` and ``compare`` on one path in this process and
print one JSON line per command: its exit code, seconds, and whether a traceback escaped.

Used as a subprocess by the hostile-file tests and ``benchmarks/hostile_files.py``, so that a
segfault, a hang or a memory blow-up is seen from outside (exit signal, timeout, ru_maxrss).
Usage: ``python hostile_driver.py PATH WORKDIR [COMMAND ...]``.
"""

from __future__ import annotations

import contextlib
import io
import json
import resource
import sys
import time
import traceback

from modeltrace.cli import main

COMMANDS = ("inspect", "digest", "fingerprint", "compare")


def _arguments(command: str, path: str, workdir: str) -> list[str]:
    if command == "fingerprint":
        return ["fingerprint", path, "-o", f"{workdir}/out.mtfp", "--json"]
    if command == "compare":
        return ["compare", path, path, "--json"]
    return [command, path, "--json"]


def run(command: str, path: str, workdir: str) -> dict[str, object]:
    stdout, stderr = io.StringIO(), io.StringIO()
    started = time.perf_counter()
    code: object = 0
    escaped = None
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            main(_arguments(command, path, workdir))
        except SystemExit as exit_:
            code = exit_.code if exit_.code is not None else 0
        except BaseException:  # a bug: what the CLI would print as a traceback, exit 1
            code = 1
            escaped = traceback.format_exc(limit=-6)
    return {
        "command": command,
        "exit": code,
        "seconds": round(time.perf_counter() - started, 3),
        "traceback": escaped,
        "stdout": stdout.getvalue()[-4000:],
        "stderr": stderr.getvalue()[-2000:],
        "max_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,  # Linux: KB
    }


if __name__ == "__main__":
    target, work = sys.argv[1], sys.argv[2]
    for name in sys.argv[3:] or COMMANDS:
        print(json.dumps(run(name, target, work)), flush=True)
