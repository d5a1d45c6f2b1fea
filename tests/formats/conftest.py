"""Make the hostile-file generators (``hostile_*.py`` beside the tests) importable."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # importlib mode: make hostile_* importable
