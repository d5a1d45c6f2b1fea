"""``modeltrace label ...``: create, import, show, keygen, sign, verify and export provenance labels."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from modeltrace import api
from modeltrace.cli._app import app, console, emit_json, err_console
from modeltrace.cli._progress import byte_progress, folder_bytes
from modeltrace.errors import UsageError, VerificationFailedError

label_app = typer.Typer(
    help="Provenance labels: what a model is made of, signed and checkable.", no_args_is_help=True
)
app.add_typer(label_app, name="label")


def _print_summary(label: dict[str, Any]) -> None:
    summary = api.label_summary(label)
    level = summary["traceability"]
    console.print(f"[bold]{summary['model']}[/]  traceability [bold]{level['level']}[/]")
    for gap in level["missing_for_next"]:
        console.print(f"  missing for the next level: {gap}")
    mof = summary["model_openness_framework"]
    console.print(f"  Model Openness Framework: {mof['class'] or 'no class reached'}")
    for gap in mof["missing_for_next"]:
        console.print(f"    for {mof['next_class']}: {gap}")
    shares = summary["compute_shares"]
    if shares["by_kind"]:
        console.print(
            "  compute: " + ", ".join(f"{share} {kind}" for kind, share in shares["by_kind"].items())
        )


@label_app.command("create")
def create(
    path: Annotated[Path, typer.Argument(help="Model folder or weight file.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the label JSON.")] = Path(
        "modeltrace-label.json"
    ),
    base: Annotated[list[str] | None, typer.Option(help="Base model: local path (digested) or id.")] = None,
    relation: Annotated[
        str | None, typer.Option(help=f"Relation to the base: {', '.join(api.LABEL_RELATIONS)}.")
    ] = None,
    base_weight: Annotated[
        list[str] | None, typer.Option(help="Merge weight of a --base: ID=WEIGHT, e.g. org/model-a=0.6.")
    ] = None,
    license: Annotated[str | None, typer.Option(help="Licence: SPDX id or LicenseRef-...")] = None,
    dataset: Annotated[list[str] | None, typer.Option(help="Training data: ID, ID=URL or ID=PATH.")] = None,
    from_scratch: Annotated[bool, typer.Option(help="Declare the model has no base model.")] = False,
    training_log: Annotated[
        Path | None, typer.Option(help="Training log file (its SHA-256 is recorded).")
    ] = None,
    instruction_set: Annotated[
        Path | None, typer.Option(help="Fine-tuning instruction set file or folder.")
    ] = None,
    compute: Annotated[
        list[str] | None, typer.Option(help="STAGE=FLOPS[@PARTY], e.g. pretraining=1e24@Meta.")
    ] = None,
    component: Annotated[
        list[str] | None, typer.Option(help="Released MOF component NAME=LICENSE[@URL].")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Model name (default: declared name or folder name).")
    ] = None,
    version: Annotated[str | None, typer.Option(help="Model version.")] = None,
    supplier: Annotated[str | None, typer.Option(help="Publisher of the model.")] = None,
    url: Annotated[str | None, typer.Option(help="Download location of the model.")] = None,
    no_prefill: Annotated[
        bool, typer.Option(help="Do not copy claims from the model card / GGUF metadata.")
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the label summary as JSON.")] = False,
) -> None:
    """Digest a model and write its label, pre-filled from the model card, GGUF metadata and config."""
    model = path.expanduser().resolve()
    target = output.expanduser().resolve()
    # A label written inside the model folder is not part of the model it describes.
    ignore = [target.relative_to(model).as_posix()] if model.is_dir() and target.is_relative_to(model) else []
    label = api.label_create(
        path,
        name=name,
        bases=base or (),
        relation=relation,
        base_weights=base_weight or (),
        license=license,
        datasets=dataset or (),
        from_scratch=from_scratch,
        training_log=training_log,
        instruction_set=instruction_set,
        compute=compute or (),
        components=component or (),
        version=version,
        supplier=supplier,
        url=url,
        ignore=ignore,
        prefill=not no_prefill,
    )
    api.label_write(label, target)
    if json_output:
        emit_json({"label": str(target), **api.label_summary(label)})
        return
    console.print(f"wrote {target}")
    _print_summary(label)


@label_app.command("import")
def import_claims(
    label_path: Annotated[Path, typer.Argument(metavar="LABEL", help="Label JSON to fill.")],
    source: Annotated[Path, typer.Option("--from", help="Model folder, README.md folder or GGUF file.")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Default: overwrite LABEL.")] = None,
) -> None:
    """Fill a label's empty fields from a model card front-matter or GGUF general.* metadata."""
    label = api.label_import(api.label_read(label_path), source)
    target = api.label_write(label, output or label_path)
    console.print(f"wrote {target}")
    _print_summary(label)


@label_app.command("show")
def show(
    label_path: Annotated[Path, typer.Argument(metavar="LABEL", help="Label or signed label.")],
    json_output: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Traceability level, what is missing, Model Openness Framework class and compute shares."""
    label = api.label_read(label_path)
    if json_output:
        emit_json(api.label_summary(label))
    else:
        _print_summary(label)


@label_app.command("keygen")
def keygen(
    folder: Annotated[
        Path, typer.Argument(metavar="DIR", help="Folder for modeltrace.key and modeltrace.pub.")
    ],
    algorithm: Annotated[str, typer.Option(help="ed25519 or ecdsa-p256.")] = "ed25519",
    force: Annotated[bool, typer.Option(help="Replace existing key files.")] = False,
) -> None:
    """Create a signing key pair (PEM; the private key file is readable by you only)."""
    private_path, public_path = api.label_keygen(folder, algorithm=algorithm, overwrite=force)
    console.print(f"private key {private_path} (mode 0600: keep it secret)")
    console.print(f"public key  {public_path}")


@label_app.command("sign")
def sign(
    label_path: Annotated[Path, typer.Argument(metavar="LABEL", help="Label JSON.")],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Signed label (DSSE envelope, or Sigstore bundle).")
    ],
    key: Annotated[
        Path | None, typer.Option(help="PEM private key (from `modeltrace label keygen`).")
    ] = None,
    sigstore: Annotated[
        bool, typer.Option("--sigstore", help="Sign keylessly with Sigstore (needs the sigstore extra).")
    ] = False,
    identity_token: Annotated[
        str | None,
        typer.Option(help="With --sigstore: OIDC identity token (default: $SIGSTORE_ID_TOKEN, CI, browser)."),
    ] = None,
    staging: Annotated[bool, typer.Option(help="With --sigstore: use Sigstore staging.")] = False,
    trust_config: Annotated[
        Path | None, typer.Option(help="With --sigstore: Sigstore ClientTrustConfig JSON (private instance).")
    ] = None,
) -> None:
    """Sign a label: an in-toto Statement about the model digest, in a DSSE envelope.

    With --key the envelope is signed by your key; with --sigstore by a short-lived key whose
    Fulcio certificate names your OIDC identity, logged in Rekor (written as a Sigstore bundle).
    """
    if key is not None and sigstore:
        raise UsageError("--key and --sigstore exclude each other: sign with a local key or keylessly")
    if key is None and not sigstore:
        raise UsageError("Give --key KEY (a local key from `label keygen`) or --sigstore (keyless)")
    if key is not None:
        if identity_token is not None or staging or trust_config is not None:
            raise UsageError("--identity-token, --staging and --trust-config go with --sigstore, not --key")
        envelope = api.label_sign(api.label_read(label_path), key)
        output.write_text(json.dumps(envelope, indent=2) + "\n", encoding="utf-8")
        console.print(f"wrote {output} (keyid {envelope['signatures'][0]['keyid'][:16]}...)")
        return
    bundle = api.label_sign_sigstore(
        api.label_read(label_path),
        identity_token=identity_token,
        trust_config=trust_config,
        staging=staging,
        interactive=sys.stdin.isatty(),
    )
    output.write_text(json.dumps(bundle, indent=2) + "\n", encoding="utf-8")
    entry = bundle["verificationMaterial"]["tlogEntries"][0]
    console.print(f"wrote {output} (Sigstore bundle, Rekor log index {entry['logIndex']})")


@label_app.command("verify")
def verify(
    model: Annotated[Path, typer.Argument(help="Model folder or weight file.")],
    signed: Annotated[Path, typer.Argument(metavar="SIGNED", help="Signed label.")],
    pubkey: Annotated[
        Path | None, typer.Option(help="PEM public key of the signer (label signed with --key).")
    ] = None,
    sigstore_identity: Annotated[
        str | None,
        typer.Option(help="Sigstore bundle: the signer's email or URI in the certificate."),
    ] = None,
    sigstore_issuer: Annotated[
        str | None,
        typer.Option(help="Sigstore bundle: the OIDC issuer, e.g. https://github.com/login/oauth."),
    ] = None,
    staging: Annotated[bool, typer.Option(help="Sigstore bundle: trust Sigstore staging.")] = False,
    trust_config: Annotated[
        Path | None, typer.Option(help="Sigstore bundle: trust this ClientTrustConfig JSON instead.")
    ] = None,
    offline: Annotated[
        bool, typer.Option(help="Sigstore bundle: use the cached trust root, no TUF refresh.")
    ] = False,
    lineage: Annotated[
        bool, typer.Option(help="Also test the declared base models with the lineage engine.")
    ] = False,
    known_bases: Annotated[
        Path | None,
        typer.Option(
            help="With --lineage: a folder of known models; any the weights derive from must be declared."
        ),
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Hashing threads (default: CPU count).")] = None,
    json_output: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Check the signature, recompute the digests, name every changed/added/removed file and tensor.

    Exit status 0 only when everything holds; 2 when anything differs or the signature is bad.
    """
    keyless = sigstore_identity is not None or sigstore_issuer is not None
    _check_verify_flags(pubkey, keyless, staging or trust_config is not None or offline)
    if keyless and (sigstore_identity is None or sigstore_issuer is None):
        raise UsageError("A Sigstore bundle needs both --sigstore-identity and --sigstore-issuer")
    with byte_progress(folder_bytes(model.expanduser()) * 2, "verifying") as progress:
        task = progress.task_ids[0]
        options: dict[str, Any] = {
            "lineage": lineage,
            "known_bases": known_bases,
            "workers": workers,
            "progress": lambda _phase, _name, size: progress.advance(task, size),
        }
        if pubkey is not None:
            report = api.label_verify(model, signed, pubkey, **options)
        else:
            report = api.label_verify_sigstore(
                model,
                signed,
                identity=str(sigstore_identity),
                issuer=str(sigstore_issuer),
                trust_config=trust_config,
                staging=staging,
                offline=offline,
                **options,
            )
    if json_output:
        emit_json(report.as_dict())
    else:
        if report.sigstore is not None:
            console.print(
                f"signature valid (Sigstore: {report.sigstore['identity']} via {report.sigstore['issuer']}, "
                f"Rekor log index {report.sigstore['rekor_log_index']}), label for '{report.label_name}'"
            )
        else:
            console.print(f"signature valid (keyid {report.key_id[:16]}...), label for '{report.label_name}'")
        for change in report.changes:
            err_console.print(f"[red]{change.kind} {change.change}:[/] {change.name}")
        for problem in report.problems:
            err_console.print(f"[red]problem:[/] {problem}")
        for entry in report.lineage:
            console.print(_lineage_line(entry))
        if report.ok:
            console.print(
                f"[green]OK[/] every file and tensor matches (oms_root {report.actual['oms_root']})"
            )
    if not report.ok:  # exit 2 like a bad signature: the VerificationError family
        raise VerificationFailedError(len(report.changes), len(report.problems))


def _check_verify_flags(pubkey: Path | None, keyless: bool, trust_flags: bool) -> None:
    """Exactly one way to check the signature: a public key, or a Sigstore identity."""
    if pubkey is not None and keyless:
        raise UsageError("--pubkey and --sigstore-identity/--sigstore-issuer exclude each other")
    if pubkey is None and not keyless:
        raise UsageError(
            "Give --pubkey KEY (a label signed with --key) or --sigstore-identity and "
            "--sigstore-issuer (a Sigstore bundle from `label sign --sigstore`)"
        )
    if pubkey is not None and trust_flags:
        raise UsageError("--staging, --trust-config and --offline go with a Sigstore bundle, not --pubkey")


@label_app.command("export")
def export(
    label_path: Annotated[Path, typer.Argument(metavar="LABEL", help="Label or signed label.")],
    format: Annotated[str, typer.Option("--format", help=" | ".join(api.LABEL_EXPORT_FORMATS))],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Default: print to stdout.")] = None,
) -> None:
    """Export a label as SPDX 3.0.1 JSON-LD, CycloneDX 1.6 ML-BOM, HF model-card YAML or MOF class."""
    if format not in api.LABEL_EXPORT_FORMATS:
        raise UsageError(f"--format {format!r}: choose one of {', '.join(api.LABEL_EXPORT_FORMATS)}")
    text = api.label_export(api.label_read(label_path), format)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        console.print(f"wrote {output}")


def _lineage_line(entry: dict[str, Any]) -> str:
    """One line per lineage check: which base, whether it was tested, and the engine's verdict."""
    if not entry.get("checked"):
        return f"lineage: {entry.get('base', 'claim')} not checked ({entry.get('reason', '')})"
    result = entry.get("result") or {}
    log10_p = result.get("log10_p")
    p_text = f", log10 p = {log10_p:.1f}" if isinstance(log10_p, float) else ""
    declared = "" if entry.get("declared", True) else " (undeclared)"
    return f"lineage: {entry['base']}{declared}: {result.get('verdict', 'inconclusive')}{p_text}"
