"""Name the kind of derivation the evidence shows, and its direction, from structure and statistics.

The p-value says *whether* two models are related; this module says *how*, from facts that are
plain to check: layer counts and the layer map, unit counts, experts, vocabularies, storage dtypes,
and whether the exact path (which needs units in place) agreed with the robust one.

Direction is said only on evidence that can tell it: a model's own declaration of its base, or a
lossy re-encoding (quantised weights cannot be un-quantised). Sizes cannot: layers are dropped and
duplicated, widths pruned and grown, vocabularies cut and extended, dense models upcycled into experts
and experts merged back; which side has more of something is reported as structure, and the
direction stays "direction not determined".
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from typing import Any

from modeltrace.fingerprint.model import Fingerprint
from modeltrace.lineage.paths import ExactResult, SignResult
from modeltrace.lineage.residual import ResidualResult

#: Mean cosine between same-index units above which a re-encoded copy counts as the same weights
#: quantised (int8/fp8/Q8 reach ~0.999, Q4 ~0.98); a fine-tune moves units further.
QUANTISED_COSINE = 0.95
UNDETERMINED = "direction not determined"
#: Storage dtypes that only a lossy re-encoding produces (integer and low-bit codes, GGUF k-quants).
_LOSSY_DTYPES = ("I8", "U8", "I4", "U4", "Q", "IQ", "F8", "TQ", "MXFP4", "NVFP4")


def _lossy(fp: Fingerprint) -> bool:
    """Weights stored in a lossy code (int8, fp8, 4-bit, GGUF Q*): dequantised, they are not the original."""
    return any(str(dtype).upper().startswith(_LOSSY_DTYPES) for dtype in fp.header.get("dtypes", []))


def _declares(child: Fingerprint, parent: Fingerprint) -> str | None:
    """The declared base of ``child`` that names ``parent`` (model card or GGUF metadata), if any."""
    parent_name = parent.name.lower()
    for declared in child.header.get("declared_base_models", []) or []:
        text = str(declared).lower().rstrip("/")
        if parent_name and (text == parent_name or text.endswith("/" + parent_name)):
            return str(declared)
    return None


def _layer_map(suspect: Fingerprint, base: Fingerprint, pairs: list[tuple[int, int]]) -> dict[str, int]:
    votes: dict[int, Counter[int]] = {}
    for a, b in pairs:
        votes.setdefault(suspect.blocks[a].layer, Counter())[base.blocks[b].layer] += 1
    return {str(layer): counter.most_common(1)[0][0] for layer, counter in sorted(votes.items())}


def _vocab_relation(suspect: Fingerprint, base: Fingerprint) -> tuple[str | None, str | None]:
    if suspect.vocabulary is None or base.vocabulary is None:
        return None, None
    if suspect.header.get("tokenizer_digest") == base.header.get("tokenizer_digest"):
        return None, None
    s_tokens, b_tokens = set(suspect.vocabulary), set(base.vocabulary)
    if s_tokens == b_tokens:
        return "vocabulary reordered", None
    if s_tokens < b_tokens:
        return "vocabulary pruned", "suspect vocabulary is a subset of the base's"
    if s_tokens > b_tokens:
        return "vocabulary extended", "suspect vocabulary extends the base's"
    return "vocabulary changed", None


def describe_relation(
    suspect: Fingerprint,
    base: Fingerprint,
    pairs: list[tuple[int, int]],
    verdict: str,
    exact: ExactResult | None,
    signs: SignResult | None,
    alpha: float,
    values: SignResult | None = None,
    residual: ResidualResult | None = None,
) -> dict[str, Any]:
    layer_map = _layer_map(suspect, base, pairs)
    result: dict[str, Any] = {
        "relation": None,
        "relations": [],
        "direction": None,
        "direction_evidence": [],
        "structure": [],
        "layer_map": layer_map,
    }
    if verdict == "same-weights":
        result.update(relation="identical", relations=["identical"])
        return result
    if verdict != "related":
        return result
    kinds: list[str] = []
    structure: list[str] = []  # size facts: what differs, which says nothing about direction
    exact_significant = exact is not None and exact.log_p < math.log(alpha)
    robust_significant = any(t is not None and t.log_p < math.log(alpha) for t in (signs, values))
    residual_significant = residual is not None and residual.log_p < math.log(alpha)
    if residual_significant and not exact_significant and not robust_significant:
        # Only the embeddings tell (residual-dimension test): no layer pair is evidence, so no layer map.
        result["layer_map"] = {}
        kinds.append("embeddings shared (no layer matched: layers retrained or taken from elsewhere)")
        structure.append(f"suspect has {len(suspect.layers())} layers, base {len(base.layers())}")
    else:
        _layer_kinds(suspect, base, pairs, layer_map, kinds, structure)
    vocab_kind, vocab_note = _vocab_relation(suspect, base)
    if vocab_kind:
        kinds.append(vocab_kind)
        if vocab_note:
            structure.append(vocab_note)
    if exact is not None and not exact_significant and robust_significant:
        kinds.append("hidden units permuted")
    if not kinds:
        reencoded = suspect.header.get("dtypes") != base.header.get("dtypes") or suspect.header.get(
            "model", {}
        ).get("format") != base.header.get("model", {}).get("format")
        close = exact is not None and exact.matched_cosine >= QUANTISED_COSINE
        quantised = _quantisation_change(suspect, base)
        if close and quantised is not None:
            kinds.append(quantised[0])
        elif reencoded and close:
            kinds.append("re-encoded/quantized")
        elif close and exact is not None and exact.matched_cosine > 0.999:
            kinds.append("function-preserving transform or lossless re-encoding")
        else:
            kinds.append("fine-tuned, continued-pretrained or merged")
    result["relations"] = kinds
    result["relation"] = kinds[0]
    direction, evidence = _direction(suspect, base, kinds)
    result["direction"] = direction
    result["direction_evidence"] = evidence
    result["structure"] = structure
    return result


def _quantisation_label(fingerprint: Fingerprint) -> str | None:
    """``method encoding`` of a quantised checkpoint (from its reader), None for full precision."""
    summary = fingerprint.header.get("quantization")
    if not isinstance(summary, dict) or not summary.get("quantised_tensors"):
        return None
    scheme = str(summary.get("scheme") or summary.get("method") or "")
    return scheme or None


def _quantisation_change(suspect: Fingerprint, base: Fingerprint) -> tuple[str, bool, str] | None:
    """``(relation, towards suspect?, evidence)`` when exactly one side is quantised or both are
    quantised differently; the full-precision (or differently quantised) side is the likelier origin
    but a quantised release can be de-quantised, so the evidence says what is seen, no more."""
    mine, theirs = _quantisation_label(suspect), _quantisation_label(base)
    if mine == theirs:
        return None
    if mine is not None and theirs is None:
        return f"quantized ({mine})", True, f"suspect is quantised ({mine}), base is not"
    if theirs is not None and mine is None:
        return f"quantized (base: {theirs})", False, f"base is quantised ({theirs}), suspect is not"
    return f"quantized differently ({mine} vs base {theirs})", True, "both quantised, differently"


def _layer_kinds(
    suspect: Fingerprint,
    base: Fingerprint,
    pairs: list[tuple[int, int]],
    layer_map: dict[str, int],
    kinds: list[str],
    structure: list[str],
) -> None:
    """The derivation kinds that the layer map and the block shapes show (appended to ``kinds``)."""
    s_layers, b_layers = suspect.layers(), base.layers()
    targets = list(layer_map.values())
    if len(s_layers) < len(b_layers):
        kinds.append("layers dropped" if _is_contiguous_drop(targets) else "layers subsampled")
        structure.append(f"suspect has {len(s_layers)} layers, base {len(b_layers)}")
    elif len(s_layers) > len(b_layers) or len(set(targets)) < len(targets):
        dense_suspect = all(b.expert is None for b in suspect.blocks)
        if dense_suspect:
            kinds.append("layers duplicated (depth up-scaling)")
            structure.append(f"suspect has {len(s_layers)} layers, base {len(b_layers)}")
    elif targets != sorted(targets):
        kinds.append("layers reordered")
    s_moe = any(b.expert is not None for b in suspect.blocks)
    b_moe = any(b.expert is not None for b in base.blocks)
    if s_moe and not b_moe:
        kinds.append("upcycled to mixture-of-experts")
        structure.append("suspect experts map onto the base's dense MLPs")
    elif b_moe and not s_moe:
        kinds.append("upcycled to mixture-of-experts (base from suspect)")
        structure.append("base experts map onto the suspect's dense MLPs")
    narrower = [a for a, b in pairs if suspect.blocks[a].units < base.blocks[b].units and not s_moe]
    wider = [a for a, b in pairs if suspect.blocks[a].units > base.blocks[b].units and not b_moe]
    if narrower:
        kinds.append("width-pruned")
        structure.append(f"{len(narrower)} suspect MLPs have fewer units than their base layer")
    elif wider:
        kinds.append("width-pruned (base from suspect)")
        structure.append(f"{len(wider)} base MLPs have fewer units than their suspect layer")


def _direction(suspect: Fingerprint, base: Fingerprint, kinds: list[str]) -> tuple[str, list[str]]:
    """Which side came from which, on evidence that can tell (module doc); else not determined."""
    towards_suspect: list[str] = []  # evidence that the suspect was made from the base
    towards_base: list[str] = []
    if declared := _declares(suspect, base):
        towards_suspect.append(f"suspect declares its base model as '{declared}'")
    if declared := _declares(base, suspect):
        towards_base.append(f"base declares its base model as '{declared}'")
    quantised = _quantisation_change(suspect, base)
    if (
        quantised is not None
        and quantised[0] in kinds
        and not quantised[0].startswith("quantized differently")
    ):
        # Exactly one side is quantised: quantised weights cannot be un-quantised.
        (towards_suspect if quantised[1] else towards_base).append(quantised[2])
    elif "re-encoded/quantized" in kinds:
        if _lossy(suspect) and not _lossy(base):
            towards_suspect.append("suspect holds a lossy (quantised) encoding of the base's weights")
        elif _lossy(base) and not _lossy(suspect):
            towards_base.append("base holds a lossy (quantised) encoding of the suspect's weights")
    if towards_suspect and not towards_base:
        return "suspect derived from base", towards_suspect
    if towards_base and not towards_suspect:
        return "base derived from suspect", towards_base
    return UNDETERMINED, towards_suspect + towards_base


def _is_contiguous_drop(targets: list[int]) -> bool:
    """True when the kept base layers form one run with a single gap or none (a block was cut out)."""
    ordered = sorted(targets)
    gaps = sum(1 for x, y in itertools.pairwise(ordered) if y - x > 1)
    return gaps <= 1
