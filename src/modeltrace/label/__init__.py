"""Provenance labels: content digests, the ingredient label, signatures and standard exports."""
