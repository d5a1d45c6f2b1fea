"""The facade for content digests, provenance labels, signatures and exports."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from modeltrace.formats import open_model
from modeltrace.inspect.describe import describe
from modeltrace.label import create as _label_create
from modeltrace.label import signing as _label_signing
from modeltrace.label import sigstore_signing as _label_sigstore
from modeltrace.label.digest import ModelDigest, digest_model
from modeltrace.label.exports import export_label
from modeltrace.label.levels import LevelReport, compute_shares, traceability
from modeltrace.label.mof import mof_class
from modeltrace.label.schema import Label, read_label, validate_label, write_label
from modeltrace.label.verify import VerifyReport, require_key_signed, verify_model, verify_model_sigstore

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
    base_weights: Sequence[str] = (),
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

    ``base_weights`` are ``ID=WEIGHT`` merge weights of the bases (royalties split by them);
    ``compute`` entries are ``STAGE=FLOPS[@PARTY]``; ``components`` are ``NAME=LICENSE[@URL]``
    (Model Openness Framework components); ``datasets`` are ``ID``, ``ID=URL`` or ``ID=PATH``.
    """
    from modeltrace.label.file_digest import GIT_PATHS

    with open_model(Path(path).expanduser()) as source:
        card = describe(source)  # the card `inspect` shows: a label carries the same one
    label = _label_create.create_label(
        path,
        card=card,
        name=name,
        bases=bases,
        relation=relation,
        base_weights=dict(_label_create.parse_base_weight(text) for text in base_weights),
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
    known_bases: str | Path | None = None,
    workers: int | None = None,
    progress: Callable[[str, str, int], None] | None = None,
) -> VerifyReport:
    """Verify a signed label against a model; ``report.ok`` is True only when everything holds.

    With ``lineage=True`` each declared base model that exists as a local path is compared with
    the model by the lineage engine (``compare``); a verdict that contradicts the declaration
    (no relation found to a declared base) fails the report. A base is found at its id taken as a
    path, or beside the model (``<model>/../<id>``); bases found nowhere are listed as not checked.

    ``known_bases`` (a folder of models or fingerprints) tests what the label leaves out: every
    known model the weights derive from must be declared as a base, and a label that claims
    "from scratch" fails when the weights derive from any of them.
    """
    require_key_signed(signed_label)  # a Sigstore bundle given with --pubkey: say so before the key
    public_key = _label_signing.load_public_key(public_key_path)
    report, label = verify_model(model, signed_label, public_key, workers=workers, progress=progress)
    if lineage:
        _check_declared_lineage(report, label, Path(model), known_bases)
    return report


def label_sign_sigstore(
    label: Label,
    *,
    identity_token: str | None = None,
    trust_config: str | Path | None = None,
    staging: bool = False,
    interactive: bool = False,
) -> dict[str, Any]:
    """The label's statement signed keylessly with Sigstore; returns the bundle JSON data.

    Needs the ``modeltrace[sigstore]`` extra (UsageError otherwise). The OIDC token is
    ``identity_token``, else $SIGSTORE_ID_TOKEN, else an ambient CI credential, else (only when
    ``interactive``) sigstore's browser sign-in. ``trust_config`` is a Sigstore
    ClientTrustConfig JSON (a private deployment); default Sigstore production, or ``staging``.
    """
    return _label_sigstore.sign_label_sigstore(
        label,
        identity_token=identity_token,
        trust_config=trust_config,
        staging=staging,
        interactive=interactive,
    )


def label_verify_sigstore(
    model: str | Path,
    signed_label: str | Path,
    *,
    identity: str,
    issuer: str,
    trust_config: str | Path | None = None,
    staging: bool = False,
    offline: bool = False,
    lineage: bool = False,
    known_bases: str | Path | None = None,
    workers: int | None = None,
    progress: Callable[[str, str, int], None] | None = None,
) -> VerifyReport:
    """As :func:`label_verify` for a Sigstore bundle: the certificate must name ``identity``
    (email or URI SAN) issued by OIDC ``issuer``, chain to the trust root and be logged in Rekor.

    ``offline`` uses sigstore's cached production/staging trust root instead of a TUF refresh;
    the bundle check itself never needs the network. ``report.sigstore`` says who signed.
    """
    report, label = verify_model_sigstore(
        model,
        signed_label,
        identity=identity,
        issuer=issuer,
        trust_config=trust_config,
        staging=staging,
        offline=offline,
        workers=workers,
        progress=progress,
    )
    if lineage:
        _check_declared_lineage(report, label, Path(model), known_bases)
    return report


def _check_declared_lineage(
    report: VerifyReport, label: Label, model: Path, known_bases: str | Path | None
) -> None:
    _check_lineage(report, label, model)
    if known_bases is not None:
        _check_undeclared_bases(report, label, model, Path(known_bases))
    elif label.get("from_scratch"):
        report.lineage.append(
            {"checked": False, "reason": "a from-scratch claim needs --known-bases DIR to test against"}
        )


def _check_undeclared_bases(report: VerifyReport, label: Label, model: Path, known_bases: Path) -> None:
    from modeltrace.api._lineage import identify

    declared = {str(base["id"]) for base in label["base_models"]}
    declared |= {Path(name).name for name in declared}
    ranking = identify(model, known_bases)
    for candidate in ranking["candidates"]:
        name = str(candidate["candidate"])
        related = _related(candidate)
        report.lineage.append(
            {"base": name, "checked": True, "related": related, "declared": Path(name).name in declared,
             "result": {"verdict": candidate["verdict"], "p_value": candidate["p_value"],
                        "log10_p": candidate["log10_p"]}}
        )  # fmt: skip
        if related and Path(name).name not in declared and name not in declared:
            claim = "the label claims training from scratch" if label.get("from_scratch") else "not declared"
            report.problems.append(
                f"lineage: the weights derive from known model '{name}' "
                f"({candidate['verdict']}, log10 p = {candidate['log10_p'] or 0:.1f}), but {claim}"
            )


def _check_lineage(report: VerifyReport, label: Label, model: Path) -> None:
    from modeltrace.api._lineage import compare  # the lineage facade; imported here to keep layers one-way

    for base in label["base_models"]:
        candidates = (Path(base["id"]).expanduser(), model.parent / base["id"])
        base_path = next((path for path in candidates if path.exists()), candidates[0])
        if not base_path.exists():
            report.lineage.append({"base": base["id"], "checked": False, "reason": "not available locally"})
            continue
        verdict = compare(model, base_path).as_dict()
        related = _related(verdict)
        report.lineage.append({"base": base["id"], "checked": True, "related": related, "result": verdict})
        if related is False:
            report.problems.append(
                f"lineage: the weights show no derivation from declared base '{base['id']}' "
                f"({base['relation']})"
            )


def _related(verdict: Any) -> bool | None:
    """Read the lineage engine's verdict: True (derived), False (unrelated), None (inconclusive)."""
    text = str(verdict.get("verdict", "")).lower() if isinstance(verdict, dict) else ""
    if text in ("related", "same-weights"):
        return True
    if text == "unrelated":
        return False
    return None


def label_export(label: Label, format: str) -> str:
    """The label as ``spdx`` (SPDX 3.0.1 JSON-LD), ``cyclonedx`` (1.6 ML-BOM), ``hf-card`` or ``mof``."""
    return export_label(label, format)
