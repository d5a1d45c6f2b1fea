"""Name the kind of derivation the evidence shows, and its direction, from structure and statistics.

The p-value says *whether* two models are related; this module says *how*, from facts that are
plain to check: layer counts and the layer map, unit counts, experts, vocabularies, storage dtypes,
and whether the exact path (which needs units in place) agreed with the robust one.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from typing import Any

from modeltrace.fingerprint.model import Fingerprint
from modeltrace.lineage.paths import ExactResult, SignResult

#: Mean cosine between same-index units above which a re-encoded copy counts as the same weights
#: quantised (int8/fp8/Q8 reach ~0.999, Q4 ~0.98); a fine-tune moves units further.
QUANTISED_COSINE = 0.95


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
) -> dict[str, Any]:
    layer_map = _layer_map(suspect, base, pairs)
    result: dict[str, Any] = {
        "relation": None,
        "relations": [],
        "direction": None,
        "direction_evidence": [],
        "layer_map": layer_map,
    }
    if verdict == "same-weights":
        result.update(relation="identical", relations=["identical"])
        return result
    if verdict != "related":
        return result
    kinds: list[str] = []
    towards_suspect: list[str] = []  # evidence that the suspect was made from the base
    towards_base: list[str] = []
    s_layers, b_layers = suspect.layers(), base.layers()
    targets = list(layer_map.values())
    if len(s_layers) < len(b_layers):
        kinds.append("layers dropped" if _is_contiguous_drop(targets) else "layers subsampled")
        towards_suspect.append(f"suspect has {len(s_layers)} layers, base {len(b_layers)}")
    elif len(s_layers) > len(b_layers) or len(set(targets)) < len(targets):
        dense_suspect = all(b.expert is None for b in suspect.blocks)
        if dense_suspect:
            kinds.append("layers duplicated (depth up-scaling)")
            towards_suspect.append(f"suspect has {len(s_layers)} layers, base {len(b_layers)}")
    elif targets != sorted(targets):
        kinds.append("layers reordered")
    s_moe = any(b.expert is not None for b in suspect.blocks)
    b_moe = any(b.expert is not None for b in base.blocks)
    if s_moe and not b_moe:
        kinds.append("upcycled to mixture-of-experts")
        towards_suspect.append("suspect experts map onto the base's dense MLPs")
    elif b_moe and not s_moe:
        kinds.append("upcycled to mixture-of-experts (base from suspect)")
        towards_base.append("base experts map onto the suspect's dense MLPs")
    narrower = [a for a, b in pairs if suspect.blocks[a].units < base.blocks[b].units and not s_moe]
    wider = [a for a, b in pairs if suspect.blocks[a].units > base.blocks[b].units and not b_moe]
    if narrower:
        kinds.append("width-pruned")
        towards_suspect.append(f"{len(narrower)} suspect MLPs have fewer units than their base layer")
    elif wider:
        kinds.append("width-pruned (base from suspect)")
        towards_base.append(f"{len(wider)} base MLPs have fewer units than their suspect layer")
    vocab_kind, vocab_direction = _vocab_relation(suspect, base)
    if vocab_kind:
        kinds.append(vocab_kind)
        if vocab_direction:
            towards_suspect.append(vocab_direction)
    exact_significant = exact is not None and exact.log_p < math.log(alpha)
    robust_significant = any(t is not None and t.log_p < math.log(alpha) for t in (signs, values))
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
            (towards_suspect if quantised[1] else towards_base).append(quantised[2])
        elif reencoded and close:
            kinds.append("re-encoded/quantized")
        elif close and exact is not None and exact.matched_cosine > 0.999:
            kinds.append("function-preserving transform or lossless re-encoding")
        else:
            kinds.append("fine-tuned, continued-pretrained or merged")
    result["relations"] = kinds
    result["relation"] = kinds[0]
    if towards_suspect and not towards_base:
        result["direction"] = "suspect derived from base"
    elif towards_base and not towards_suspect:
        result["direction"] = "base derived from suspect"
    else:
        result["direction"] = "shared ancestry (direction not shown by the weights)"
    result["direction_evidence"] = towards_suspect + towards_base
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


def _is_contiguous_drop(targets: list[int]) -> bool:
    """True when the kept base layers form one run with a single gap or none (a block was cut out)."""
    ordered = sorted(targets)
    gaps = sum(1 for x, y in itertools.pairwise(ordered) if y - x > 1)
    return gaps <= 1
