"""Where the scan's workers run: a local process pool (default) or Ray tasks.

Both take a module-level function and its inputs and yield the results as they finish, keeping a
bounded number of tasks in flight (a hub scan has millions of inputs; the parent holds a window,
not the whole queue): one loop, :func:`in_window`, given each executor's submit and wait. Workers
only compute (and may read the registry); the parent stores (SQLite allows one writer). Large
values every task needs (fingerprints) go through :meth:`Executor.share`: by value to a local
pool, once into Ray's object store for Ray tasks.

Ray is an optional extra (``pip install 'modeltrace[ray]'``) imported only when ``ray`` is chosen.
Without an address a local Ray instance is started with ``num_cpus`` workers and shut down after;
with one (``ray://HOST:10001`` or ``HOST:6379`` from ``ray start --head``) the tasks run on the
cluster, whose nodes need modeltrace installed (the same version).
"""

from __future__ import annotations

import multiprocessing
import os
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from typing import Any, TypeVar

from modeltrace.errors import UsageError

In = TypeVar("In")
Out = TypeVar("Out")
Handle = TypeVar("Handle")

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


def in_window(
    inputs: Iterable[In],
    submit: Callable[[In], Handle],
    wait: Callable[[list[Handle]], tuple[list[Out], list[Handle]]],
    window: int,
) -> Iterator[Out]:
    """Submit ``inputs`` keeping at most ``window`` in flight; yield the results as they finish.

    ``submit(item)`` starts one task and returns its handle; ``wait(pending)`` blocks until at least
    one has finished and returns (their results, the handles still pending). An input may be
    :data:`LATER`: nothing to submit now, but the consumer may queue more work when it has handled
    the next result (the scan's comparisons follow from the fingerprints before them). The loop
    then waits for a result instead of refilling; ``LATER`` with nothing in flight is a consumer bug.
    """
    pending: list[Handle] = []
    queue = iter(inputs)
    exhausted = False
    while True:
        while not exhausted and len(pending) < window:
            item = next(queue, _END)
            if item is _END:
                exhausted = True
            elif item is LATER:
                break
            else:
                pending.append(submit(item))
        if not pending:
            if exhausted:
                return
            raise RuntimeError("The scan's feed asked to wait with no task in flight (a bug).")
        results, pending = wait(pending)
        yield from results


#: An input of :func:`in_window` that says "nothing to submit yet".
LATER: Any = object()
_END: Any = object()


class Executor:
    """A started executor: :meth:`run` yields the results of a function over inputs, and
    :meth:`share` makes a large value (a fingerprint) available to every worker once."""

    kind = "local"
    #: Whether the workers may run on other machines (then they cannot open a local SQLite file).
    remote_workers = False

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def run(self, function: Callable[[In], Out], inputs: Iterable[In]) -> Iterator[Out]:
        raise NotImplementedError

    def share(self, key: str, load: Callable[[], bytes]) -> Any:
        """A handle to the bytes ``load()`` returns (``key`` names them: a content digest) that a
        task may carry and a worker pass to :func:`fetch_shared`."""
        return load()

    def close(self) -> None:
        pass


def fetch_shared(handle: Any) -> bytes:
    """In a worker: the bytes behind a handle from :meth:`Executor.share`."""
    if isinstance(handle, bytes):
        return handle
    import ray  # only a Ray executor shares by reference, so Ray is installed and running here

    return bytes(ray.get(handle))


class _LocalPool(Executor):
    def __init__(self, workers: int) -> None:
        super().__init__(workers)
        # "spawn": workers start clean, never a fork of a parent that holds threads (the progress
        # bar's) or an open database connection.
        context = multiprocessing.get_context("spawn")
        self._pool = ProcessPoolExecutor(
            max_workers=workers, mp_context=context, initializer=_one_thread_worker
        )

    def run(self, function: Callable[[In], Out], inputs: Iterable[In]) -> Iterator[Out]:
        def submit(item: In) -> Future[Out]:
            return self._pool.submit(function, item)

        def wait_one(pending: list[Future[Out]]) -> tuple[list[Out], list[Future[Out]]]:
            done, rest = wait(pending, return_when=FIRST_COMPLETED)
            return [future.result() for future in done], list(rest)

        return in_window(inputs, submit, wait_one, self.workers * IN_FLIGHT_PER_WORKER)

    def close(self) -> None:
        # A parent that stops early (an error, Ctrl-C) must not wait for the queued tasks.
        self._pool.shutdown(wait=True, cancel_futures=True)


class _RayTasks(Executor):
    kind = "ray"
    #: Fingerprints put in Ray's object store, by content, reused by every task that needs them.
    SHARED_KEPT = 4096

    def __init__(self, workers: int, address: str | None) -> None:
        super().__init__(workers)
        try:
            import ray
        except ImportError:
            raise UsageError(
                "--executor ray needs Ray: pip install 'modeltrace[ray]' (or pip install 'ray>=2.60')."
            ) from None
        self._ray = ray
        self.remote_workers = address is not None
        self._owned = not ray.is_initialized()
        if self._owned:
            if address:
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
            else:
                ray.init(
                    num_cpus=workers,
                    include_dashboard=False,
                    log_to_driver=False,
                    _system_config={"worker_register_timeout_seconds": RAY_WORKER_REGISTER_TIMEOUT_S},
                )
        self._shared: OrderedDict[str, Any] = OrderedDict()

    def run(self, function: Callable[[In], Out], inputs: Iterable[In]) -> Iterator[Out]:
        ray = self._ray
        task = ray.remote(num_cpus=1)(function)
        cluster_cpus = int(ray.cluster_resources().get("CPU", self.workers))

        def submit(item: In) -> Any:
            return task.remote(item)

        def wait_one(pending: list[Any]) -> tuple[list[Out], list[Any]]:
            done, rest = ray.wait(pending, num_returns=1)
            return [ray.get(reference) for reference in done], rest

        return in_window(inputs, submit, wait_one, max(1, cluster_cpus) * IN_FLIGHT_PER_WORKER)

    def share(self, key: str, load: Callable[[], bytes]) -> Any:
        # One put per fingerprint: a reference in a task's arguments costs nothing, and a node reads
        # the object once from the store whatever the number of its tasks that need it.
        reference = self._shared.get(key)
        if reference is None:
            reference = self._shared[key] = self._ray.put(load())
            if len(self._shared) > self.SHARED_KEPT:
                self._shared.popitem(last=False)  # freed once no pending task holds it
        else:
            self._shared.move_to_end(key)
        return reference

    def close(self) -> None:
        self._shared.clear()
        if self._owned:
            self._ray.shutdown()


@contextmanager
def open_executor(
    executor: str = "local", workers: int | None = None, ray_address: str | None = None
) -> Iterator[Executor]:
    """A started executor of ``executor``'s kind, stopped on exit."""
    check_executor(executor, workers, ray_address)
    count = workers or default_workers()
    started: Executor = _RayTasks(count, ray_address) if executor == "ray" else _LocalPool(count)
    try:
        yield started
    finally:
        started.close()
