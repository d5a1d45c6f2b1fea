"""The card of an opened model, as ``inspect`` prints it and a label carries it (one card, one place)."""

from __future__ import annotations

from typing import Any

from modeltrace.errors import UnsupportedFormatError
from modeltrace.formats.capabilities import ReportsQuantization
from modeltrace.formats.source import ModelSource
from modeltrace.inspect import config_keys
from modeltrace.inspect.card import ArchitectureCard, card_from_config, card_from_tensors


def architecture_card(source: ModelSource) -> ArchitectureCard:
    """Counted from the tensors when weights are present (config.json's count added as
    ``config_total_params``), from config.json alone otherwise."""
    if source.weights is not None:
        weights = source.weights
        return card_from_tensors(
            weights.stored_tensors().values(),
            source.config,
            weights.metadata,
            logical=weights.tensors().values(),
        )
    if source.config is not None:
        return card_from_config(source.config)
    # open_model only returns sources with weights or a config; keep the promise explicit
    raise UnsupportedFormatError(source.path, "no weights and no config.json to describe")


def describe(source: ModelSource) -> dict[str, Any]:
    """The JSON-ready card (:meth:`ArchitectureCard.as_dict`), the quantisation scheme found, and the
    shape hyper-parameters as config.json states them."""
    config = source.config or {}
    return {
        **architecture_card(source).as_dict(),
        "quantization": quantization(source),
        "hyperparameters": {key: config[key] for key in config_keys.HYPERPARAMETERS if key in config},
    }


def quantization(source: ModelSource) -> dict[str, Any] | None:
    """The quantisation scheme found in the weights (and declared in config.json), or None."""
    if isinstance(source.weights, ReportsQuantization):
        return source.weights.quantization_summary()
    config = source.config or {}
    declared = config.get("quantization_config")
    if isinstance(declared, dict):  # config-only, or a reader without quantised weights
        from modeltrace.formats.quant import scheme_summary

        return scheme_summary({}, config)
    return None
