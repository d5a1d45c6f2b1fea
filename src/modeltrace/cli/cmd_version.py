"""``modeltrace version``."""

from __future__ import annotations

from modeltrace import api
from modeltrace.cli._app import app, console


@app.command()
def version() -> None:
    """Print the modeltrace version."""
    console.print(api.version())
