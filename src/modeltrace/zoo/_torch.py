"""Import torch on demand: it is an optional extra, needed only to *train* the zoo."""

from __future__ import annotations

from types import ModuleType

from modeltrace.errors import ZooError


def require_torch() -> ModuleType:
    try:
        import torch
    except ImportError as error:
        raise ZooError(
            "building the lineage zoo trains small models and needs PyTorch, which is not installed; "
            "install it with: pip install 'modeltrace[torch]'"
        ) from error
    return torch
