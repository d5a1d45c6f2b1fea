"""Extra evidence beyond token counts: token ids from a ``/tokenize`` route, token strings from ``echo``.

Serving stacks disagree on the tokenize request (checked against their sources):

==============  ===============================  ===================  =========================
server          route                            text field           answer
==============  ===============================  ===================  =========================
vLLM            ``POST /tokenize``               ``prompt``           ``{"tokens": [...], ...}``
SGLang          ``POST /tokenize``, ``/v1/...``  ``prompt``           ``{"tokens": [...], ...}``
llama.cpp       ``POST /tokenize``               ``content``          ``{"tokens": [...]}``
==============  ===============================  ===================  =========================

llama.cpp answers ``{"tokens": []}`` (HTTP 200) when ``content`` is missing, so an empty list is
*no* evidence, never "a tokenization of length 0". The variants are tried in order until one
returns a non-empty list of ids; which one answered is recorded, and so is every attempt.
A route that answers 404/405 is not asked again with the other field.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from modeltrace.errors import BudgetExhaustedError
from modeltrace.probe.client import ProbeClient
from modeltrace.probe.probeset import ID_PROBE_TEXT, ProbeSet

_MISSING_ROUTE = frozenset({404, 405})


def tokenize_variants(client: ProbeClient, model: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(url, field name, body) for each server family's tokenize request, most common first."""
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(client.base_url))
    with_prompt = {"model": model, "prompt": ID_PROBE_TEXT, "add_special_tokens": False}
    with_content = {"content": ID_PROBE_TEXT, "add_special": False}
    return [
        (origin + "/tokenize", "prompt", with_prompt),  # vLLM, SGLang
        (origin + "/tokenize", "content", with_content),  # llama.cpp
        (client.base_url + "/tokenize", "prompt", with_prompt),  # SGLang's /v1/tokenize
    ]


def extra_evidence(client: ProbeClient, probe_set: ProbeSet, model: str) -> tuple[dict[str, Any], bool]:
    """``/tokenize`` and ``echo`` evidence under what is left of the budget; (evidence, exhausted)."""
    evidence: dict[str, Any] = {"text": ID_PROBE_TEXT}
    try:
        if client.remaining > 0:
            evidence["tokenize"] = _tokenize(client, probe_set, model)
        if client.remaining > 0:
            body = {"model": model, "prompt": ID_PROBE_TEXT, "max_tokens": 0, "echo": True, "logprobs": 0}
            exchange = client.request("POST", "/completions", body, "echo")
            evidence["echo"] = match_sequences(_echo_tokens(exchange), probe_set.expected_pieces)
    except BudgetExhaustedError:
        return evidence, True
    return evidence, False


def _tokenize(client: ProbeClient, probe_set: ProbeSet, model: str) -> dict[str, Any]:
    tried: list[str] = []
    missing_routes: set[str] = set()
    for url, field, body in tokenize_variants(client, model):
        if url in missing_routes or client.remaining <= 0:
            continue
        exchange = client.request("POST", url, body, f"tokenize ({field})")
        ids = _int_list((exchange.json() or {}).get("tokens") if exchange.ok else None)
        outcome = exchange.status if exchange.status is not None else exchange.error
        tried.append(f"POST {url} ({field}): {outcome}{', empty' if ids == [] else ''}")
        if exchange.status in _MISSING_ROUTE:
            missing_routes.add(url)
        if ids:  # an empty list is what llama.cpp answers to a field it does not read
            result = match_sequences(ids, probe_set.expected_ids)
            return {**result, "route": url, "field": field, "tried": tried}
    return {"available": False, "matches": [], "tried": tried}


def _int_list(value: Any) -> list[int] | None:
    if isinstance(value, list) and all(type(item) is int for item in value):  # bool is not an id
        return list(value)
    return None


def _echo_tokens(exchange: Any) -> list[str] | None:
    body = exchange.json() if exchange.ok else None
    try:
        tokens = body["choices"][0]["logprobs"]["tokens"]  # type: ignore[index]
    except (TypeError, KeyError, IndexError):
        return None
    return [str(token) for token in tokens] if isinstance(tokens, list) and tokens else None


def match_sequences(observed: list | None, expected: dict[str, list]) -> dict[str, Any]:  # type: ignore[type-arg]
    """Which references' exact tokenization appears contiguously in what the endpoint returned."""
    if not observed:
        return {"available": False, "matches": []}
    matches = sorted(name for name, sequence in expected.items() if _contains(observed, sequence))
    return {"available": True, "matches": matches, "length": len(observed)}


def _contains(haystack: list, needle: list) -> bool:  # type: ignore[type-arg]
    if not needle:
        return False
    return any(haystack[i : i + len(needle)] == needle for i in range(len(haystack) - len(needle) + 1))
