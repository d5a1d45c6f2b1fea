"""The scan's parent loop: fingerprints come back from the workers, the parent registers them in
the order given, shortlists each newcomer's candidates, hands its comparisons back to the workers,
then ranks them (Holm over the registry) and records the edges, again in the order given.

Why this split keeps a parallel scan's graph identical to ``registry add`` run model after model:

* a newcomer's candidates and Holm's family are what the registry holds when it is registered
  (every source before it, none after), so they are chosen right after its registration and before
  the next one's;
* a pairwise comparison depends on the two fingerprints alone (computed with one BLAS thread, the
  same bits in any process), so the workers may make them in any order;
* what does depend on earlier detections (the detected bases that join a shortlist, the edges a
  newcomer's detection replaces) is read just before its ranking, which runs in order, after the
  detections of every model registered before it are recorded. A base that joined since the
  comparisons were handed out is compared in the parent (rare: few bases, and only with a shortlist).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from modeltrace.errors import ModeltraceError, UsageError

if TYPE_CHECKING:
    from modeltrace.api._registry_detect import PendingDetection
    from modeltrace.api._scan import _Run
    from modeltrace.scan.executors import Executor
    from modeltrace.scan.outcome import CompareResult, CompareTask, ScanTask, WorkResult

#: Where the workers read the candidates' fingerprints (docs/scale.md, "Scanning a hub"): auto is
#: the registry for the local pool and a local Ray instance, shared for Ray on a cluster.
FINGERPRINT_ACCESS = ("auto", "registry", "shared")


def check_access(access: str) -> None:
    if access not in FINGERPRINT_ACCESS:
        raise UsageError(
            f"--fingerprints-from must be one of {', '.join(FINGERPRINT_ACCESS)}, got {access!r}."
        )


def worker_registry_url(access: str, executor: Executor, url: str) -> str | None:
    """The registry URL the workers open read-only, or None when the parent shares the bytes."""
    in_memory = url.rstrip("/") == "sqlite:" or (url.startswith("sqlite") and ":memory:" in url)
    if access == "shared" or in_memory:
        return None
    if access == "registry":
        return url
    # A cluster's nodes cannot open this machine's SQLite file, and may not reach its PostgreSQL.
    return None if executor.remote_workers else url


class ScanPipeline:
    """The parent's side of one scan: feeds the executor and takes what comes back."""

    def __init__(
        self,
        run: _Run,
        executor: Executor,
        tasks: list[ScanTask],
        *,
        detect: bool,
        alpha: float | None,
        registry_url: str | None,
    ) -> None:
        from modeltrace.lineage import DEFAULT_ALPHA

        self.run = run
        self.executor = executor
        self.tasks = tasks
        self.detect = detect
        self.alpha = alpha
        self.level = DEFAULT_ALPHA if alpha is None else alpha
        self.registry_url = registry_url
        self.order = {task.source: index for index, task in enumerate(tasks)}
        self.fingerprinted: dict[int, WorkResult] = {}
        self.next_register = 0
        #: Registered, waiting for their comparisons: the row so far and the detection to finish.
        self.staged: dict[int, tuple[dict[str, Any], PendingDetection | None]] = {}
        self.compared: dict[int, CompareResult] = {}
        self.next_finish = 0
        self.queue: deque[CompareTask] = deque()

    def feed(self) -> Iterator[Any]:
        """The tasks to submit: comparisons first (they finish rows), then the next source; once all
        sources are out, comparisons as registrations make them, ``LATER`` while none is ready."""
        from modeltrace.scan.executors import LATER

        for task in self.tasks:
            while self.queue:
                yield self.queue.popleft()
            yield task
        while self.queue or self.next_register < len(self.tasks):
            yield self.queue.popleft() if self.queue else LATER

    def take(self, outcome: WorkResult | CompareResult) -> None:
        from modeltrace.scan.outcome import CompareResult

        self.run.worker_cpu_s += outcome.cpu_seconds
        if isinstance(outcome, CompareResult):
            self.compared[outcome.index] = outcome
            self.run.comparisons += len(outcome.comparisons)
        else:
            self.fingerprinted[self.order[outcome.source]] = outcome
            # Registered in the order given, whatever order the workers finish in: the registry's
            # ids, the edge directions assumed from registration order, the candidates do not
            # depend on timing.
            while self.next_register in self.fingerprinted:
                self._register(self.next_register, self.fingerprinted.pop(self.next_register))
                self.next_register += 1
        self._finish_ready()

    def _register(self, index: int, outcome: WorkResult) -> None:
        from modeltrace.api._registry_detect import load_fingerprint_bytes, plan_detection
        from modeltrace.lineage.sketch import SKETCH_VERSION

        row, model = self.run.register(outcome, detect=self.detect)
        pending = None
        if model is not None and outcome.arrival is not None and outcome.arrival.fingerprint is not None:
            try:
                sketch = outcome.sketch if outcome.sketch_version == SKETCH_VERSION else None
                if sketch is not None:
                    # Stored before the candidates are searched: the index takes it as made here.
                    self.run.store.sketches.put(model["fingerprint"], SKETCH_VERSION, sketch)
                    pending = plan_detection(self.run.store, model, sketch=sketch)
                else:
                    pending = plan_detection(
                        self.run.store, model, load_fingerprint_bytes(outcome.arrival.fingerprint)
                    )
            except ModeltraceError as error:
                row = _detection_failed(row, str(error), error.exit_code)
            if pending is not None:
                self.queue.append(self._compare_task(index, outcome, pending))
        self.staged[index] = (row, pending)

    def _compare_task(self, index: int, outcome: WorkResult, pending: PendingDetection) -> CompareTask:
        from modeltrace.scan.outcome import CompareTask

        suspect = pending.model["fingerprint"]
        candidates = tuple(dict.fromkeys(meta["fingerprint"] for meta in pending.candidates))
        shared: dict[str, Any] = {}
        if self.registry_url is None:
            data = outcome.arrival.fingerprint if outcome.arrival is not None else None
            shared[suspect] = self.executor.share(
                suspect, lambda: data or self.run.store.fingerprint(suspect)
            )
            for digest in candidates:
                shared[digest] = self.executor.share(digest, lambda d=digest: self.run.store.fingerprint(d))
        return CompareTask(index=index, source=outcome.source, suspect=suspect, candidates=candidates,
                           alpha=self.level, registry=self.registry_url, shared=shared)  # fmt: skip

    def _finish_ready(self) -> None:
        """Rank and record, in the order given, every newcomer whose comparisons are all back."""
        from modeltrace.api._registry_detect import finish_detection

        while self.next_finish in self.staged:
            row, pending = self.staged[self.next_finish]
            if pending is not None:
                compared = self.compared.pop(self.next_finish, None)
                if compared is None:
                    return
                if compared.reason is not None:
                    row = _detection_failed(row, compared.reason, compared.exit_code, compared.traceback)
                else:
                    made = len(compared.comparisons)
                    try:
                        row["detected"] = len(finish_detection(self.run.store, pending, compared.comparisons,
                                                               self.alpha))  # fmt: skip
                        self.run.parent_comparisons += len(compared.comparisons) - made
                    except ModeltraceError as error:
                        row = _detection_failed(row, str(error), error.exit_code)
            del self.staged[self.next_finish]
            self.next_finish += 1
            self.run.finish(row, read=True)


def _detection_failed(
    row: dict[str, Any], reason: str, exit_code: int, trace: str | None = None
) -> dict[str, Any]:
    failed = {**row, "status": "failed", "reason": f"registered, but lineage detection failed: {reason}",
              "exit_code": exit_code}  # fmt: skip
    if trace:
        failed["traceback"] = trace
    return failed
