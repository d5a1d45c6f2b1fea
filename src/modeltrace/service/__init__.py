"""The registry service: a REST API under ``/api/`` and a web UI at ``/`` (FastAPI).

It imports only :mod:`modeltrace.api` and :mod:`modeltrace.errors`; ``modeltrace serve`` runs it
with uvicorn. See docs/registry.md.
"""

from __future__ import annotations

from modeltrace.service.app import Settings, create_app

__all__ = ["Settings", "create_app"]
