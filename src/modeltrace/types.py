"""Frozen value types shared across layers (readers, fingerprints, labels, licences)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TensorInfo:
    """One tensor as stored: what a reader lists before reading any data.

    ``dtype`` is the storage dtype in safetensors spelling (``F32``, ``F16``, ``BF16``, ``F8_E4M3``,
    ``F8_E5M2``, ``I8``, ``U8``, ``I16``, ``I32``, ``I64``, ``F64``, ``BOOL``) or a quantisation
    type name (GGUF ``Q4_K``, ``Q8_0``, ...). ``nbytes`` is the size on disk; ``file`` the file that
    holds it; ``offset`` the absolute byte offset of its data there (-1 when not one contiguous run).
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    nbytes: int
    file: str
    offset: int = -1

    @property
    def numel(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count


@dataclass(frozen=True)
class Declared:
    """What a model says about itself (model card front-matter, GGUF ``general.*`` keys).

    These are claims, not evidence: the lineage engine checks them against the weights.
    """

    base_models: tuple[str, ...] = ()
    base_model_relation: str | None = None
    license: str | None = None
    license_name: str | None = None
    datasets: tuple[str, ...] = ()
    name: str | None = None
    source: str | None = None  # where the claims were read from, e.g. "README.md front-matter"
    extra: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "base_model": list(self.base_models),
            "base_model_relation": self.base_model_relation,
            "license": self.license,
            "license_name": self.license_name,
            "datasets": list(self.datasets),
            "name": self.name,
            "source": self.source,
            **({"extra": dict(self.extra)} if self.extra else {}),
        }
