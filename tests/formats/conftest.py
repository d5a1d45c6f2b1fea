"""Make the hostile-file generators (``hostile_*.py`` beside the tests) importable."""

from __future__ import annotations
