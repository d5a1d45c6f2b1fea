"""``modeltrace serve``: the registry's REST API and web UI (FastAPI + uvicorn)."""

from __future__ import annotations

from typing import Annotated

import typer

from modeltrace import api
from modeltrace.cli._app import DbOption, app, err_console


@app.command()
def serve(
    host: Annotated[
        str, typer.Option(help="Interface to listen on (put a TLS reverse proxy in front).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8080,
    db: DbOption = None,
    private_reads: Annotated[
        bool | None, typer.Option("--private-reads/--public-reads", help="Require a token for reads too.")
    ] = None,
) -> None:
    """Serve the registry: REST API under /api/ (OpenAPI at /api/openapi.json) and the web UI at /."""
    err_console.print(f"registry {api.registry_url(db)}; UI at http://{host}:{port}/ , API docs at /api/docs")
    api.serve(host, port, db=db, private_reads=private_reads)
