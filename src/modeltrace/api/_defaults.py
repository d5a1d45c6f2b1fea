"""Defaults the CLI and the service show in their options, importable without loading any area.

``DEFAULT_ALPHA`` lives in ``modeltrace.stats`` (standard library only), so reading it here costs no
numpy or scipy: `modeltrace compare --help` stays quick.
"""

from __future__ import annotations

from modeltrace.stats import DEFAULT_ALPHA

__all__ = ["DEFAULT_ALPHA"]
