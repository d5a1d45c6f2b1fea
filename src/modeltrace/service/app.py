"""The FastAPI application factory, its settings, error mapping and bearer-token checks."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from modeltrace import api
from modeltrace.errors import (
    FormatError,
    ModeltraceError,
    RegistryConflictError,
    RegistryNotFoundError,
    UsageError,
)

log = logging.getLogger("modeltrace.service")

#: Requests larger than this are refused (413) before they are read: fingerprints are a few MB.
DEFAULT_MAX_UPLOAD = 64 * 1024 * 1024


@dataclass(frozen=True)
class Settings:
    """``db``: database URL (None: $MODELTRACE_DB or SQLite under MODELTRACE_HOME);
    ``private_reads``: reads need a valid token too; ``max_upload_bytes``: request size limit."""

    db: str | None = None
    private_reads: bool = False
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD

    @classmethod
    def from_env(cls, db: str | None = None, private_reads: bool | None = None) -> Settings:
        private = os.environ.get("MODELTRACE_PRIVATE_READS", "0") not in ("", "0", "false", "no")
        limit = int(os.environ.get("MODELTRACE_MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD))
        return cls(
            db=db, private_reads=private if private_reads is None else private_reads, max_upload_bytes=limit
        )


_bearer = HTTPBearer(auto_error=False, description="A token from `modeltrace token create --namespace NS`.")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def registry(request: Request) -> Any:
    return request.app.state.registry


def token_namespace(request: Request, credentials: HTTPAuthorizationCredentials | None) -> str | None:
    if credentials is None or credentials.scheme.lower() != "bearer":
        return None
    return api.token_namespace(credentials.credentials, registry=registry(request))


def require_writer(request: Request, credentials: Credentials, namespace: str) -> str:
    """401 without a valid token, 403 when the token belongs to another namespace."""
    owner = token_namespace(request, credentials)
    if owner is None:
        raise HTTPException(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})
    if owner != namespace:
        raise HTTPException(403, f"this token writes to namespace '{owner}', not '{namespace}'")
    return owner


def reader(request: Request, credentials: Credentials) -> None:
    """Reads are open unless the service runs with private reads."""
    if request.app.state.settings.private_reads and token_namespace(request, credentials) is None:
        raise HTTPException(401, "this registry needs a bearer token for reads",
                            headers={"WWW-Authenticate": "Bearer"})  # fmt: skip


Reader = Annotated[None, Depends(reader)]


def _status(error: ModeltraceError) -> int:
    if isinstance(error, RegistryNotFoundError):
        return 404
    if isinstance(error, RegistryConflictError):
        return 409
    if isinstance(error, UsageError | FormatError | ValueError):
        return 422
    return 400


def create_app(settings: Settings | None = None) -> FastAPI:
    """The service over one registry database (opened, and migrated, here)."""
    from modeltrace.service import routes_api, routes_ui

    settings = settings or Settings.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        app.state.registry.close()

    app = FastAPI(
        lifespan=lifespan,
        title="modeltrace registry",
        version=api.version(),
        description="Models, fingerprints, labels and their lineage: declared and detected.",
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.registry = api.open_registry(settings.db)
    app.state.write_lock = threading.Lock()  # adds compare against the graph as it stands: one at a time
    log.info("registry at %s", app.state.registry.where)  # the URL without its password

    @app.middleware("http")
    async def limit_size(request: Request, call_next: Any) -> Any:
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdecimal() or int(declared) > settings.max_upload_bytes):
            return JSONResponse({"detail": f"request larger than {settings.max_upload_bytes:,} bytes"}, 413)
        return await call_next(request)

    @app.exception_handler(ModeltraceError)
    async def modeltrace_error(_request: Request, error: ModeltraceError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=_status(error))

    app.include_router(routes_api.router)
    app.include_router(routes_ui.router)
    return app
