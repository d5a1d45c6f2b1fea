"""Probe one endpoint: passive hints, then tokenizer identification, then optional extras.

Request plan under the budget B (default 64), in this order:

1. ``GET /v1/models`` and one deliberately bad chat request (its error body often names the
   server or model): 2 requests.
2. For each probe unit, two chat requests whose user message is the unit repeated k1 and k2
   times; ``usage.prompt_tokens`` difference / (k2 - k1) is the unit's exact token count, with
   the chat template and hidden system prompt cancelling out. As many units as fit in
   B - 2 - reserve, where the reserve (B/8, at least 4) absorbs retries.
3. With what is left: ``POST /tokenize`` in the vLLM/SGLang and llama.cpp dialects (token ids)
   and legacy ``/v1/completions`` with ``echo`` (token strings), compared against each
   reference's exact tokenization of a fixed text (:mod:`.extras`). Reported as extra evidence.

The first unit is measured alone before the rest: a base URL whose chat route answers only
404/405 stops the probe there with a :class:`~modeltrace.errors.ProbeError` (exit 4).

Every response also feeds the passive hints. Running out of budget is not an error: the units
measured so far are scored and ``budget_exhausted`` says so.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from modeltrace.errors import BudgetExhaustedError, ProbeError
from modeltrace.probe import hints as hint_module
from modeltrace.probe import identity
from modeltrace.probe.behaviour import BehaviourResult
from modeltrace.probe.client import Exchange, ProbeClient
from modeltrace.probe.extras import extra_evidence
from modeltrace.probe.hints import Hint
from modeltrace.probe.probeset import ProbeSet
from modeltrace.probe.scoring import TokenizerVerdict, UnitObservation, gateway_flag, score

_PASSIVE_REQUESTS = 2
_EXTRA_REQUESTS = 2
_BAD_REQUEST_MODEL = "modeltrace-nonexistent-model"
_MISSING_ROUTE = frozenset({404, 405})


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
    #: identity hints whose model family disagrees with the tokenizer verdict (see identity.py)
    contradictions: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "model": self.model,
            "tokenizer": self.tokenizer.to_dict(),
            "hints": [hint.to_dict() for hint in self.hints],
            "contradictions": self.contradictions,
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


def probe_endpoint(
    client: ProbeClient, probe_set: ProbeSet | Callable[[], ProbeSet], model: str | None = None
) -> ProbeReport:
    """Run the passive pass and the tokenizer identification against ``client``'s endpoint.

    ``probe_set`` may be a function that builds it: it is then called after the passive requests,
    so a dead endpoint fails in seconds even when the probe set is not cached yet (building it
    loads every reference tokenizer).

    Raises :class:`~modeltrace.errors.ProbeError` when the endpoint is unreachable (the client gives
    up after a few failed connections) or answers the chat route with nothing but 404/405 or
    non-completions (a wrong base URL): a verdict of ``unknown`` would blame the tokenizer.
    """
    collected: list[Hint] = []
    exhausted = False
    try:
        models = client.request("GET", "/models", phase="passive")
        collected += hint_module.from_exchange(models, _source(models))
        bad = client.request(
            "POST", "/chat/completions", {"model": _BAD_REQUEST_MODEL, "messages": "?"}, "passive"
        )
        collected += hint_module.from_exchange(bad, _source(bad, "deliberately bad request"))
    except BudgetExhaustedError:
        models, exhausted = Exchange("GET", "", None), True
    chosen_model = model or _first_model_id(models) or "default"
    if callable(probe_set):
        probe_set = probe_set()

    units = list(probe_set.units[: unit_budget(client.budget)])
    # The first unit alone first: a wrong path is caught after a handful of requests, not 50.
    first = _measure_units(client, probe_set, units[:1], chosen_model)
    _check_chat_route(client, first.exchanges)
    rest = _measure_units(client, probe_set, units[1:], chosen_model)
    observations = first.observations + rest.observations
    collected += first.hints + rest.hints
    exhausted = exhausted or first.exhausted or rest.exhausted
    verdict = score(observations, probe_set.references)
    extra: dict[str, Any] = {}
    if not exhausted:
        extra, extra_exhausted = extra_evidence(client, probe_set, chosen_model)
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
        contradictions=identity.contradictions(unique_hints, verdict.verdict),
    )


def _source(exchange: Exchange, note: str = "") -> str:
    """Where a hint came from: the method and the URL actually requested."""
    return f"{exchange.method} {exchange.url}" + (f" ({note})" if note else "")


def _check_chat_route(client: ProbeClient, exchanges: list[Exchange]) -> None:
    """Stop when the chat route plainly does not exist here: only 404/405, or 2xx without a completion.

    Other errors (401, 429, 5xx) are left to the report: the endpoint exists and its answers are
    evidence. Called on the first unit's requests, so a wrong path costs four requests.
    """
    answered = [exchange for exchange in exchanges if exchange.status is not None]
    if not answered or any(_is_completion(exchange) for exchange in answered):
        return
    missing = all(
        exchange.status in _MISSING_ROUTE or (exchange.ok and not _is_completion(exchange))
        for exchange in answered
    )
    if missing:
        statuses = ", ".join(sorted({str(exchange.status) for exchange in answered}))
        said = " ".join(answered[-1].text.split())[:200]
        raise ProbeError(
            f"{answered[0].url} answered HTTP {statuses} to every chat request ({client.sent} requests "
            f"sent; it said: {said or 'nothing'}). Check the base URL: it should end where "
            "'/chat/completions' and '/models' live, usually '/v1'; a 404 that names the model "
            "means --model is wrong."
        )


def _is_completion(exchange: Exchange) -> bool:
    body = exchange.json() if exchange.ok else None
    return isinstance(body, dict) and ("choices" in body or "usage" in body)


@dataclass
class _Measured:
    observations: list[UnitObservation]
    hints: list[Hint]
    exhausted: bool
    exchanges: list[Exchange]


def _measure_units(client: ProbeClient, probe_set: ProbeSet, units: list, model: str) -> _Measured:
    """Two chat requests per unit, concurrently; returns observations, hints and budget state."""
    low_k, high_k = probe_set.repeats
    jobs = [(index, repeat) for index in range(len(units)) for repeat in (low_k, high_k)]
    counts: dict[tuple[int, int], int | None] = {}
    found: list[Hint] = []
    exchanges: list[Exchange] = []
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
            found += hint_module.from_exchange(exchange, _source(exchange, "chat completion"))
            exchanges.append(exchange)
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
    return _Measured(observations, found, exhausted, exchanges)


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
