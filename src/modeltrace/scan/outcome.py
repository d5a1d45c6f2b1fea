"""The values that travel between the scan's parent and its workers (plain, picklable dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from modeltrace.lineage.comparison import Comparison
    from modeltrace.registry.records import Arrival


@dataclass(frozen=True)
class ScanTask:
    """One source for a worker: ``source`` as the user wrote it (normalised), ``pinned`` the string
    stored as the model's source (a local path made absolute, ``hf://`` with its resolved commit)."""

    source: str
    pinned: str
    remote: bool
    namespace: str | None
    retries: int = 2
    backoff_s: float = 1.0
    #: Make the fingerprint's sketch too (for the candidate index, when lineage is detected).
    sketch: bool = False


@dataclass
class WorkResult:
    """What a worker found: an arrival to register, or why the source failed."""

    source: str
    arrival: Arrival | None = None
    reason: str | None = None
    #: The CLI exit code of the failure's error family (3 unreadable, 4 endpoint unreachable, 1 a bug).
    exit_code: int = 0
    traceback: str | None = None
    bytes_read: int = 0
    requests: int = 0
    #: Of ``requests``, those to the Hub's resolver (``/resolve/`` URLs: its rate-limited part).
    resolver_requests: int = 0
    seconds: float = 0.0
    #: CPU seconds the worker spent on the task (on a shared machine, wall time says little).
    cpu_seconds: float = 0.0
    attempts: int = 0
    retry_reasons: list[str] = field(default_factory=list)
    #: The fingerprint's sketch and the sketch version that made it (when the task asked for it).
    sketch: np.ndarray | None = None
    sketch_version: int | None = None

    @property
    def ok(self) -> bool:
        return self.arrival is not None


@dataclass(frozen=True)
class CompareTask:
    """A newcomer's comparisons for a worker: its fingerprint against its candidates' (digests).

    Where the worker finds the fingerprints: ``registry`` (a database URL it opens read-only, as
    the process pool and a local Ray instance do: SQLite in WAL mode lets readers run beside the
    parent's writes, and the parent has committed every fingerprint named here), else ``shared``
    (digest to a handle of ``Executor.share``: the bytes themselves, or a reference into Ray's
    object store for workers on other machines)."""

    index: int
    source: str
    suspect: str
    candidates: tuple[str, ...]
    alpha: float
    registry: str | None = None
    shared: dict[str, Any] = field(default_factory=dict)


@dataclass
class CompareResult:
    """The comparisons a worker made, by candidate fingerprint digest, or why it could not."""

    index: int
    source: str
    comparisons: dict[str, Comparison] = field(default_factory=dict)
    reason: str | None = None
    exit_code: int = 0
    traceback: str | None = None
    seconds: float = 0.0
    cpu_seconds: float = 0.0
