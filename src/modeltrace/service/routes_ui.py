"""The web UI: server-rendered pages (Jinja2, autoescape on) over the same facade as the API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from modeltrace import api
from modeltrace.errors import LicenseError, RegistryNotFoundError, RoyaltyError
from modeltrace.service.app import Credentials, registry, token_namespace
from modeltrace.service.svg import heatmap_svg, lineage_svg

router = APIRouter(include_in_schema=False)
templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(("html",), default=True),
)


def _page(name: str, code: int = 200, **values: Any) -> HTMLResponse:
    return HTMLResponse(templates.get_template(name).render(**values), status_code=code)


def _private(request: Request, credentials: Credentials) -> HTMLResponse | None:
    """With private reads the pages need the token too (sent by a proxy or a browser extension)."""
    if request.app.state.settings.private_reads and token_namespace(request, credentials) is None:
        message = "This registry is private: send a bearer token (Authorization header) to read it."
        return _page("error.html", 401, status="401 Unauthorized", message=message)
    return None


@router.get("/", response_class=HTMLResponse)
def index(
    request: Request,
    credentials: Credentials,
    q: Annotated[str | None, Query(max_length=200)] = None,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> HTMLResponse:
    denied = _private(request, credentials)
    if denied is not None:
        return denied
    page = api.registry_list(query=q or None, limit=50, offset=offset, registry=registry(request))
    return _page("index.html", page=page, q=q)


@router.get("/models/{model_id}", response_class=HTMLResponse)
def model_page(
    request: Request,
    credentials: Credentials,
    model_id: int,
    use: Literal["commercial", "research"] | None = None,
    distribution: Literal["hosted", "weights"] = "hosted",
    mau: Annotated[int, Query(ge=0, le=10**12)] = 0,
    monthly_revenue: Annotated[float, Query(ge=0, le=1e15)] = 0,
) -> HTMLResponse:
    denied = _private(request, credentials)
    if denied is not None:
        return denied
    store = registry(request)
    try:
        if not 0 < model_id < 2**31:
            raise RegistryNotFoundError(f"No model {model_id}.")
        model = api.registry_show(model_id, registry=store)
    except RegistryNotFoundError as error:
        return _page("error.html", 404, status="404 Not Found", message=str(error))
    lineage = api.registry_lineage(model_id, registry=store)
    ordered = sorted(model["detected"], key=lambda edge: (not edge.get("closest"), edge["id"]))
    edges = [_edge_view(edge["id"], store) for edge in ordered]
    profile = {"use": use or "commercial", "distribution": distribution, "mau": mau,
               "monthly_revenue": monthly_revenue}  # fmt: skip
    licence, licence_error = None, None
    if use is not None:  # the form was submitted
        try:
            licence = api.registry_license_check(model_id, registry=store, record=False, **profile)
        except LicenseError as error:
            licence_error = str(error)
    return _page("model.html", model=model, lineage=lineage, graph=lineage_svg(lineage), edges=edges,
                 profile=profile, licence=licence, licence_error=licence_error)  # fmt: skip


def _edge_view(edge_id: int, store: Any) -> dict[str, Any]:
    edge = api.registry_edge(edge_id, registry=store)
    evidence = edge.get("evidence") or {}
    adjusted = evidence.get("log10_p_adjusted")
    layer_map = edge.get("layer_map") or {}
    return {
        **edge,
        "evidence": evidence,
        "p_text": api.format_p_value(edge["log10_p"]),
        "adjusted": "n/a" if adjusted is None else f"{adjusted:.1f}",
        "layer_text": ", ".join(f"{a}\u2192{b}" for a, b in layer_map.items()) if isinstance(layer_map, dict)
        else str(layer_map),
        "heatmap": heatmap_svg(evidence.get("similarity_matrix")),
    }  # fmt: skip


@router.get("/royalties/{owner}", response_class=HTMLResponse)
def royalties_page(
    request: Request,
    credentials: Credentials,
    owner: str,
    period: Annotated[str | None, Query(max_length=20)] = None,
) -> HTMLResponse:
    """An owner's statement: each line links to the derivative's and the base's model pages, and
    each trace edge to the model whose label declared it."""
    denied = _private(request, credentials)
    if denied is not None:
        return denied
    if not period:
        return _page("royalties.html", owner=owner, period="", statement=None, ids={})
    store = registry(request)
    try:
        statement = api.royalties_statement(owner, period, registry=store).as_dict()
    except RegistryNotFoundError as error:
        return _page("error.html", 404, status="404 Not Found", message=str(error))
    except RoyaltyError as error:
        return _page("error.html", 422, status="422 Unprocessable Content", message=str(error))
    names = {name for line in statement["lines"] for name in (line["derivative"], line["model"])}
    names |= {
        name
        for line in statement["lines"]
        for edge in line["trace"]
        for name in (edge["model"], edge["base"])
    }
    ids = api.royalties_model_ids(names, registry=store)
    return _page("royalties.html", owner=owner, period=period, statement=statement, ids=ids)
