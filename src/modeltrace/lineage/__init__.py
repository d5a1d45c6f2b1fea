"""The lineage engine: statistics that decide whether one model was derived from another."""

from modeltrace.stats import DEFAULT_ALPHA

__all__ = ["DEFAULT_ALPHA"]
