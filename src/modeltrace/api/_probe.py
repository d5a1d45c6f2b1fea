"""The facade for black-box probing of OpenAI-compatible endpoints and the tokenizer library."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from modeltrace.api._blas import one_blas_thread
from modeltrace.errors import ProbeError
from modeltrace.paths import modeltrace_home

if TYPE_CHECKING:
    from modeltrace.probe.prober import ProbeReport
    from modeltrace.probe.probeset import ProbeSet


def tokenizer_library() -> list[dict[str, object]]:
    """Every reference tokenizer (built-in and user-added) with its format, origin and digest."""
    from modeltrace.probe import library

    return [spec.to_dict() for spec in library.library_specs(modeltrace_home())]


def add_tokenizer(name: str, path: str | Path, pattern: str | None = None) -> dict[str, object]:
    """Add a tokenizer to the library from a file, a folder, a GGUF model or ``hf://ORG/REPO[@REV]``.

    Files: tokenizer.json, tekken.json, SentencePiece ``.model``, tiktoken rank files (Kimi's
    ``tiktoken.model`` with its tokenizer_config.json), vocab.json + merges.txt. A GGUF file's
    ``tokenizer.ggml.*`` vocabulary is rebuilt; ``hf://`` downloads only the tokenizer files
    (``HF_TOKEN`` for gated repositories, ``HF_ENDPOINT`` for a mirror). The probe set is rebuilt
    on next use because the library digest changes.
    """
    from modeltrace.probe import library

    return library.add_tokenizer(modeltrace_home(), name, path, pattern=pattern).to_dict()


def remove_tokenizer(name: str) -> None:
    """Remove a user-added tokenizer from the library."""
    from modeltrace.probe import library

    library.remove_tokenizer(modeltrace_home(), name)


def probe_set() -> ProbeSet:
    """The optimised probe set for the current library: from the cache, or built and cached (seconds)."""
    from modeltrace.probe import library, probeset

    home = modeltrace_home()
    specs = library.library_specs(home)
    digest = library.library_digest(specs)
    path = probeset.cache_path(home, digest)
    cached = probeset.read_cached(path, digest)
    if cached is not None:
        return cached
    references = {spec.name: library.load(spec) for spec in specs}
    built = probeset.build_probe_set(references, digest)
    probeset.write_cache(path, built)
    return built


def probe(
    url: str,
    *,
    model: str | None = None,
    api_key_env: str | None = None,
    budget: int = 64,
    references: Sequence[str] = (),
    reference_api_key_env: str | None = None,
    behaviour_prompts: int = 40,
    timeout_s: float = 30.0,
    max_retries: int = 3,
    backoff_s: float = 1.0,
    concurrency: int = 4,
    evidence_path: str | Path | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> ProbeReport:
    """Probe an OpenAI-compatible endpoint: identity hints, tokenizer family, optional behaviour test.

    API keys come only from environment variables (``api_key_env`` names the variable) and are
    redacted from the report and the evidence log. ``budget`` caps requests for identification;
    the behavioural test against ``references`` sends ``behaviour_prompts`` more requests to the
    target and to each reference (retries included, capped separately). A reference is an endpoint
    URL or a local model folder (Llama/Mistral/Qwen2/Qwen3/Mixtral layout, at most
    ``local_model.MAX_WEIGHT_BYTES`` of float32 weights) whose greedy answers are computed on the CPU.
    """
    from modeltrace.probe import behaviour_run, local_model
    from modeltrace.probe.client import ClientSettings, ProbeClient
    from modeltrace.probe.prober import probe_endpoint

    url_references, local_paths = behaviour_run.split_references(references)
    prompts = behaviour_run.behaviour_prompts(behaviour_prompts)
    settings = ClientSettings(
        timeout_s=timeout_s, max_retries=max_retries, backoff_s=backoff_s, concurrency=concurrency
    )
    log_path = Path(evidence_path) if evidence_path else _default_evidence_path(modeltrace_home(), url)
    api_key = _key_from_env(api_key_env)
    # Load local references before any request: a model that is too large fails fast.
    local_references = [local_model.load_local_reference(path) for path in local_paths]
    with ProbeClient(
        url, api_key=api_key, budget=budget, settings=settings, evidence_path=log_path, sleep=sleep
    ) as client:
        # The probe set is built (or read from its cache) after the first requests: a dead URL
        # fails in seconds instead of after loading every reference tokenizer.
        report = probe_endpoint(client, probe_set, model)
        if client.sent and not client.answered:
            # Not one HTTP response: a verdict of "unknown" would blame the tokenizer for a dead URL.
            raise ProbeError(
                f"No response from {client.base_url} in {client.sent} attempt(s) "
                f"(last error: {client.last_error}); check the URL and that the server is up."
            )
    if references:
        reference_key = _key_from_env(reference_api_key_env)
        target = behaviour_run.Endpoint(url, api_key, settings, log_path, sleep)
        # The local references' forward passes multiply small matrices (see api/_blas.py).
        with one_blas_thread():
            report.behaviour = behaviour_run.run_behaviour_test(
                report,
                target,
                prompts=prompts,
                url_references=[
                    behaviour_run.Endpoint(reference, reference_key, settings, log_path, sleep)
                    for reference in url_references
                ],
                local_references=local_references,
                model=model,
            )
    return report


def _key_from_env(variable: str | None) -> str | None:
    if not variable:
        return None
    value = os.environ.get(variable)
    if not value:
        raise ProbeError(f"Environment variable '{variable}' (named by --api-key-env) is not set or empty.")
    return value


def _default_evidence_path(home: Path, url: str) -> Path:
    from urllib.parse import urlsplit

    host = re.sub(r"[^A-Za-z0-9.-]+", "_", urlsplit(url).netloc or "endpoint")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return home / "probe" / "evidence" / f"{stamp}-{host}.jsonl"
