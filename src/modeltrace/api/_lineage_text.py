"""The p-value as people read it, for the CLI and the service's pages (see lineage/display.py).

Apart from ``api/_lineage.py`` so that printing a registry listing loads no numpy or readers.
"""

from __future__ import annotations

from modeltrace.lineage.display import format_p_value

__all__ = ["format_p_value"]
