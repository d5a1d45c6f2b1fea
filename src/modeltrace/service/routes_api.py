"""The REST API under ``/api/`` (its OpenAPI document is ``/api/openapi.json``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, HTTPException, Path, Query, Request, UploadFile
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from modeltrace import api
from modeltrace.service.app import Credentials, Reader, registry, require_writer

router = APIRouter(prefix="/api", tags=["registry"])

NAMESPACE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
#: Row ids are 32-bit integers in PostgreSQL.
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]


class ModelPage(BaseModel):
    models: list[dict[str, Any]]
    total: int
    limit: int
    offset: int


class Registered(BaseModel):
    model: dict[str, Any]
    created: bool
    detected: list[dict[str, Any]]


class LicenseCheck(BaseModel):
    """A deployment profile checked against a registered model's ancestry."""

    model: str = Field(min_length=1, max_length=300, description="Model id, NAME or NAMESPACE/NAME.")
    use: Literal["commercial", "research"] = "commercial"
    distribution: Literal["hosted", "weights"] = "hosted"
    mau: int = Field(0, ge=0, le=10**12, description="Monthly active users.")
    monthly_revenue: float = Field(0, ge=0, le=1e15, description="Monthly revenue in US$.")


async def _read_upload(request: Request, upload: UploadFile | None, what: str) -> bytes | None:
    if upload is None:
        return None
    limit = request.app.state.settings.max_upload_bytes
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise HTTPException(413, f"the {what} is larger than {limit:,} bytes")
    return data


@router.get("/models", response_model=ModelPage, summary="List and search registered models")
def list_models(
    request: Request,
    _reader: Reader,
    q: Annotated[str | None, Query(max_length=200, description="Substring of name or namespace.")] = None,
    namespace: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> dict[str, Any]:
    return api.registry_list(
        query=q, namespace=namespace, limit=limit, offset=offset, registry=registry(request)
    )


@router.post(
    "/models", response_model=Registered, status_code=201, summary="Register a fingerprint and/or label"
)
async def add_model(
    request: Request,
    credentials: Credentials,
    namespace: Annotated[str, Form(pattern=NAMESPACE_PATTERN)] = "default",
    name: Annotated[str | None, Form(min_length=1, max_length=200)] = None,
    fingerprint: Annotated[
        UploadFile | None, File(description="A .mtfp file (modeltrace fingerprint).")
    ] = None,
    label: Annotated[UploadFile | None, File(description="A provenance label (JSON, signed or not).")] = None,
) -> dict[str, Any]:
    """Weights are never uploaded: a fingerprint (a few MB) carries the lineage evidence."""
    require_writer(request, credentials, namespace)
    fp_bytes = await _read_upload(request, fingerprint, "fingerprint")
    label_bytes = await _read_upload(request, label, "label")

    def register() -> dict[str, Any]:
        with request.app.state.write_lock:
            return api.registry_add_upload(registry(request), fingerprint=fp_bytes, label=label_bytes,
                                           name=name, namespace=namespace)  # fmt: skip

    return await run_in_threadpool(register)


@router.get("/models/{model_id}", summary="One model: digests, card, label level, edges")
def get_model(request: Request, _reader: Reader, model_id: RowId) -> dict[str, Any]:
    return api.registry_show(model_id, registry=registry(request))


@router.get("/models/{model_id}/lineage", summary="Ancestry: declared and detected edges, conflicts")
def get_lineage(request: Request, _reader: Reader, model_id: RowId) -> dict[str, Any]:
    api.registry_show(model_id, registry=registry(request))  # 404 for an unknown id, not a name lookup
    return api.registry_lineage(model_id, registry=registry(request))


@router.get("/edges/{edge_id}", summary="A detected edge with its evidence (similarity matrix, test)")
def get_edge(request: Request, _reader: Reader, edge_id: RowId) -> dict[str, Any]:
    return api.registry_edge(edge_id, registry=registry(request))


@router.post("/identify", summary="Rank registered models as bases of an uploaded fingerprint")
async def identify(
    request: Request,
    _reader: Reader,
    fingerprint: Annotated[UploadFile, File(description="The suspect's .mtfp fingerprint.")],
    alpha: Annotated[float, Form(gt=0, lt=1)] = api.DEFAULT_ALPHA,
) -> dict[str, Any]:
    data = await _read_upload(request, fingerprint, "fingerprint")
    assert data is not None
    return await run_in_threadpool(api.registry_identify, data, registry=registry(request), alpha=alpha)


@router.post("/license/check", summary="Licence obligations of a deployment over a model's ancestry")
def license_check(request: Request, _reader: Reader, body: LicenseCheck) -> dict[str, Any]:
    return api.registry_license_check(
        body.model, use=body.use, distribution=body.distribution, mau=body.mau,
        monthly_revenue=body.monthly_revenue, registry=registry(request),
    )  # fmt: skip


# --- royalties (docs/royalties.md) ---------------------------------------------------------------

PERIOD_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"
#: Money travels as decimal strings: a JSON number would be a float, and floats are not exact.
MONEY_PATTERN = r"^\s*\d{1,15}(\.\d{1,10})?\s*$"
#: Names without control characters (PostgreSQL text cannot hold NUL).
NAME_PATTERN = r"^[^\x00-\x1f\x7f]+$"


class RoyaltyTerms(BaseModel):
    """An owner's fee schedule for one base model; ``owner`` must be the token's namespace."""

    owner: str = Field(pattern=NAMESPACE_PATTERN)
    model: str = Field(
        min_length=1,
        max_length=500,
        pattern=NAME_PATTERN,
        description="The base model's name as labels declare it.",
    )
    rate: str = Field(pattern=r"^\s*\d{1,3}(\.\d{1,10})?%?\s*$", description="0.05 or 5%.")
    threshold: str = Field("0", pattern=MONEY_PATTERN, description="Free attributed revenue per derivative.")
    currency: str = Field("USD", pattern=r"^[A-Z]{3}$")


class RevenueReportIn(BaseModel):
    """A derivative's revenue for a month; the token must write to the derivative's namespace."""

    derivative: str = Field(
        min_length=1, max_length=300, pattern=NAME_PATTERN, description="Model id, NAME or NAMESPACE/NAME."
    )
    period: str = Field(pattern=PERIOD_PATTERN, description="YYYY-MM")
    amount: str = Field(pattern=MONEY_PATTERN, description='A decimal string, e.g. "1234.56".')
    currency: str = Field("USD", pattern=r"^[A-Z]{3}$")


@router.post(
    "/royalties/terms", status_code=201, tags=["royalties"], summary="Register an owner's fee schedule"
)
def add_royalty_terms(request: Request, credentials: Credentials, body: RoyaltyTerms) -> dict[str, Any]:
    require_writer(request, credentials, body.owner)
    with request.app.state.write_lock:
        return api.royalties_terms_add(body.owner, body.model, body.rate, body.threshold, body.currency,
                                       registry=registry(request))  # fmt: skip


@router.post(
    "/royalties/reports", status_code=201, tags=["royalties"], summary="Report a derivative's revenue"
)
def add_revenue_report(request: Request, credentials: Credentials, body: RevenueReportIn) -> dict[str, Any]:
    model = api.registry_show(body.derivative, registry=registry(request))
    require_writer(request, credentials, model["namespace"])
    with request.app.state.write_lock:
        return api.royalties_report(model["id"], body.period, body.amount, body.currency,
                                    registry=registry(request))  # fmt: skip


@router.get("/royalties/{owner}", tags=["royalties"], summary="An owner's royalty statement for a month")
def royalty_statement(
    request: Request,
    _reader: Reader,
    owner: Annotated[str, Path(pattern=NAMESPACE_PATTERN)],
    period: Annotated[str, Query(pattern=PERIOD_PATTERN, description="YYYY-MM")],
) -> dict[str, Any]:
    return api.royalties_statement(owner, period, registry=registry(request)).as_dict()
