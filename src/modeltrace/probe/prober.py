"""Probe one endpoint: passive hints, then tokenizer identification, then optional extras.

Request plan under the budget B (default 64), in this order:

1. ``GET /v1/models`` and one deliberately bad chat request (its error body often names the
   server or model): 2 requests.
2. For each probe unit, two chat requests whose user message is the unit repeated k1 and k2
   times; ``usage.prompt_tokens`` difference / (k2 - k1) is the unit's exact token count, with
   the chat template and hidden system prompt cancelling out. As many units as fit in
   B - 2 - reserve, where the reserve (B/8, at least 4) absorbs retries.
3. With what is left: ``POST /tokenize`` (vLLM / SGLang style, token ids) and legacy
   ``/v1/completions`` with ``echo`` (token strings), compared against each reference's exact
   tokenization of a fixed text. Reported as extra evidence.

Every response also feeds the passive hints. Running out of budget is not an error: the units
measured so far are scored and ``budget_exhausted`` says so.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from modeltrace.errors import BudgetExhaustedError
from modeltrace.probe import hints as hint_module
from modeltrace.probe.behaviour import BehaviourResult
from modeltrace.probe.client import Exchange, ProbeClient
from modeltrace.probe.hints import Hint
from modeltrace.probe.probeset import ID_PROBE_TEXT, ProbeSet
from modeltrace.probe.scoring import TokenizerVerdict, UnitObservation, gateway_flag, score

_PASSIVE_REQUESTS = 2
_EXTRA_REQUESTS = 2
_BAD_REQUEST_MODEL = "modeltrace-nonexistent-model"


@dataclass
class ProbeReport:
    endpoint: str
    model: str
    tokenizer: TokenizerVerdict
    hints: list[Hint]
    requests: int
    budget: int
    budget_exhausted: bool
    units: list[UnitObservation]
    gateway: dict[str, Any]
    extra_evidence: dict[str, Any]
    probe_set: ProbeSet
    evidence_log: str | None = None
    behaviour: BehaviourResult | None = None
    requests_by_endpoint: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "model": self.model,
            "tokenizer": self.tokenizer.to_dict(),
            "hints": [hint.to_dict() for hint in self.hints],
            "requests": self.requests,
            "requests_by_endpoint": self.requests_by_endpoint,
            "budget": self.budget,
            "budget_exhausted": self.budget_exhausted,
            "units": [_unit_row(obs, self.tokenizer.verdict) for obs in self.units],
            "gateway_flag": self.gateway,
            "extra_evidence": self.extra_evidence,
            "probe_set": {
                "library_digest": self.probe_set.library_digest,
                "references": list(self.probe_set.references),
                "min_pair_distance": self.probe_set.min_pair_distance,
                "repeats": list(self.probe_set.repeats),
            },
            "evidence_log": self.evidence_log,
            "behaviour": self.behaviour.to_dict() if self.behaviour else None,
        }


def _unit_row(obs: UnitObservation, verdict: str) -> dict[str, Any]:
    observed = obs.observed
    low = obs.counts[0]
    return {
        "text": obs.text,
        "category": obs.category,
        "prompt_tokens": list(obs.counts),
        "observed": observed,
        "expected": obs.expected,
        "matches": sorted(name for name, value in obs.expected.items() if obs.observed_exact == value),
        # prompt_tokens at k1 minus the unit's own tokens: the template + system prompt overhead
        "overhead": (low - obs.repeats[0] * observed) if low is not None and observed is not None else None,
    }


def unit_budget(budget: int) -> int:
    """How many units fit: two requests each after the passive pass, the extras and a retry reserve."""
    reserve = max(4, budget // 8)
    return max(0, (budget - _PASSIVE_REQUESTS - _EXTRA_REQUESTS - reserve) // 2)


def probe_endpoint(client: ProbeClient, probe_set: ProbeSet, model: str | None = None) -> ProbeReport:
    """Run the passive pass and the tokenizer identification against ``client``'s endpoint."""
    collected: list[Hint] = []
    exhausted = False
    try:
        models = client.request("GET", "/models", phase="passive")
        collected += hint_module.from_exchange(models, "GET /v1/models")
        bad = client.request(
            "POST", "/chat/completions", {"model": _BAD_REQUEST_MODEL, "messages": "?"}, "passive"
        )
        collected += hint_module.from_exchange(bad, "bad request")
    except BudgetExhaustedError:
        models, exhausted = Exchange("GET", "", None), True
    chosen_model = model or _first_model_id(models) or "default"

    units = list(probe_set.units[: unit_budget(client.budget)])
    observations, unit_hints, unit_exhausted = _measure_units(client, probe_set, units, chosen_model)
    collected += unit_hints
    exhausted = exhausted or unit_exhausted
    verdict = score(observations, probe_set.references)
    extra: dict[str, Any] = {}
    if not exhausted:
        extra, extra_exhausted = _extra_evidence(client, probe_set, chosen_model)
        exhausted = exhausted or extra_exhausted
    unique_hints = hint_module.deduplicate(collected)
    flag = gateway_flag(observations, verdict, [hint.value for hint in unique_hints if hint.identity])
    return ProbeReport(
        endpoint=client.base_url,
        model=chosen_model,
        tokenizer=verdict,
        hints=unique_hints,
        requests=client.sent,
        budget=client.budget,
        budget_exhausted=exhausted,
        units=observations,
        gateway=flag,
        extra_evidence=extra,
        probe_set=probe_set,
        evidence_log=str(client.evidence_path) if client.evidence_path else None,
        requests_by_endpoint={client.base_url: client.sent},
    )


def _measure_units(
    client: ProbeClient, probe_set: ProbeSet, units: list, model: str
) -> tuple[list[UnitObservation], list[Hint], bool]:
    """Two chat requests per unit, concurrently; returns observations, hints and budget state."""
    low_k, high_k = probe_set.repeats
    jobs = [(index, repeat) for index in range(len(units)) for repeat in (low_k, high_k)]
    counts: dict[tuple[int, int], int | None] = {}
    found: list[Hint] = []
    exhausted = False

    def send(job: tuple[int, int]) -> tuple[tuple[int, int], Exchange | None]:
        index, repeat = job
        body = {
            "model": model,
            "messages": [{"role": "user", "content": units[index].text * repeat}],
            "max_tokens": 1,
            "temperature": 0,
        }
        try:
            return job, client.request("POST", "/chat/completions", body, phase=f"unit {index} x{repeat}")
        except BudgetExhaustedError:
            return job, None

    with ThreadPoolExecutor(max_workers=max(1, client.settings.concurrency)) as pool:
        for job, exchange in pool.map(send, jobs):
            if exchange is None:
                exhausted = True
                counts[job] = None
                continue
            found += hint_module.from_exchange(exchange, "chat completion")
            counts[job] = _prompt_tokens(exchange)
    observations = [
        UnitObservation(
            unit.text,
            unit.category,
            unit.expected,
            (counts[(i, low_k)], counts[(i, high_k)]),
            (low_k, high_k),
        )
        for i, unit in enumerate(units)
    ]
    return observations, found, exhausted


def _prompt_tokens(exchange: Exchange) -> int | None:
    body = exchange.json() if exchange.ok else None
    try:
        value = body["usage"]["prompt_tokens"]  # type: ignore[index]
    except (TypeError, KeyError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _first_model_id(models: Exchange) -> str | None:
    body = models.json() if models.ok else None
    data = body.get("data") if isinstance(body, dict) else None
    if isinstance(data, list) and data and isinstance(data[0], dict) and isinstance(data[0].get("id"), str):
        return str(data[0]["id"])
    return None


def _extra_evidence(client: ProbeClient, probe_set: ProbeSet, model: str) -> tuple[dict[str, Any], bool]:
    """Token ids from ``/tokenize`` and token strings from ``echo``, where the endpoint has them."""
    evidence: dict[str, Any] = {"text": ID_PROBE_TEXT}
    try:
        if client.remaining > 0:
            origin = "{0.scheme}://{0.netloc}".format(urlsplit(client.base_url))
            body = {"model": model, "prompt": ID_PROBE_TEXT, "add_special_tokens": False}
            exchange = client.request("POST", origin + "/tokenize", body, "tokenize")
            ids = _int_list((exchange.json() or {}).get("tokens") if exchange.ok else None)
            evidence["tokenize"] = _match_sequences(ids, probe_set.expected_ids)
        if client.remaining > 0:
            body = {"model": model, "prompt": ID_PROBE_TEXT, "max_tokens": 0, "echo": True, "logprobs": 0}
            exchange = client.request("POST", "/completions", body, "echo")
            evidence["echo"] = _match_sequences(_echo_tokens(exchange), probe_set.expected_pieces)
    except BudgetExhaustedError:
        return evidence, True
    return evidence, False


def _int_list(value: Any) -> list[int] | None:
    if isinstance(value, list) and all(isinstance(item, int) for item in value):
        return list(value)
    return None


def _echo_tokens(exchange: Exchange) -> list[str] | None:
    body = exchange.json() if exchange.ok else None
    try:
        tokens = body["choices"][0]["logprobs"]["tokens"]  # type: ignore[index]
    except (TypeError, KeyError, IndexError):
        return None
    return [str(token) for token in tokens] if isinstance(tokens, list) else None


def _match_sequences(observed: list | None, expected: dict[str, list]) -> dict[str, Any]:  # type: ignore[type-arg]
    """Which references' exact tokenization appears contiguously in what the endpoint returned."""
    if observed is None:
        return {"available": False, "matches": []}
    matches = sorted(name for name, sequence in expected.items() if _contains(observed, sequence))
    return {"available": True, "matches": matches, "length": len(observed)}


def _contains(haystack: list, needle: list) -> bool:  # type: ignore[type-arg]
    if not needle:
        return False
    return any(haystack[i : i + len(needle)] == needle for i in range(len(haystack) - len(needle) + 1))
