"""Plain values passed into and out of the store (no SQLAlchemy types leak to callers)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass
class DeclaredBase:
    """A base model a model claims: its name (as written), relation and where the claim was read."""

    name: str
    relation: str | None
    origin: str


@dataclass
class Arrival:
    """Everything the facade learnt about a model to register (from a path, fingerprint or label)."""

    name: str
    namespace: str
    source: str
    digest: str
    oms_root: str | None = None
    tensor_root: str | None = None
    card: dict[str, Any] | None = None
    license: str | None = None
    from_scratch: bool | None = None
    fingerprint: bytes | None = None
    label: dict[str, Any] | None = None
    label_signed: bool = False
    label_summary: dict[str, Any] | None = None
    declared: list[DeclaredBase] = field(default_factory=list)


@dataclass
class Detection:
    """One detected edge to record: ``suspect`` derived from ``base`` (model ids) and the evidence."""

    suspect_id: int
    base_id: int
    verdict: str
    p_value: float | None
    log10_p: float | None
    test: str | None
    relation: str | None
    layer_map: dict[str, Any] | None
    evidence: dict[str, Any]
    suspect_fingerprint: str
    base_fingerprint: str
    modeltrace_version: str
    closest: bool = False


def json_safe(value: Any) -> Any:
    """``value`` with non-finite floats as None and tuples as lists: JSON columns (PostgreSQL's
    included) reject NaN and Infinity."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if value is None or isinstance(value, str | int | bool):
        return value
    if hasattr(value, "item"):  # numpy scalars
        return json_safe(value.item())
    return str(value)
