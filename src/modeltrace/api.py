"""The public Python API of modeltrace: one facade over every layer.

The CLI and the service call only this module (and :mod:`modeltrace.errors`). Each section below
belongs to one layer; functions here validate inputs, open files through ``formats`` and hand
values in memory to the pure layers (fingerprint, lineage, licences).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import modeltrace
from modeltrace import demo_zoo
from modeltrace.errors import LicenseError, ProbeError, UnsupportedFormatError, UsageError
from modeltrace.fingerprint.architecture import card_from_config, card_from_tensors
from modeltrace.formats import open_model
from modeltrace.licenses import ComplianceReport, DeploymentProfile, License, check_compliance, load_catalog
from modeltrace.paths import modeltrace_home

if TYPE_CHECKING:
    from modeltrace.probe.client import ProbeClient
    from modeltrace.probe.prober import ProbeReport
    from modeltrace.probe.probeset import ProbeSet


def version() -> str:
    """The installed modeltrace version."""
    return modeltrace.__version__


# --- licenses ------------------------------------------------------------------------------------


def check_license(
    model: str | Path | None = None,
    *,
    lineage: str | Path | None = None,
    use: str = "commercial",
    distribution: str = "hosted",
    mau: int = 0,
    monthly_revenue: float = 0,
    name: str | None = None,
    region: str | None = None,
    release_date: str | date | None = None,
) -> ComplianceReport:
    """What every licence in a model's ancestry demands of this deployment.

    ``model`` is a model folder (with ``modeltrace-label.json`` or a ``README.md`` model card), a
    card or a label file; ``lineage`` a YAML/JSON lineage tree. With both, the lineage file supplies
    the licences and ancestors the card or label lacks. Raises LicenseError on unreadable input or
    option values; an unknown licence id is reported in ``report.unknown``, not raised.
    """
    from modeltrace.licenses import sources

    model_tree = sources.lineage_for_model(model) if model is not None else None
    if lineage is not None:
        from_file = sources.load_lineage_file(lineage)
        tree = sources.merge_lineage(model_tree, from_file) if model_tree is not None else from_file
    elif model_tree is not None:
        tree = model_tree
    else:
        raise LicenseError("Nothing to check: give a model folder, a label or card, or --lineage FILE.")
    if isinstance(release_date, str):
        try:
            release_date = date.fromisoformat(release_date)
        except ValueError as error:
            raise LicenseError(
                f"Release date {release_date!r} is not an ISO date such as 2025-06-30."
            ) from error
    profile = DeploymentProfile(
        use=use,
        distribution=distribution,
        mau=mau,
        monthly_revenue_usd=monthly_revenue,
        name=name,
        region=region,
        release_date=release_date,
    )
    return check_compliance(tree, profile, load_catalog())


def show_license(license_id: str) -> License:
    """One licence of the knowledge base by any accepted id (``llama3.1``, ``Apache-2.0`` ...)."""
    found = load_catalog().get(license_id)
    if found is None:
        known = ", ".join(license_.key for license_ in load_catalog())
        raise LicenseError(f"No licence '{license_id}' in the knowledge base; known: {known}.")
    return found


def list_licenses() -> list[License]:
    """Every licence in the knowledge base, sorted by id."""
    return list(load_catalog())


# --- inspect -----------------------------------------------------------------------------------------


def inspect(path: str | Path, format: str | None = None) -> dict[str, Any]:
    """The architecture card of a model folder, weight file or bare config.json, as a JSON-ready dict.

    Parameters are counted from the tensors when weights are present (config.json's count is added
    as ``config_total_params``) and from config.json alone otherwise. Keys other tools rely on:
    ``format``, ``total_params``, ``active_params``, ``activation_rate``, ``layers``,
    ``hidden_size``, ``vocab_size``, ``experts``, ``declared``; see docs/inspect.md for the rest.
    """
    with open_model(path, format) as source:
        if source.weights is not None:
            card = card_from_tensors(
                source.weights.stored_tensors().values(), source.config, source.weights.metadata
            )
        elif source.config is not None:
            card = card_from_config(source.config)
        else:  # open_model only returns sources with weights or a config; keep the promise explicit
            raise UnsupportedFormatError(source.path, "no weights and no config.json to describe")
        return {
            "path": str(source.path),
            "name": source.name,
            "format": source.format,
            **card.as_dict(),
            "declared": source.declared.as_dict(),
            "tokenizer_files": sorted(source.tokenizer_files),
        }


def build_demo_zoo(home: Path | None = None) -> Path:
    """Generate the demo models under ``<home>/demo-zoo`` (home defaults to MODELTRACE_HOME)."""
    return demo_zoo.build((home if home is not None else modeltrace_home()) / "demo-zoo")


def demo_zoo_members(zoo: Path) -> list[Path]:
    """The model paths of a built demo zoo, in name order."""
    return demo_zoo.members(zoo)
# --- probe -----------------------------------------------------------------------------------------
# Black-box probing of OpenAI-compatible endpoints and the reference-tokenizer library.


def tokenizer_library() -> list[dict[str, object]]:
    """Every reference tokenizer (built-in and user-added) with its format, origin and digest."""
    from modeltrace.paths import modeltrace_home
    from modeltrace.probe import library

    return [spec.to_dict() for spec in library.library_specs(modeltrace_home())]


def add_tokenizer(name: str, path: str | Path, pattern: str | None = None) -> dict[str, object]:
    """Add a tokenizer file (tokenizer.json, SentencePiece .model, tiktoken BPE, vocab.json+merges.txt).

    The probe set is rebuilt on next use because the library digest changes.
    """
    from modeltrace.paths import modeltrace_home
    from modeltrace.probe import library

    return library.add_tokenizer(modeltrace_home(), name, Path(path), pattern=pattern).to_dict()


def remove_tokenizer(name: str) -> None:
    """Remove a user-added tokenizer from the library."""
    from modeltrace.paths import modeltrace_home
    from modeltrace.probe import library

    library.remove_tokenizer(modeltrace_home(), name)


def probe_set() -> ProbeSet:
    """The optimised probe set for the current library: from the cache, or built and cached (seconds)."""
    from modeltrace.paths import modeltrace_home
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
    the behavioural test against ``references`` (other endpoint URLs) sends ``behaviour_prompts``
    more requests to the target and to each reference (retries included, capped separately).
    """
    from modeltrace.paths import modeltrace_home
    from modeltrace.probe import behaviour
    from modeltrace.probe.client import ClientSettings, ProbeClient
    from modeltrace.probe.prober import probe_endpoint
    from modeltrace.probe.prompts import BEHAVIOUR_PROMPTS

    for reference in references:
        if not reference.startswith(("http://", "https://")):
            raise UsageError(
                f"Reference '{reference}' is not an http(s) URL; local-model references are not supported "
                "yet. Serve the model behind an OpenAI-compatible server (e.g. vLLM) and pass its URL."
            )
    if not 1 <= behaviour_prompts <= len(BEHAVIOUR_PROMPTS):
        raise UsageError(
            f"behaviour_prompts must be between 1 and {len(BEHAVIOUR_PROMPTS)}, got {behaviour_prompts}."
        )
    settings = ClientSettings(
        timeout_s=timeout_s, max_retries=max_retries, backoff_s=backoff_s, concurrency=concurrency
    )
    log_path = Path(evidence_path) if evidence_path else _default_evidence_path(modeltrace_home(), url)
    api_key = _key_from_env(api_key_env)
    chosen_set = probe_set()
    with ProbeClient(
        url, api_key=api_key, budget=budget, settings=settings, evidence_path=log_path, sleep=sleep
    ) as client:
        report = probe_endpoint(client, chosen_set, model)
    if references:
        prompts = list(BEHAVIOUR_PROMPTS[:behaviour_prompts])
        behaviour_budget = behaviour_prompts + max(4, behaviour_prompts // 4)
        reference_key = _key_from_env(reference_api_key_env)
        answers: dict[str, list[str | None]] = {}
        target_client = ProbeClient(
            url,
            api_key=api_key,
            budget=behaviour_budget,
            settings=settings,
            evidence_path=log_path,
            sleep=sleep,
        )
        with target_client:
            target_answers = behaviour.greedy_answers(target_client, report.model, prompts, concurrency)
            report.requests += target_client.sent
            report.requests_by_endpoint[target_client.base_url] += target_client.sent
        for reference in references:
            reference_client = ProbeClient(
                reference, api_key=reference_key, budget=behaviour_budget, settings=settings,
                evidence_path=log_path, sleep=sleep,
            )  # fmt: skip
            with reference_client:
                reference_model = _first_model(reference_client) if model is None else model
                answers[reference_client.base_url] = behaviour.greedy_answers(
                    reference_client, reference_model, prompts, concurrency
                )
                report.requests_by_endpoint[reference_client.base_url] = reference_client.sent
        report.behaviour = behaviour.compare_answers(target_answers, answers)
    return report


def _key_from_env(variable: str | None) -> str | None:
    if not variable:
        return None
    value = os.environ.get(variable)
    if not value:
        raise ProbeError(f"Environment variable '{variable}' (named by --api-key-env) is not set or empty.")
    return value


def _first_model(client: ProbeClient) -> str:
    """The first id a reference lists under /v1/models ('default' when it lists none)."""
    from modeltrace.errors import BudgetExhaustedError

    try:
        listing = client.request("GET", "/models", phase="reference models").json()
    except BudgetExhaustedError:
        return "default"
    try:
        return str(listing["data"][0]["id"])
    except (TypeError, KeyError, IndexError):
        return "default"


def _default_evidence_path(home: Path, url: str) -> Path:
    from urllib.parse import urlsplit

    host = re.sub(r"[^A-Za-z0-9.-]+", "_", urlsplit(url).netloc or "endpoint")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return home / "probe" / "evidence" / f"{stamp}-{host}.jsonl"
# --- label: digests, provenance labels, signatures, exports ---------------------------------------


from modeltrace.label import create as _label_create  # noqa: E402
from modeltrace.label import signing as _label_signing  # noqa: E402
from modeltrace.label.digest import ModelDigest, digest_model  # noqa: E402
from modeltrace.label.exports import EXPORT_FORMATS, export_label  # noqa: E402
from modeltrace.label.levels import LevelReport, compute_shares, traceability  # noqa: E402
from modeltrace.label.mof import mof_class  # noqa: E402
from modeltrace.label.schema import Label, read_label, validate_label, write_label  # noqa: E402
from modeltrace.label.verify import VerifyReport, verify_model  # noqa: E402

LABEL_EXPORT_FORMATS = EXPORT_FORMATS
LABEL_RELATIONS = _label_create.RELATIONS
ComputeStage = _label_create.ComputeStage


def digest(
    path: str | Path,
    *,
    tensors: bool = True,
    workers: int | None = None,
    ignore: Sequence[str] = (),
    progress: Callable[[str, str, int], None] | None = None,
) -> ModelDigest:
    """Both content digests of a model: ``oms_root`` (OpenSSF model-signing) and ``tensor_root``.

    ``ignore`` adds paths (relative to the model folder) to model-signing's default git ignores.
    """
    from modeltrace.label.file_digest import GIT_PATHS

    return digest_model(
        path, tensors=tensors, workers=workers, ignored=(*GIT_PATHS, *ignore), progress=progress
    )


def label_create(
    path: str | Path,
    *,
    name: str | None = None,
    bases: Sequence[str] = (),
    relation: str | None = None,
    license: str | None = None,
    datasets: Sequence[str] = (),
    from_scratch: bool = False,
    training_log: str | Path | None = None,
    instruction_set: str | Path | None = None,
    compute: Sequence[str] = (),
    components: Sequence[str] = (),
    version: str | None = None,
    supplier: str | None = None,
    url: str | None = None,
    ignore: Sequence[str] = (),
    prefill: bool = True,
) -> Label:
    """Digest a model and build its provenance label; see docs/label.md for every field.

    ``compute`` entries are ``STAGE=FLOPS[@PARTY]``; ``components`` are ``NAME=LICENSE[@URL]``
    (Model Openness Framework components); ``datasets`` are ``ID``, ``ID=URL`` or ``ID=PATH``.
    """
    from modeltrace.label.file_digest import GIT_PATHS

    label = _label_create.create_label(
        path,
        name=name,
        bases=bases,
        relation=relation,
        license=license,
        datasets=datasets,
        from_scratch=from_scratch,
        training_log=training_log,
        instruction_set=instruction_set,
        compute=[_label_create.parse_compute(text) for text in compute],
        components=[_label_create.parse_component(text) for text in components],
        ignored=(*GIT_PATHS, *ignore),
        prefill=prefill,
    )
    for key, value in (("version", version), ("supplier", supplier), ("url", url)):
        if value is not None:
            label["model"][key] = value
    return validate_label(label)


def label_import(label: Label, path: str | Path) -> Label:
    """Fill a label's empty fields from the model card / GGUF metadata found at ``path``."""
    return _label_create.merge_import(label, path)


def label_read(path: str | Path) -> Label:
    """Read a label file (or the label inside a signed envelope, without checking the signature)."""
    return read_label(path)


def label_write(label: Label, path: str | Path) -> Path:
    return write_label(label, path)


def label_summary(label: Label) -> dict[str, Any]:
    """Traceability level and gaps, MOF class and compute shares of a label."""
    level: LevelReport = traceability(label)
    return {
        "model": label["model"]["name"],
        "oms_root": label["model"]["digests"]["oms_root"],
        "tensor_root": label["model"]["digests"].get("tensor_root"),
        "traceability": level.as_dict(),
        "model_openness_framework": mof_class(label),
        "compute_shares": compute_shares(label),
    }


def label_keygen(
    folder: str | Path, *, algorithm: str = "ed25519", overwrite: bool = False
) -> tuple[Path, Path]:
    """Write ``folder/modeltrace.key`` (mode 0600) and ``folder/modeltrace.pub``; returns both paths."""
    return _label_signing.generate_keypair(folder, algorithm, overwrite=overwrite)


def label_sign(label: Label, key_path: str | Path) -> dict[str, Any]:
    """The label as an in-toto Statement in a DSSE envelope signed with the PEM key at ``key_path``."""
    return _label_signing.sign_label(label, _label_signing.load_private_key(key_path))


def label_verify(
    model: str | Path,
    signed_label: str | Path,
    public_key_path: str | Path,
    *,
    lineage: bool = False,
    workers: int | None = None,
    progress: Callable[[str, str, int], None] | None = None,
) -> VerifyReport:
    """Verify a signed label against a model; ``report.ok`` is True only when everything holds.

    With ``lineage=True`` each declared base model that exists as a local path is compared with
    the model by the lineage engine (``compare``); a verdict that contradicts the declaration
    (no relation found to a declared base) fails the report. Without the lineage engine this
    raises UsageError.
    """
    if lineage and globals().get("compare") is None:
        raise UsageError(
            "verify --lineage needs the lineage engine (modeltrace.api.compare), which is not available "
            "in this installation; run verify without --lineage"
        )
    public_key = _label_signing.load_public_key(public_key_path)
    report, label = verify_model(model, signed_label, public_key, workers=workers, progress=progress)
    if lineage:
        _check_lineage(report, label, Path(model))
    return report


def _check_lineage(report: VerifyReport, label: Label, model: Path) -> None:
    compare = globals()["compare"]
    for base in label["base_models"]:
        base_path = Path(base["id"]).expanduser()
        if not base_path.exists():
            report.lineage.append({"base": base["id"], "checked": False, "reason": "not available locally"})
            continue
        result = compare(model, base_path)
        verdict = result.as_dict() if hasattr(result, "as_dict") else result
        related = _related(verdict)
        report.lineage.append({"base": base["id"], "checked": True, "related": related, "result": verdict})
        if related is False:
            report.problems.append(
                f"lineage: the weights show no derivation from declared base '{base['id']}' "
                f"({base['relation']})"
            )
    if label.get("from_scratch"):
        report.lineage.append(
            {"checked": False, "reason": "from-scratch claims need a registry of known bases to test against"}
        )


def _related(verdict: Any) -> bool | None:
    """Read the lineage engine's verdict: True (derived), False (unrelated), None (undecided)."""
    if isinstance(verdict, dict):
        for key in ("related", "derived", "same_lineage"):
            if isinstance(verdict.get(key), bool):
                return bool(verdict[key])
        text = str(verdict.get("verdict", "")).lower()
        if text:
            return text not in ("unrelated", "independent", "not derived")
    return None


def label_export(label: Label, format: str) -> str:
    """The label as ``spdx`` (SPDX 3.0.1 JSON-LD), ``cyclonedx`` (1.6 ML-BOM), ``hf-card`` or ``mof``."""
    return export_label(label, format)
