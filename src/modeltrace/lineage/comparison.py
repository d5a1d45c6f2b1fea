"""The answer of one comparison: :class:`Comparison`, a frozen value with the JSON of ``compare --json``.

The top-level fields are typed; the evidence sections (per-test details, block map, similarity matrix)
stay the JSON-ready dicts and lists they are written as. :meth:`Comparison.as_dict` gives exactly the
keys ``compare --json`` has always printed (an interface scripts rely on): an inconclusive comparison
has only the verdict fields and its reason; the facade's fields (paths, report) appear once set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

INCONCLUSIVE = "inconclusive"
#: Verdicts that say the suspect comes from the base.
POSITIVE_VERDICTS = ("related", "same-weights")

# JSON key order: the verdict, then (conclusive only) the evidence, then sizes and names.
_HEAD = ("verdict", "p_value", "log10_p", "p_value_kind")
_CONCLUSIVE = (
    *_HEAD, "p_value_test", "paths_tried", "alpha", "relation", "relations", "direction",
    "direction_evidence", "structure", "layer_map", "block_map", "effect_size", "exact", "unit_signs",
    "value_signs", "residual_dims", "similarity_matrix", "pairing", "shared_anchors", "tensors_used",
    "bytes_read", "bytes_read_detail", "suspect", "base",
)  # fmt: skip
_INCONCLUSIVE = (*_HEAD, "relation", "relations", "direction", "layer_map", "reason", "bytes_read", "suspect",
                 "base")  # fmt: skip
_FACADE = ("suspect_path", "base_path", "report")


@dataclass(frozen=True)
class Comparison:
    """Was ``suspect`` derived from ``base``: the verdict, its exact p-value and the evidence."""

    verdict: str  # "same-weights", "related", "unrelated" or "inconclusive"
    suspect: str
    base: str
    bytes_read: int
    p_value: float | None = None
    log10_p: float | None = None
    p_value_kind: str | None = None  # "exact" (every test has an exact null)
    p_value_test: str | None = None  # the test that gave the p-value
    paths_tried: list[str] = field(default_factory=list)
    alpha: float | None = None
    relation: str | None = None
    relations: list[str] = field(default_factory=list)
    direction: str | None = None
    direction_evidence: list[str] = field(default_factory=list)
    structure: list[str] = field(default_factory=list)
    layer_map: dict[str, int] = field(default_factory=dict)
    reason: str | None = None  # why no test could run (inconclusive)
    # The evidence of a conclusive comparison, as JSON-ready sections (see docs/lineage.md).
    block_map: list[dict[str, Any]] = field(default_factory=list)
    effect_size: dict[str, Any] | None = None
    exact: dict[str, Any] | None = None
    unit_signs: dict[str, Any] | None = None
    value_signs: dict[str, Any] | None = None
    residual_dims: dict[str, Any] | None = None
    similarity_matrix: dict[str, Any] | None = None
    pairing: dict[str, Any] | None = None
    shared_anchors: dict[str, Any] | None = None
    tensors_used: dict[str, Any] | None = None
    bytes_read_detail: dict[str, Any] | None = None
    # Set by the facade (api.compare): where the models came from, the HTML report written.
    suspect_path: str | None = None
    base_path: str | None = None
    report: str | None = None

    @property
    def conclusive(self) -> bool:
        return self.verdict != INCONCLUSIVE

    @property
    def derived(self) -> bool:
        """The verdict says the suspect comes from the base (same weights or related)."""
        return self.verdict in POSITIVE_VERDICTS

    def as_dict(self) -> dict[str, Any]:
        """The JSON of ``compare --json`` (the keys it has always had)."""
        keys = _CONCLUSIVE if self.conclusive else _INCONCLUSIVE
        out = {key: getattr(self, key) for key in keys}
        out.update({key: getattr(self, key) for key in _FACADE if getattr(self, key) is not None})
        return out
