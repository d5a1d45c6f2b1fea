"""A model's ancestry as the licence engine sees it: a tree of named models with licences.

Lineage arrives from a lineage file, a model card, a provenance label or detected lineage; each
source is parsed into :class:`LineageNode` here, in memory. Edges carry the relation of a child to
its parent, normalised to one of :data:`RELATIONS`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from modeltrace.errors import LicenseError

#: Relations whose child contains (a transformation of) the parent's weights.
WEIGHT_RELATIONS = frozenset({"finetune", "adapter", "merge", "quantized", "upcycled"})
#: The child was trained on the parent's outputs (distillation, synthetic data).
OUTPUT_RELATION = "distilled-from-outputs"
RELATIONS = WEIGHT_RELATIONS | {OUTPUT_RELATION}

_RELATION_ALIASES = {
    "fine-tune": "finetune",
    "finetuned": "finetune",
    "fine-tuned": "finetune",
    "fine_tune": "finetune",
    "sft": "finetune",
    "lora": "adapter",
    "peft": "adapter",
    "merged": "merge",
    "quantised": "quantized",
    "quantization": "quantized",
    "quantisation": "quantized",
    "quant": "quantized",
    "distilled": "distilled-from-outputs",
    "distillation": "distilled-from-outputs",
    "distilled_from_outputs": "distilled-from-outputs",
    "outputs": "distilled-from-outputs",
    "synthetic-data": "distilled-from-outputs",
    # Continued pre-training changes the weights of the base like a fine-tune does; the licences
    # treat both as derivatives, so they share one edge kind here.
    "continued-pretrain": "finetune",
    "continued-pretraining": "finetune",
    "continued_pretraining": "finetune",
    "upcycle": "upcycled",
    "upcycling": "upcycled",
}

#: Limits that keep a hostile lineage file from exhausting memory or the stack.
MAX_DEPTH = 64
MAX_NODES = 10_000

_NODE_KEYS = frozenset({"name", "license", "relation", "parents", "multimodal"})
#: Keys only the root (the deployed model) takes: ``grants`` lists licences granted to the deployer.
_ROOT_KEYS = frozenset({"grants"})


@dataclass(frozen=True)
class LineageNode:
    """One model: its name, declared licence id, relation to its child, and its own parents.

    ``relation`` is None only for the root (the deployed model). ``multimodal`` matters only for
    licences with a carve-out for multimodal models (Llama 3.2); None means not stated.
    ``grants`` (root only) are licence ids whose licensor granted the deployer a licence.
    """

    name: str
    license: str | None = None
    relation: str | None = None
    parents: tuple[LineageNode, ...] = ()
    multimodal: bool | None = None
    grants: tuple[str, ...] = ()

    def walk(self) -> Iterator[tuple[LineageNode, tuple[LineageNode, ...]]]:
        """Every node with the path from the root to it (root first, node last), depth first."""
        stack: list[tuple[LineageNode, tuple[LineageNode, ...]]] = [(self, (self,))]
        while stack:
            node, path = stack.pop()
            yield node, path
            for parent in reversed(node.parents):
                stack.append((parent, (*path, parent)))

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "license": self.license}
        if self.relation is not None:
            out["relation"] = self.relation
        if self.multimodal is not None:
            out["multimodal"] = self.multimodal
        if self.grants:
            out["grants"] = list(self.grants)
        if self.parents:
            out["parents"] = [parent.as_dict() for parent in self.parents]
        return out


def normalize_relation(value: Any, where: str) -> str:
    """The canonical relation for ``value`` (``fine-tune`` -> ``finetune``), or LicenseError."""
    if not isinstance(value, str) or not value.strip():
        raise LicenseError(f"{where}: 'relation' must be one of {sorted(RELATIONS)}, got {value!r}.")
    text = value.strip().lower()
    relation = _RELATION_ALIASES.get(text, text)
    if relation not in RELATIONS:
        raise LicenseError(f"{where}: unknown relation {value!r}; use one of {', '.join(sorted(RELATIONS))}.")
    return relation


def lineage_from_data(data: Any, source: str = "lineage") -> LineageNode:
    """Build the tree from parsed YAML/JSON: ``{name, license, parents: [{name, license, relation}]}``.

    Unknown keys are refused (a misspelt ``parent`` would otherwise silently drop an ancestor);
    a missing ``license`` is kept as None and later reported as unknown, never as permissive.
    """
    counter = [0]
    return _node(data, source, "root", depth=0, is_root=True, counter=counter, path=())


def _node(
    data: Any,
    source: str,
    where: str,
    depth: int,
    is_root: bool,
    counter: list[int],
    path: tuple[tuple[Any, str], ...],
) -> LineageNode:
    """One node; ``path`` holds (parsed mapping, name) of every node above it."""
    place = f"{source}: {where}"
    if any(seen is data for seen, _ in path):
        # A YAML alias that refers to itself (``&a {name: A, parents: [*a]}``) parses into a
        # mapping that contains itself: an endless ancestry.
        names = " -> ".join([*(name for _, name in path), str(data.get("name"))])
        raise LicenseError(f"{place}: the ancestry is a cycle ({names}); a model cannot be its own ancestor.")
    if depth > MAX_DEPTH:
        raise LicenseError(f"{place}: ancestry deeper than {MAX_DEPTH} levels; is the tree cyclic?")
    counter[0] += 1
    if counter[0] > MAX_NODES:
        raise LicenseError(f"{source}: more than {MAX_NODES:,} models in the ancestry; refusing to read it.")
    if not isinstance(data, Mapping):
        raise LicenseError(f"{place}: expected a mapping with 'name', got {type(data).__name__}.")
    allowed = _NODE_KEYS | _ROOT_KEYS if is_root else _NODE_KEYS
    unknown = sorted(str(key) for key in data if key not in allowed)
    if unknown:
        raise LicenseError(
            f"{place}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
            + ("" if is_root else " ('grants' belongs on the root, the deployed model)")
            + "."
        )
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise LicenseError(f"{place}: every model needs a non-empty 'name'.")
    earlier = [seen for _, seen in path]
    if name.strip().lower() in (seen.lower() for seen in earlier):
        names = " -> ".join([*earlier, name.strip()])
        raise LicenseError(f"{place}: the ancestry is a cycle ({names}); a model cannot be its own ancestor.")
    license_id = data.get("license")
    if license_id is not None and not isinstance(license_id, str):
        raise LicenseError(f"{place} ({name}): 'license' must be a string id such as 'apache-2.0'.")
    relation = None
    if not is_root:
        relation = normalize_relation(data.get("relation"), f"{place} ({name})")
    elif data.get("relation") is not None:
        raise LicenseError(f"{place} ({name}): the root is the deployed model and takes no 'relation'.")
    multimodal = data.get("multimodal")
    if multimodal is not None and not isinstance(multimodal, bool):
        raise LicenseError(f"{place} ({name}): 'multimodal' must be true or false.")
    raw_parents = data.get("parents") or []
    if not isinstance(raw_parents, list):
        raise LicenseError(f"{place} ({name}): 'parents' must be a list.")
    below = (*path, (data, name.strip()))
    parents = tuple(
        _node(parent, source, f"{where} > parents[{index}]", depth + 1, False, counter, below)
        for index, parent in enumerate(raw_parents)
    )
    return LineageNode(
        name=name.strip(),
        license=license_id.strip() if license_id and license_id.strip() else None,
        relation=relation,
        parents=parents,
        multimodal=multimodal,
        grants=_grants(data.get("grants"), f"{place} ({name})"),
    )


def _grants(value: Any, place: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise LicenseError(f"{place}: 'grants' must be a list of licence ids such as [llama3.1].")
    return tuple(item.strip() for item in value)
