"""The facade for ``modeltrace scan``: fingerprint many models in parallel into the registry.

The parent expands the sources, pins remote ones to a revision, skips those the registry already
holds (before reading anything heavy), and hands the rest to an executor (a local process pool or
Ray tasks) whose workers read each source into an Arrival. The parent alone writes: it stores each
arrival as it comes back, shortlists the registered models it is to be compared with (as
``registry add`` does), and the workers make the comparisons; the parent ranks them and records
the edges (api/_scan_pipeline.py), so the detected-lineage graph is up to date when the scan ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modeltrace.errors import ModeltraceError, UsageError

if TYPE_CHECKING:
    from modeltrace.registry import Registry
    from modeltrace.scan.outcome import ScanTask, WorkResult

#: ``progress(state)`` after every source: total, done, registered, skipped, failed, bytes,
#: requests, elapsed (seconds), read (sources read by workers so far) and the last source.
ScanProgress = Callable[[dict[str, Any]], None]

#: Exit codes of a scan with failures (docs/scale.md): the most telling family wins.
EXIT_BUG, EXIT_UNREACHABLE, EXIT_UNREADABLE = 1, 4, 3


def scan(
    sources: list[str],
    *,
    executor: str = "local",
    workers: int | None = None,
    ray_address: str | None = None,
    namespace: str | None = None,
    db: str | None = None,
    registry: Registry | None = None,
    retries: int = 2,
    backoff_s: float = 1.0,
    detect: bool = True,
    alpha: float | None = None,
    fingerprints_from: str = "auto",
    progress: ScanProgress | None = None,
) -> dict[str, Any]:
    """Fingerprint every source and register it; returns ``{"results": [...], "totals": {...},
    "ignored": [...], "exit_code": int}`` (keys in docs/scale.md, "Scanning a hub").

    ``detect``: compare each newcomer with the registered models (in the workers) and record the
    edges found. ``fingerprints_from``: where the workers read the candidates' fingerprints:
    ``registry`` (they open it read-only), ``shared`` (the parent sends them: by value to a local
    pool, through Ray's object store to Ray tasks), ``auto`` (the registry, except for a Ray
    cluster, whose nodes may not reach it)."""
    from modeltrace.api._registry import open_registry
    from modeltrace.api._scan_pipeline import check_access
    from modeltrace.registry.tokens import check_namespace
    from modeltrace.scan.executors import check_executor
    from modeltrace.scan.sources import expand_sources

    if not sources:
        raise UsageError("Give at least one source: a model folder or file, a glob, a URL, hf://ORG/REPO "
                         "or @FILE listing sources.")  # fmt: skip
    check_executor(executor, workers, ray_address)
    check_access(fingerprints_from)
    if namespace is not None:
        check_namespace(namespace)
    if retries < 0:
        raise UsageError(f"--retries must be 0 or more, got {retries}.")
    if alpha is not None and not 0 < alpha < 1:
        raise UsageError(f"alpha must lie in (0, 1), got {alpha}.")
    started = time.perf_counter()
    expanded = expand_sources(sources)
    store, owned = (registry, False) if registry is not None else (open_registry(db), True)
    try:
        run = _Run(store, len(expanded.sources) + len(expanded.unusable), started, progress)
        for argument, reason in expanded.unusable:
            run.finish(_row(argument, "failed", reason=reason, exit_code=EXIT_UNREADABLE))
        tasks = run.plan(expanded.sources, namespace, retries, backoff_s,
                         sketch=detect and _shortlist_reached(store, len(expanded.sources)))  # fmt: skip
        run.emit(None)
        if tasks:
            from modeltrace.api._scan_pipeline import ScanPipeline, worker_registry_url
            from modeltrace.api._scan_worker import run_task
            from modeltrace.scan.executors import open_executor

            with open_executor(executor, workers, ray_address) as pool:
                reader = worker_registry_url(fingerprints_from, pool, store.url)
                run.fingerprints_from = "registry" if reader else "shared"
                pipeline = ScanPipeline(run, pool, tasks, detect=detect, alpha=alpha, registry_url=reader)
                for outcome in pool.run(run_task, pipeline.feed()):
                    pipeline.take(outcome)
        return run.report(expanded.ignored, executor, workers)
    finally:
        if owned:
            store.close()


def _row(source: str, status: str, **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"source": source, "pinned": source, "status": status, "reason": None,
                           "model": None, "model_id": None, "digest": None, "bytes": 0, "requests": 0,
                           "resolver_requests": 0, "seconds": 0.0, "attempts": 0, "detected": 0,
                           "exit_code": 0}  # fmt: skip
    row.update(fields)
    return row


class _Run:
    """The state of one scan in the parent: results so far and the progress they report."""

    def __init__(self, store: Registry, total: int, started: float, progress: ScanProgress | None) -> None:
        self.store = store
        self.total = total
        self.started = started
        self.progress = progress
        self.rows: list[dict[str, Any]] = []
        self.read = 0
        self.pinned: dict[str, str] = {}
        self.pin_requests: dict[str, int] = {}
        self.cpu_started = time.process_time()
        #: Pairs compared by the workers, and the CPU seconds the workers' tasks took (ScanPipeline).
        self.comparisons = 0
        #: Bases detected meanwhile that joined a shortlist after its comparisons were handed out.
        self.parent_comparisons = 0
        self.worker_cpu_s = 0.0
        self.fingerprints_from: str | None = None

    def plan(
        self, sources: list[str], namespace: str | None, retries: int, backoff_s: float, *, sketch: bool
    ) -> list[ScanTask]:
        """Pin every source and keep those the registry does not hold yet; report the others."""
        from modeltrace.formats.remote import is_remote
        from modeltrace.registry.sources import registered_sources
        from modeltrace.scan.outcome import ScanTask
        from modeltrace.scan.revision import pin_sources

        pins = pin_sources([source for source in sources if is_remote(source)])
        known = registered_sources(self.store, [pins[s].pinned if s in pins else s for s in sources])
        tasks = []
        for source in sources:
            pin = pins.get(source)
            pinned = pin.pinned if pin is not None else source
            self.pinned[source] = pinned
            self.pin_requests[source] = pin.requests if pin is not None else 0
            if pin is not None and pin.error is not None:
                self.finish(_row(source, "failed", reason=f"Cannot read '{source}': {pin.error}",
                                 exit_code=EXIT_UNREACHABLE, requests=pin.requests,
                                 resolver_requests=pin.requests))  # fmt: skip
                continue
            held = known.get(pinned)
            if held is not None and (pin is not None or not _changed_since(Path(source), held["created_at"])):
                self.finish(_row(source, "skipped", pinned=pinned, reason=_skip_reason(source, pinned, held),
                                 model=f"{held['namespace']}/{held['name']}", model_id=held["id"],
                                 digest=held["digest"], requests=self.pin_requests[source],
                                 resolver_requests=self.pin_requests[source]))  # fmt: skip
                continue
            tasks.append(ScanTask(source=source, pinned=pinned, remote=pin is not None, namespace=namespace,
                                  retries=retries, backoff_s=backoff_s, sketch=sketch))  # fmt: skip
        return tasks

    def register(self, outcome: WorkResult, *, detect: bool) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Store what a worker read (the parent is the only writer), as ``registry add`` does
        (api/_registry.py::_register); returns the row and, when its lineage is to be detected
        (``detect`` and a fingerprint newly attached), the registered model."""
        fields: dict[str, Any] = {
            "pinned": self.pinned.get(outcome.source, outcome.source),
            "bytes": outcome.bytes_read,
            "requests": outcome.requests + self.pin_requests.get(outcome.source, 0),
            # A revision's pin is one resolve of a file at that revision, so it counts here too.
            "resolver_requests": outcome.resolver_requests + self.pin_requests.get(outcome.source, 0),
            "seconds": round(outcome.seconds, 3),
            "attempts": outcome.attempts,
        }
        if outcome.retry_reasons:
            fields["retried_after"] = outcome.retry_reasons
        if outcome.arrival is None:
            if outcome.traceback:
                fields["traceback"] = outcome.traceback
            return _row(
                outcome.source, "failed", reason=outcome.reason, exit_code=outcome.exit_code, **fields
            ), None
        arrival = outcome.arrival
        fields["digest"] = arrival.digest
        try:
            model, created, attached = self.store.add(arrival)
        except ModeltraceError as error:
            return _row(
                outcome.source, "failed", reason=str(error), exit_code=error.exit_code, **fields
            ), None
        fields.update(model=f"{model['namespace']}/{model['name']}", model_id=model["id"])
        if not created and not attached:
            held = f"{model['namespace']}/{model['name']} (id {model['id']})"
            return _row(outcome.source, "skipped", reason=f"same content digest as {held}", **fields), None
        return _row(outcome.source, "registered", **fields), model if detect and attached else None

    def finish(self, row: dict[str, Any], *, read: bool = False) -> None:
        self.rows.append(row)
        self.read += read
        self.emit(row["source"])

    def emit(self, last: str | None) -> None:
        """Report the state so far to ``progress`` (also once before the workers start)."""
        if self.progress is not None:
            counts = {status: 0 for status in ("registered", "skipped", "failed")}
            for item in self.rows:
                counts[item["status"]] += 1
            self.progress({"total": self.total, "done": len(self.rows), **counts, "read": self.read,
                           "bytes": sum(r["bytes"] for r in self.rows),
                           "requests": sum(r["requests"] for r in self.rows),
                           "elapsed": time.perf_counter() - self.started, "last": last})  # fmt: skip

    def report(self, ignored: list[tuple[str, str]], executor: str, workers: int | None) -> dict[str, Any]:
        from modeltrace.scan.executors import default_workers

        order = {source: index for index, source in enumerate(self.pinned)}
        rows = sorted(self.rows, key=lambda row: order.get(row["source"], -1))
        seconds = time.perf_counter() - self.started
        counts = {status: sum(row["status"] == status for row in rows)
                  for status in ("registered", "skipped", "failed")}  # fmt: skip
        totals = {
            "sources": len(rows),
            **counts,
            "read": self.read,
            "bytes": sum(row["bytes"] for row in rows),
            "requests": sum(row["requests"] for row in rows),
            "resolver_requests": sum(row["resolver_requests"] for row in rows),
            "seconds": round(seconds, 3),
            "models_per_s": round(self.read / seconds, 3) if seconds else None,
            "executor": executor,
            "workers": workers or default_workers(),
            "comparisons": self.comparisons,
            "parent_comparisons": self.parent_comparisons,
            "fingerprints_from": self.fingerprints_from,
            "worker_cpu_s": round(self.worker_cpu_s, 3),
            "parent_cpu_s": round(time.process_time() - self.cpu_started, 3),
        }
        return {"results": rows, "totals": totals,
                "ignored": [{"path": path, "reason": reason} for path, reason in ignored],
                "exit_code": _exit_code(rows)}  # fmt: skip


def _shortlist_reached(store: Registry, arriving: int) -> bool:
    """Whether the registry may outgrow the detection shortlist during this scan: only then are
    sketches needed now (the workers make them). A smaller registry compares every model, and its
    sketches are made when something first needs them, as after ``registry add``."""
    from modeltrace.lineage.candidates import DEFAULT_SHORTLIST

    return store.sketches.state()[0] + arriving > DEFAULT_SHORTLIST


def _changed_since(path: Path, registered_at: datetime) -> bool:
    """Whether a local source was modified after it was registered (the cheap test a rescan makes
    instead of hashing the whole model again): any file newer, or the path gone."""
    if not path.exists():
        return True
    newest = path.stat().st_mtime
    if path.is_dir():
        newest = max([newest, *(item.stat().st_mtime for item in path.rglob("*") if item.is_file())])
    return datetime.fromtimestamp(newest, UTC) > registered_at


def _skip_reason(source: str, pinned: str, held: dict[str, Any]) -> str:
    model = f"{held['namespace']}/{held['name']} (id {held['id']})"
    if pinned.startswith("hf://"):
        return f"already registered as {model} at {pinned.rsplit('@', 1)[-1]}"
    if source.startswith(("http://", "https://")):
        return f"already registered as {model} from this URL"
    return f"already registered as {model}; no file changed since"


def _exit_code(rows: list[dict[str, Any]]) -> int:
    """0 when nothing failed; else 1 if a bug was hit, 4 if an endpoint was unreachable, else 3."""
    codes = {row["exit_code"] for row in rows if row["status"] == "failed"}
    if not codes:
        return 0
    for code in (EXIT_BUG, EXIT_UNREACHABLE):
        if code in codes:
            return code
    return EXIT_UNREADABLE


def registry_graph(
    *, undeclared: bool = False, db: str | None = None, registry: Registry | None = None
) -> dict[str, Any]:
    """The detected edges between registered models and where they disagree with the declarations
    (``undeclared``: only edges no declaration covers); keys in docs/scale.md."""
    from modeltrace.api._registry import open_registry
    from modeltrace.registry.hub_graph import hub_graph

    store, owned = (registry, False) if registry is not None else (open_registry(db), True)
    try:
        return hub_graph(store.graph(), undeclared=undeclared)
    finally:
        if owned:
            store.close()
