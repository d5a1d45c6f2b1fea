"""The public Python API of modeltrace: one facade over every layer.

The CLI and the service call only this module (and :mod:`modeltrace.errors`). Each section below
belongs to one layer; functions here validate inputs, open files through ``formats`` and hand
values in memory to the pure layers (fingerprint, lineage, licences).
"""

from __future__ import annotations

import modeltrace


def version() -> str:
    """The installed modeltrace version."""
    return modeltrace.__version__
