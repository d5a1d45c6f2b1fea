"""The scan's worker: read one source into an Arrival (card, digest, fingerprint), or compare a
newcomer's fingerprint with its candidates' (lineage detection's costly part); nothing stored.

Runs in a pool process or a Ray task, so it writes to no database: the parent registers what it
returns, ranks the comparisons and records the edges. A worker may read fingerprints from the
registry (read-only). Module-level and picklable on purpose (both executors ship it by reference).
"""

from __future__ import annotations

import io
import json
import tempfile
import time
import traceback
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modeltrace.errors import FingerprintError, ModeltraceError
from modeltrace.scan.outcome import CompareResult, CompareTask, ScanTask, WorkResult
from modeltrace.scan.retry import with_retries

if TYPE_CHECKING:
    import numpy as np

    from modeltrace.fingerprint.model import Fingerprint
    from modeltrace.registry import Registry
    from modeltrace.registry.records import Arrival

DEFAULT_NAMESPACE = "default"


def run_task(task: ScanTask | CompareTask) -> WorkResult | CompareResult:
    """The one function both executors run: a source to read or a newcomer to compare."""
    if isinstance(task, CompareTask):
        return compare_newcomer(task)
    return fingerprint_source(task)


def _record_failure(result: WorkResult | CompareResult, error: Exception) -> None:
    """Why a task failed, kept on its result: the scan goes on. An error of the tree carries its
    exit code; anything else is a bug, reported with its traceback."""
    if isinstance(error, ModeltraceError):
        result.reason, result.exit_code = str(error), error.exit_code
    else:
        result.reason = f"internal error (a bug): {type(error).__name__}: {error}"
        result.exit_code = 1
        result.traceback = traceback.format_exc()


def compare_newcomer(task: CompareTask) -> CompareResult:
    """Compare ``task.suspect`` with each candidate, exactly as ``registry add`` does (one BLAS
    thread, the same alpha); never raises: a failure comes back as its reason."""
    from modeltrace.api._registry_detect import _compare
    from modeltrace.lineage.features import FeatureCache

    started, cpu = time.perf_counter(), time.process_time()
    result = CompareResult(index=task.index, source=task.source)
    try:
        suspect = _worker_fingerprint(task, task.suspect)
        cache = FeatureCache()  # the newcomer's whitened features, made once for all its candidates
        for digest in task.candidates:
            base = _worker_fingerprint(task, digest)
            result.comparisons[digest] = _compare(suspect, base, task.alpha, cache)
    except Exception as error:  # every failure is reported; a bug with its traceback
        _record_failure(result, error)
    result.comparisons = result.comparisons if result.reason is None else {}
    result.seconds, result.cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    return result


#: The registries this worker process reads fingerprints from, by URL (opened once per process).
_READERS: dict[str, Registry] = {}


def _worker_fingerprint(task: CompareTask, digest: str) -> Fingerprint:
    """A fingerprint from this process's cache (a worker sees the same base many times), else
    from the registry or the shared handle, validated by the file reader as everywhere."""
    from modeltrace.api._registry_detect import _cached, load_fingerprint_bytes
    from modeltrace.scan.executors import fetch_shared

    cached = _cached(digest)
    if cached is not None:
        return cached
    if task.registry is None:
        return load_fingerprint_bytes(fetch_shared(task.shared[digest]))
    reader = _READERS.get(task.registry)
    if reader is None:
        from modeltrace.registry import Registry

        reader = _READERS[task.registry] = Registry(task.registry)
    return load_fingerprint_bytes(reader.fingerprint(digest))


def fingerprint_source(task: ScanTask) -> WorkResult:
    """Read ``task``'s source (retrying transient failures); never raises for a failed source."""
    started, cpu = time.perf_counter(), time.process_time()
    result = WorkResult(source=task.source)

    def attempt() -> tuple[Arrival, int, int, int]:
        result.attempts += 1
        return _remote_arrival(task) if task.remote else _local_arrival(task)

    try:
        arrival, result.bytes_read, result.requests, result.resolver_requests = with_retries(
            attempt,
            retries=task.retries,
            backoff_s=task.backoff_s,
            on_retry=lambda error: result.retry_reasons.append(str(error)),
        )
        result.arrival = arrival
        if task.sketch and arrival.fingerprint is not None:
            result.sketch_version, result.sketch = _sketch(arrival.fingerprint)
    except Exception as error:  # every failure is reported; a bug with its traceback
        _record_failure(result, error)
    result.seconds, result.cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    return result


def _sketch(data: bytes) -> tuple[int, np.ndarray]:
    """The candidate index's sketch of a new fingerprint, made here rather than in the parent (an
    eigendecomposition per model: the parent's largest cost per model before). The fingerprint
    stays in this process's cache, where a comparison task may find it."""
    from modeltrace.api._blas import one_blas_thread
    from modeltrace.api._registry_detect import load_fingerprint_bytes
    from modeltrace.lineage.sketch import SKETCH_VERSION, compute_sketch

    with one_blas_thread():
        return SKETCH_VERSION, compute_sketch(load_fingerprint_bytes(data))


def _local_arrival(task: ScanTask) -> tuple[Arrival, int, int, int]:
    """A local model, fingerprint file or label, read as ``registry add`` reads it; the content
    digest reads every byte of the model, the fingerprint its sampled rows again."""
    from modeltrace.api._registry_intake import arrival_from_path

    path = Path(task.pinned)
    arrival = arrival_from_path(path, None, task.namespace or DEFAULT_NAMESPACE)
    size = _size_on_disk(path)
    sampled = _fingerprint_bytes_read(arrival.fingerprint) if arrival.oms_root is not None else 0
    return arrival, size + sampled, 0, 0


def _remote_arrival(task: ScanTask) -> tuple[Arrival, int, int, int]:
    """A remote model opened once: its card and fingerprint read through one HTTP session (headers
    and sampled rows by range requests), its digest taken from the pinned source."""
    from modeltrace.api._blas import one_blas_thread
    from modeltrace.api._models import inspect
    from modeltrace.api._registry_intake import arrival_from_card
    from modeltrace.fingerprint.build import Budget, build_fingerprint
    from modeltrace.formats.detect import open_model
    from modeltrace.formats.remote import HubRepo
    from modeltrace.scan.revision import remote_digest

    data: bytes | None = None
    with open_model(task.pinned) as source:
        # The open source is a local mirror whose weight files read through the session: opening
        # the mirror again costs no second download of config, index and tokenizer files.
        card = inspect(source.path)
        card["path"] = task.pinned
        with tempfile.TemporaryDirectory(prefix="modeltrace-scan-") as folder:
            output = Path(folder) / "model.mtfp"
            try:
                # Built from the open source (not its mirror's path), so the header names the model
                # by its URL and the same pinned source gives the same bytes in every scan.
                with one_blas_thread():  # as `modeltrace fingerprint` builds it
                    build_fingerprint(source, Budget()).save(output)
                data = output.read_bytes()
            except FingerprintError:
                data = None  # e.g. a bare config.json: registered with its card, without lineage evidence
        stats = source.transfer
    if task.pinned.startswith("hf://"):
        organisation, _, repository = HubRepo.parse(task.pinned).repo.partition("/")
        name, namespace = repository, task.namespace or organisation
    else:
        name, namespace = str(card.get("name") or "model"), task.namespace or DEFAULT_NAMESPACE
    arrival = arrival_from_card(
        card, name=name, namespace=namespace, source=task.pinned, digest=remote_digest(task.pinned)
    )
    arrival.fingerprint = data
    return arrival, int(stats.bytes_transferred), int(stats.requests), int(stats.resolver_requests)


def _size_on_disk(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file() and ".git" not in item.parts)


def _fingerprint_bytes_read(data: bytes | None) -> int:
    """The bytes the fingerprint read from the weights (its header records them)."""
    if data is None:
        return 0
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            header: dict[str, Any] = json.loads(archive.read("header.json"))
        return int(header.get("bytes_read") or 0)
    except (zipfile.BadZipFile, KeyError, ValueError):
        return 0
