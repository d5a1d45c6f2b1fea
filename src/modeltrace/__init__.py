"""modeltrace: prove where an AI model came from.

The public Python API lives in :mod:`modeltrace.api`; errors in :mod:`modeltrace.errors`.
"""

from modeltrace.errors import ModeltraceError

__version__ = "0.1.0"

__all__ = ["ModeltraceError", "__version__"]
