"""Where the scan's workers run: a local process pool (default) or Ray tasks.

Both take a module-level function and its inputs and yield the results as they finish, keeping a
bounded number of tasks in flight (a hub scan has millions of inputs; the parent holds a window,
not the whole queue). Workers only compute; the parent stores (SQLite allows one writer).

Ray is an optional extra (``pip install 'modeltrace[ray]'``) imported only when ``ray`` is chosen.
Without an address a local Ray instance is started with ``num_cpus`` workers and shut down after;
with one (``ray://HOST:10001`` or ``HOST:6379`` from ``ray start --head``) the tasks run on the
cluster, whose nodes need modeltrace installed (the same version).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, TypeVar

from modeltrace.errors import UsageError

In = TypeVar("In")
Out = TypeVar("Out")

EXECUTORS = ("local", "ray")
#: Tasks in flight per worker: enough to keep every worker busy while the parent stores results.
IN_FLIGHT_PER_WORKER = 4
#: A local Ray instance on a busy machine takes many seconds to register its workers.
RAY_WORKER_REGISTER_TIMEOUT_S = 180


def default_workers() -> int:
    """One worker per CPU this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def run_parallel(
    function: Callable[[In], Out],
    inputs: Iterable[In],
    *,
    executor: str = "local",
    workers: int | None = None,
    ray_address: str | None = None,
) -> Iterator[Out]:
    """``function(item)`` for every input on ``executor``'s workers, yielded in completion order."""
    check_executor(executor, workers, ray_address)
    count = workers or default_workers()
    if executor == "ray":
        return _run_ray(function, inputs, count, ray_address)
    return _run_local(function, inputs, count)


def check_executor(executor: str, workers: int | None, ray_address: str | None) -> None:
    """Refuse an executor, worker count or Ray address that cannot work (a usage error)."""
    if executor not in EXECUTORS:
        raise UsageError(f"--executor must be one of {', '.join(EXECUTORS)}, got {executor!r}.")
    if workers is not None and workers < 1:
        raise UsageError(f"--workers must be at least 1, got {workers}.")
    if ray_address and executor != "ray":
        raise UsageError("--ray-address needs --executor ray.")


#: Each worker is one CPU's worth of work: native thread pools (BLAS, OpenMP, the tokenizers
#: library) sized to the whole machine in every worker oversubscribe the cores several times over.
#: Ray sets OMP_NUM_THREADS=1 in its workers for the same reason.
ONE_THREAD_ENVIRONMENT = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "RAYON_NUM_THREADS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def _one_thread_worker() -> None:
    """Pool initializer: runs before a task imports numpy, so the limits take effect."""
    for key, value in ONE_THREAD_ENVIRONMENT.items():
        os.environ.setdefault(key, value)


def _run_local(function: Callable[[In], Out], inputs: Iterable[In], workers: int) -> Iterator[Out]:
    # "spawn": workers start clean, never a fork of a parent that holds threads (the progress bar's)
    # or an open database connection.
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_one_thread_worker)
    try:
        pending: set[Future[Out]] = set()
        queue = iter(inputs)
        window = workers * IN_FLIGHT_PER_WORKER
        exhausted = False
        while True:
            while not exhausted and len(pending) < window:
                item = next(queue, _END)
                if item is _END:
                    exhausted = True
                else:
                    pending.add(pool.submit(function, item))
            if not pending:
                return
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()
    finally:
        # A parent that stops early (an error, Ctrl-C) must not wait for the queued tasks.
        pool.shutdown(wait=True, cancel_futures=True)


_END: Any = object()


def _run_ray(
    function: Callable[[In], Out], inputs: Iterable[In], workers: int, address: str | None
) -> Iterator[Out]:
    try:
        import ray
    except ImportError:
        raise UsageError(
            "--executor ray needs Ray: pip install 'modeltrace[ray]' (or pip install 'ray>=2.60')."
        ) from None
    owned = not ray.is_initialized()
    if owned:
        if address:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(
                num_cpus=workers,
                include_dashboard=False,
                log_to_driver=False,
                _system_config={"worker_register_timeout_seconds": RAY_WORKER_REGISTER_TIMEOUT_S},
            )
    try:
        task = ray.remote(num_cpus=1)(function)
        cluster_cpus = int(ray.cluster_resources().get("CPU", workers))
        window = max(1, cluster_cpus) * IN_FLIGHT_PER_WORKER
        pending: list[Any] = []
        queue = iter(inputs)
        exhausted = False
        while True:
            while not exhausted and len(pending) < window:
                item = next(queue, _END)
                if item is _END:
                    exhausted = True
                else:
                    pending.append(task.remote(item))
            if not pending:
                return
            done, pending = ray.wait(pending, num_returns=1)
            for reference in done:
                yield ray.get(reference)
    finally:
        if owned:
            ray.shutdown()
