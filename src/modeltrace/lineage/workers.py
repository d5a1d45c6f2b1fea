"""Independent pieces of one comparison run on a few threads, with results bit for bit those of a
sequential run.

numpy's products and scipy's assignments release the GIL, so two threads keep two cores busy. Each
piece still runs exactly as it would alone (every product is the same single-threaded BLAS call: the
facade pins BLAS to one thread, ``api/_blas.py``), and results are gathered in submission order, so
which thread ran what, and when, cannot change a single bit. Threads that wait simply sleep (unlike
BLAS's own spinning workers, which slowed small products 40x on a busy machine).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

_T = TypeVar("_T")

#: More threads than this gain little on one comparison (its largest step has four equal pieces).
MAX_WORKERS = 4


def default_workers() -> int:
    """The cores this process may run on, at most :data:`MAX_WORKERS`."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(MAX_WORKERS, cores))


class _InPlace(Executor):
    """Runs each task at once in the caller's thread: one worker needs no thread at all."""

    def submit(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> Future[_T]:
        future: Future[_T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as error:  # re-raised by result(), as a thread pool's future does
            future.set_exception(error)
        return future


@contextmanager
def worker_pool(workers: int | None = None) -> Iterator[Executor]:
    """An executor of ``workers`` threads (default :func:`default_workers`); in place for one."""
    count = default_workers() if workers is None else workers
    if count <= 1:
        yield _InPlace()
        return
    with ThreadPoolExecutor(max_workers=count, thread_name_prefix="modeltrace-compare") as pool:
        yield pool


def gather(pool: Executor, tasks: list[Callable[[], _T]]) -> list[_T]:
    """Every task's result, in the order given (an exception in any is raised here)."""
    futures = [pool.submit(task) for task in tasks]
    return [future.result() for future in futures]


def split(count: int, parts: int) -> list[range]:
    """``range(count)`` cut into at most ``parts`` contiguous, nearly equal, non-empty ranges."""
    parts = max(1, min(parts, count))
    bounds = [count * part // parts for part in range(parts + 1)]
    return [range(bounds[i], bounds[i + 1]) for i in range(parts)]
