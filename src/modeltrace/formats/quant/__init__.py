"""Dequantisers for quantised safetensors checkpoints: which stored tensors make up one logical
weight, and how to read chosen rows of it exactly (see docs/formats.md, "Quantised weights").

``plan_quantised`` groups a reader's stored tensors into :class:`QuantisedWeight` objects. Each
scheme module recognises its own tensor names and shapes (a ``quantization_config`` from config.json
settles what shapes leave open); the first module to claim a stored tensor owns it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modeltrace.formats.quant import bnb, compressed, fp8_blocks, gptq, mxfp4
from modeltrace.formats.quant.base import QuantisedWeight, Store
from modeltrace.types import TensorInfo

__all__ = ["QuantisedWeight", "Store", "plan_quantised", "scheme_summary"]

#: Most specific first: bitsandbytes' and GPTQ's names are unambiguous, compressed-tensors' plain
#: ``X.weight`` + ``X.weight_scale`` pattern is the most general.
_FINDERS = (bnb.find, gptq.find, mxfp4.find, fp8_blocks.find, compressed.find)


def _quantization_config(config: Mapping[str, Any] | None) -> Any:
    """config.json's ``quantization_config``, or its text backbone's when a multimodal release nests
    it in ``text_config`` (Kimi K2.5: INT4 routed experts declared there)."""
    if not config:
        return None
    declared = config.get("quantization_config")
    text = config.get("text_config")
    if declared is None and isinstance(text, dict):
        declared = text.get("quantization_config")
    return declared


def plan_quantised(
    stored: Mapping[str, TensorInfo], store: Store, config: Mapping[str, Any] | None = None
) -> dict[str, QuantisedWeight]:
    """Every quantised weight in ``stored`` by logical name; parts claimed once, first finder wins."""
    quant_config = _quantization_config(config)
    settings = quant_config if isinstance(quant_config, dict) else None
    claimed: set[str] = set()
    plan: dict[str, QuantisedWeight] = {}
    for finder in _FINDERS:
        for weight in finder(stored, store, settings):
            if weight.name in plan or claimed.intersection(weight.parts):
                continue
            claimed.update(weight.parts)
            plan[weight.name] = weight
    return plan


def scheme_summary(
    plan: Mapping[str, QuantisedWeight], config: Mapping[str, Any] | None = None
) -> dict[str, Any] | None:
    """What ``inspect`` reports: the method and encodings found in the tensors (with counts), and
    what config.json's ``quantization_config`` declares."""
    quant_config = _quantization_config(config)
    declared = _declared(quant_config) if isinstance(quant_config, dict) else None
    if not plan and declared is None:
        return None
    encodings: dict[str, int] = {}
    methods: dict[str, int] = {}
    for weight in plan.values():
        key = f"{weight.scheme} {weight.describe()}"
        encodings[key] = encodings.get(key, 0) + 1
        methods[weight.scheme] = methods.get(weight.scheme, 0) + 1
    method = max(methods, key=methods.__getitem__) if methods else (declared or {}).get("quant_method")
    summary = {
        "method": method,
        "scheme": max(encodings, key=encodings.__getitem__) if encodings else None,
        "quantised_tensors": len(plan),
        "encodings": dict(sorted(encodings.items(), key=lambda item: -item[1])),
        "declared": declared,
    }
    return summary


def _declared(quant_config: Mapping[str, Any]) -> dict[str, Any]:
    """The identifying fields of a ``quantization_config`` (not its whole, which can be long)."""
    keys = ("quant_method", "format", "bits", "group_size", "desc_act", "sym", "checkpoint_format",
            "version", "zero_point", "load_in_4bit", "load_in_8bit", "bnb_4bit_quant_type",
            "bnb_4bit_use_double_quant", "fmt", "weight_block_size", "activation_scheme")  # fmt: skip
    declared = {key: quant_config[key] for key in keys if key in quant_config}
    groups = quant_config.get("config_groups")
    if isinstance(groups, dict):
        for group in groups.values():
            weights = group.get("weights") if isinstance(group, dict) else None
            if isinstance(weights, dict):
                declared["weights"] = {k: weights[k] for k in ("num_bits", "type", "strategy", "group_size",
                                        "symmetric", "block_structure") if k in weights}  # fmt: skip
                break
    return declared
