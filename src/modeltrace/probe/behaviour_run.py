"""The behavioural test of ``probe --reference``: ask the target and every reference the same prompts.

After the tokenizer has been identified, the target endpoint and each reference (another
endpoint, or a local model folder whose greedy answers are computed on the CPU) answer the first
``count`` prompts of :data:`~modeltrace.probe.prompts.BEHAVIOUR_PROMPTS` greedily;
:func:`~modeltrace.probe.behaviour.compare_answers` turns the agreement into p-values.

Each endpoint gets its own request budget (the prompts plus a quarter, at least 4, for retries),
counted apart from the identification budget, and every request goes to the same evidence log.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from modeltrace.errors import BudgetExhaustedError, UsageError
from modeltrace.probe import behaviour
from modeltrace.probe.client import ClientSettings, ProbeClient
from modeltrace.probe.prompts import BEHAVIOUR_PROMPTS

if TYPE_CHECKING:
    from modeltrace.probe.local_model import LocalReference
    from modeltrace.probe.prober import ProbeReport


@dataclass(frozen=True)
class Endpoint:
    """How to reach one OpenAI-compatible endpoint (the key is never logged: see ProbeClient)."""

    url: str
    api_key: str | None
    settings: ClientSettings
    evidence_path: Path
    sleep: Callable[[float], None]

    def client(self, budget: int) -> ProbeClient:
        return ProbeClient(
            self.url,
            api_key=self.api_key,
            budget=budget,
            settings=self.settings,
            evidence_path=self.evidence_path,
            sleep=self.sleep,
        )


def behaviour_prompts(count: int) -> list[str]:
    """The first ``count`` behaviour prompts; a count outside 1..all is a usage error."""
    if not 1 <= count <= len(BEHAVIOUR_PROMPTS):
        raise UsageError(f"behaviour_prompts must be between 1 and {len(BEHAVIOUR_PROMPTS)}, got {count}.")
    return list(BEHAVIOUR_PROMPTS[:count])


def split_references(references: Sequence[str]) -> tuple[list[str], list[Path]]:
    """(endpoint URLs, local model folders); anything else is a usage error."""
    urls: list[str] = []
    paths: list[Path] = []
    for reference in references:
        if reference.startswith(("http://", "https://")):
            urls.append(reference)
        elif Path(reference).expanduser().exists():
            paths.append(Path(reference).expanduser())
        else:
            raise UsageError(
                f"Reference '{reference}' is neither an http(s) URL nor an existing local model folder. "
                "Pass an OpenAI-compatible endpoint URL or a folder with config.json, weights and "
                "tokenizer.json."
            )
    return urls, paths


def run_behaviour_test(
    report: ProbeReport,
    target: Endpoint,
    *,
    prompts: list[str],
    url_references: Sequence[Endpoint],
    local_references: Sequence[LocalReference],
    model: str | None,
) -> behaviour.BehaviourResult:
    """Ask the target and every reference ``prompts``; count the requests in ``report``.

    ``model`` is the model id asked of each reference endpoint (default: the first it lists);
    the target is asked for the model the identification settled on (``report.model``).
    """
    from modeltrace.probe import local_model

    budget = len(prompts) + max(4, len(prompts) // 4)
    concurrency = target.settings.concurrency
    with target.client(budget) as target_client:
        target_answers = behaviour.greedy_answers(target_client, report.model, prompts, concurrency)
        report.requests += target_client.sent
        report.requests_by_endpoint[target_client.base_url] += target_client.sent
    answers: dict[str, list[str | None]] = {}
    formats: dict[str, str] = {}
    for loaded in local_references:
        answers[str(loaded.path)] = local_model.greedy_answers(loaded, prompts)
        formats[str(loaded.path)] = loaded.prompt_format
    for reference in url_references:
        with reference.client(budget) as reference_client:
            reference_model = _first_model(reference_client) if model is None else model
            answers[reference_client.base_url] = behaviour.greedy_answers(
                reference_client, reference_model, prompts, concurrency
            )
            report.requests_by_endpoint[reference_client.base_url] = reference_client.sent
    return behaviour.compare_answers(target_answers, answers, prompt_formats=formats)


def _first_model(client: ProbeClient) -> str:
    """The first id a reference lists under /v1/models ('default' when it lists none)."""
    try:
        listing = client.request("GET", "/models", phase="reference models").json()
    except BudgetExhaustedError:
        return "default"
    try:
        return str(listing["data"][0]["id"])
    except (TypeError, KeyError, IndexError):
        return "default"
