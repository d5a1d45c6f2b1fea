"""The values that travel between the scan's parent and its workers (plain, picklable dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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
    seconds: float = 0.0
    attempts: int = 0
    retry_reasons: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.arrival is not None
