"""The lineage engine: statistics that decide whether one model was derived from another."""

#: Significance level of a verdict unless the caller gives one.
DEFAULT_ALPHA = 0.01
