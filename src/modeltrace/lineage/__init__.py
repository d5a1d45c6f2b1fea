"""The lineage engine: statistics that decide whether one model was derived from another."""
