"""Who supplied how much of a model: attribution along declared ancestries, in exact fractions.

A provenance label declares its model's base models and the training compute of each stage
(``training.compute``: stage, kind, party, FLOPs). The share of the final model that its bases
supplied is the declared pre-training compute over the total declared compute: a fine-tune whose
label says the base's pre-training took 1e24 FLOPs and its own RL 3e24 gives the base 1/4. Shares
multiply along multi-level ancestries (the base's own label splits its part further), and a merge
splits its bases' part by the merge weights it declares.

Nothing is guessed. A label without a usable compute split, a merge without weights, or a cycle
leaves that part of the value *unresolved*, with the reason, so a statement can show it as missing
instead of money owed. Declared compute is a claim by the publisher, not a measurement; the lines
carry the path of labels they came from so that every figure can be checked.

Values only: labels come in as the dicts that ``modeltrace label create`` writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from modeltrace.errors import RoyaltyError

Label = Mapping[str, Any]

#: Most ancestry levels followed; deeper declared chains are reported unresolved (hostile input).
MAX_DEPTH = 64


@dataclass(frozen=True)
class Edge:
    """One declared step of an ancestry: ``model`` says it was built on ``base``."""

    model: str
    base: str
    relation: str
    #: The fraction of ``model`` that this step attributes to ``base`` (already split for merges).
    share: Fraction
    #: Where the claim came from, e.g. "label of acme/coder-2 (oms_root 3f2a...)".
    evidence: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "base": self.base,
            "relation": self.relation,
            "share": fraction_text(self.share),
            "evidence": self.evidence,
        }


@dataclass(frozen=True)
class Attribution:
    """``share`` of the derivative's value belongs to ``ancestor``, via the edges in ``path``."""

    ancestor: str
    share: Fraction
    path: tuple[Edge, ...]


@dataclass(frozen=True)
class Unresolved:
    """``share`` of the derivative's value reached ``model`` but could not be split further."""

    model: str
    share: Fraction
    reason: str
    path: tuple[Edge, ...]
    #: The bases ``model`` declares (they may be owed part of ``share``; how much is unknown).
    declared_bases: tuple[str, ...] = ()


@dataclass
class AncestryShares:
    """Every ancestor's exact share of one derivative, plus what could not be attributed."""

    derivative: str
    attributions: list[Attribution] = field(default_factory=list)
    unresolved: list[Unresolved] = field(default_factory=list)

    def share_of(self, ancestor: str) -> Fraction:
        return sum((line.share for line in self.attributions if line.ancestor == ancestor), Fraction(0))

    def total_attributed(self) -> Fraction:
        return sum((line.share for line in self.attributions), Fraction(0))


def fraction_text(share: Fraction) -> str:
    """``1/4``, ``3/16``, ``1``: exact, for statements and JSON."""
    return str(share.numerator) if share.denominator == 1 else f"{share.numerator}/{share.denominator}"


def label_name(label: Label) -> str:
    try:
        name = label["model"]["name"]
    except (KeyError, TypeError):
        raise RoyaltyError("a label without model.name cannot take part in royalties") from None
    if not isinstance(name, str) or not name:
        raise RoyaltyError("a label's model.name must be a non-empty string")
    return name


def _evidence(label: Label) -> str:
    name = label_name(label)
    digests = (label.get("model") or {}).get("digests") or {}
    root = digests.get("oms_root")
    return f"label of {name}" + (f" (oms_root {root[:12]})" if isinstance(root, str) else "")


def _flops(stage: Mapping[str, Any]) -> Fraction:
    value = stage.get("flops")
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not value >= 0
        or value == float("inf")
    ):
        raise RoyaltyError(f"compute stage {stage.get('stage')!r} has invalid flops {value!r}")
    return _exact(value)


def _exact(value: int | float) -> Fraction:
    """The decimal number a label's JSON states (``1e23``, ``0.6``), not its binary float neighbour."""
    return Fraction(str(value)) if isinstance(value, float) else Fraction(value)


def declared_split(label: Label) -> tuple[list[Edge], str | None]:
    """The edges from ``label``'s model to each declared base with its share, or a reason why not.

    Returns ``(edges, None)`` when the label splits its value, ``([], reason)`` when it declares
    bases but no usable split, and ``([], None)`` for a model without bases (it keeps everything).
    """
    name = label_name(label)
    bases = [base for base in label.get("base_models") or [] if isinstance(base, Mapping)]
    if not bases:
        return [], None
    stages = [
        stage for stage in (label.get("training") or {}).get("compute") or [] if isinstance(stage, Mapping)
    ]
    total = sum((_flops(stage) for stage in stages), Fraction(0))
    if total == 0:
        return [], "the label declares no training compute, so the bases' share is unknown"
    inherited = sum((_flops(stage) for stage in stages if stage.get("kind") == "pre-training"), Fraction(0))
    if inherited == 0:
        return [], "the label declares no pre-training compute for its base models"
    bases_share = inherited / total
    if len(bases) == 1:
        weights = [Fraction(1)]
    else:
        raw = [base.get("weight") for base in bases]
        if any(isinstance(w, bool) or not isinstance(w, (int, float)) or not w > 0 for w in raw):
            return [], f"a merge of {len(bases)} bases declares no weight for each base"
        as_fractions = [_exact(w) for w in raw]  # type: ignore[arg-type]
        weights = [w / sum(as_fractions) for w in as_fractions]
    evidence = _evidence(label)
    return [
        Edge(name, str(base["id"]), str(base.get("relation", "finetune")), bases_share * weight, evidence)
        for base, weight in zip(bases, weights, strict=True)
    ], None


def attribute(derivative: str, labels: Mapping[str, Label]) -> AncestryShares:
    """Split ``derivative``'s value among itself and every declared ancestor, exactly.

    ``labels`` maps model names to their labels; a base without a label is a root and keeps the
    whole share that reaches it. The attributed shares and the unresolved ones add up to 1.
    """
    result = AncestryShares(derivative)
    _walk(derivative, Fraction(1), (), labels, result, frozenset())
    return result


def _walk(
    model: str,
    share: Fraction,
    path: tuple[Edge, ...],
    labels: Mapping[str, Label],
    result: AncestryShares,
    seen: frozenset[str],
) -> None:
    if model in seen:
        chain = " -> ".join([*(edge.model for edge in path), model])
        raise RoyaltyError(f"the declared ancestry has a cycle: {chain}")
    label = labels.get(model)
    if label is None:
        result.attributions.append(Attribution(model, share, path))
        return
    edges, missing = declared_split(label)
    bases = tuple(str(base.get("id")) for base in label.get("base_models") or [] if isinstance(base, Mapping))
    if missing is not None:
        result.unresolved.append(Unresolved(model, share, missing, path, bases))
        return
    if len(path) >= MAX_DEPTH and edges:
        result.unresolved.append(
            Unresolved(model, share, f"ancestry deeper than {MAX_DEPTH} levels", path, bases)
        )
        return
    kept = share * (1 - sum((edge.share for edge in edges), Fraction(0)))
    if kept:
        result.attributions.append(Attribution(model, kept, path))
    for edge in edges:
        _walk(edge.base, share * edge.share, (*path, edge), labels, result, seen | {model})
