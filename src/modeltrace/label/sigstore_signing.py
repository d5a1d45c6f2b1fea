"""Sigstore keyless signing of labels: the optional extra ``modeltrace[sigstore]``.

The signed payload is byte-for-byte the in-toto Statement a local key signs
(:func:`modeltrace.label.signing.statement_payload`); only the envelope around it differs:

* ``label sign --key`` writes a DSSE envelope whose signature a PEM public key checks;
* ``label sign --sigstore`` writes a Sigstore bundle: the same DSSE envelope, signed by a
  short-lived key whose certificate (from Fulcio) names the signer's OIDC identity, plus the
  transparency-log (Rekor) entry that proves when it was signed.

Verification checks the bundle against a Sigstore trust root (production, staging or a
``ClientTrustConfig`` file) and an identity policy (SAN + OIDC issuer) entirely offline: the
bundle carries the certificate, the signed timestamp and the inclusion proof. Only fetching the
production or staging trust root by TUF touches the network (``offline=True`` skips it).

``sigstore`` is imported inside the functions, never at module import, so modeltrace works
without the extra and only ``--sigstore`` asks for it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ExtensionNotFound

from modeltrace.errors import LabelError, SignatureInvalidError, UsageError
from modeltrace.label.schema import Label, is_dsse_envelope, is_sigstore_bundle
from modeltrace.label.signing import PAYLOAD_TYPE, key_id, parse_statement, statement_payload

if TYPE_CHECKING:
    from sigstore.dsse import Statement
    from sigstore.models import ClientTrustConfig
    from sigstore.oidc import IdentityToken

INSTALL_HINT = "Sigstore signing needs the optional extra: pip install 'modeltrace[sigstore]'"
TOKEN_ENV = "SIGSTORE_ID_TOKEN"
#: Subject digest names sigstore-python 4.x accepts (in-toto itself allows any name).
_SIGSTORE_DIGEST_NAMES = frozenset({"sha256", "sha384", "sha512", "sha3_256", "sha3_384", "sha3_512"})


def require_sigstore() -> None:
    """Raise UsageError with the install command when the ``sigstore`` package is missing."""
    try:
        import sigstore  # noqa: F401
    except ImportError as error:
        raise UsageError(f"{INSTALL_HINT} (import failed: {error})") from error


def load_trust_config(
    trust_config: str | Path | None = None,
    *,
    staging: bool = False,
    offline: bool = False,
    for_signing: bool = False,
) -> ClientTrustConfig:
    """Sigstore production (default), staging, or the ``ClientTrustConfig`` JSON in ``trust_config``.

    ``offline`` uses sigstore-python's cached (or built-in) trust root instead of a TUF refresh.
    """
    require_sigstore()
    from pydantic import ValidationError
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import ClientTrustConfig

    if trust_config is not None and staging:
        raise UsageError("--staging and --trust-config exclude each other: the file names its own services")
    if trust_config is None:
        try:
            return ClientTrustConfig.staging(offline) if staging else ClientTrustConfig.production(offline)
        except SigstoreError as error:
            instance = "staging" if staging else "production"
            # Signing needs Fulcio and Rekor anyway; verifying can use the cached trust root.
            fix = "signing needs the network" if for_signing else "without network, pass --offline"
            raise LabelError(
                f"Cannot load the Sigstore {instance} trust root ({error}): {fix}, "
                "or give a private instance's --trust-config FILE"
            ) from error
    path = Path(trust_config).expanduser()
    try:
        config = ClientTrustConfig.from_json(path.read_text(encoding="utf-8"))
        config.trusted_root  # noqa: B018  (parses and checks the root now, not mid-verification)
    except OSError as error:
        raise UsageError(f"Cannot read trust config '{path}': {error.strerror}") from error
    except (ValueError, ValidationError, SigstoreError) as error:
        raise UsageError(
            f"'{path}' is not a Sigstore ClientTrustConfig JSON "
            f"(mediaType application/vnd.dev.sigstore.clienttrustconfig.v0.1+json): {error}"
        ) from error
    return config


def resolve_identity_token(
    token: str | None, trust: ClientTrustConfig, *, interactive: bool
) -> IdentityToken:
    """The OIDC token: ``token``, else $SIGSTORE_ID_TOKEN, else an ambient CI credential
    (GitHub Actions with ``id-token: write``, GitLab, Buildkite, CircleCI, GCP), else, only when
    ``interactive``, sigstore's browser sign-in."""
    from sigstore.oidc import IdentityError, IdentityToken, Issuer, detect_credential

    try:
        raw = token or os.environ.get(TOKEN_ENV) or detect_credential()
        if raw:
            return IdentityToken(raw)
    except IdentityError as error:
        raise UsageError(f"The OIDC identity token is not usable: {error}") from error
    if not interactive:
        raise UsageError(
            f"No OIDC identity token: pass --identity-token TOKEN or set {TOKEN_ENV} "
            "(in GitHub Actions, give the job `permissions: id-token: write` and it is found by itself)"
        )
    return Issuer(trust.signing_config.get_oidc_url()).identity_token()


def _sigstore_statement(payload: bytes) -> Statement:
    """sigstore's Statement object carrying exactly ``payload``.

    sigstore-python 4.x refuses subject digest names outside SHA-2/SHA-3, though in-toto allows
    any name and our subject also carries ``modeltrace-tensor-sha256``. So sigstore validates the
    statement without that one entry, then signs our exact bytes: the bundle's payload is the very
    statement a local key signs. (Statement keeps its bytes in ``_contents`` in 4.x; the tests
    check the bundle's payload equals ``statement_payload(label)``, so a change there shows.)
    """
    from sigstore.dsse import Statement

    statement = json.loads(payload)
    for subject in statement["subject"]:
        subject["digest"] = {
            name: value for name, value in subject["digest"].items() if name in _SIGSTORE_DIGEST_NAMES
        }
    checked = Statement(json.dumps(statement).encode("utf-8"))
    checked._contents = payload
    return checked


def sign_label_sigstore(
    label: Label,
    *,
    identity_token: str | None = None,
    trust_config: str | Path | None = None,
    staging: bool = False,
    interactive: bool = False,
) -> dict[str, Any]:
    """The Sigstore bundle (as JSON data) of the label's statement, signed keylessly.

    Talks to the trust config's Fulcio (certificate for the token's identity) and Rekor
    (transparency log entry). Raises LabelError when a service refuses or cannot be reached.
    """
    payload = statement_payload(label)
    trust = load_trust_config(trust_config, staging=staging, for_signing=True)
    token = resolve_identity_token(identity_token, trust, interactive=interactive)
    import requests
    from sigstore._internal.fulcio.client import FulcioClientError  # no public name in sigstore 4.x
    from sigstore._internal.rekor import RekorClientError
    from sigstore.errors import Error as SigstoreError
    from sigstore.oidc import ExpiredIdentity
    from sigstore.sign import SigningContext

    try:
        context = SigningContext.from_trust_config(trust)
        with context.signer(token, cache=True) as signer:
            bundle = signer.sign_dsse(_sigstore_statement(payload))
    except ExpiredIdentity as error:
        raise UsageError("The OIDC identity token has expired; get a fresh one") from error
    except (SigstoreError, FulcioClientError, RekorClientError, requests.RequestException) as error:
        # sigstore's Fulcio client can drop the HTTP status from its message; the cause keeps it.
        detail = str(error) or str(error.__cause__ or "") or "no detail"
        raise LabelError(f"Sigstore signing failed: {type(error).__name__}: {detail}") from error
    data: dict[str, Any] = json.loads(bundle.to_json())
    return data


@dataclass(frozen=True)
class SigstoreSigner:
    """Who signed a verified bundle and where the signature is logged."""

    identity: str
    issuer: str
    key_id: str  # hex SHA-256 of the short-lived key's DER SubjectPublicKeyInfo (as for local keys)
    certificate_sha256: str
    log_index: int | None
    integrated_time: int | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "identity": self.identity,
            "issuer": self.issuer,
            "certificate_sha256": self.certificate_sha256,
            "rekor_log_index": self.log_index,
            "rekor_integrated_time": self.integrated_time,
        }


def _log_entry_field(bundle_data: dict[str, Any], name: str) -> int | None:
    entries = bundle_data.get("verificationMaterial", {}).get("tlogEntries") or [{}]
    value = entries[0].get(name)
    return int(value) if isinstance(value, (int, str)) and str(value).isdecimal() else None


def open_bundle(
    bundle_data: Any,
    *,
    identity: str,
    issuer: str,
    trust_config: str | Path | None = None,
    staging: bool = False,
    offline: bool = False,
) -> tuple[dict[str, Any], Label, SigstoreSigner]:
    """Verify a Sigstore bundle and return (statement, label, signer).

    Checks, through sigstore-python's Verifier: the certificate chains to the trust root's
    Fulcio CA at the logged signing time, its embedded SCT, the SAN equals ``identity`` and the
    OIDC issuer extension equals ``issuer``, the Rekor inclusion proof, signed checkpoint and
    signed entry timestamp, and the DSSE signature. Raises SignatureInvalidError on any failure.
    """
    if is_dsse_envelope(bundle_data):
        raise UsageError(
            "this is a DSSE envelope signed with a local key (`label sign --key`), not a Sigstore "
            "bundle: verify it with --pubkey KEY"
        )
    if not is_sigstore_bundle(bundle_data):
        raise LabelError("not a Sigstore bundle (no mediaType application/vnd.dev.sigstore.bundle...)")
    trust = load_trust_config(trust_config, staging=staging, offline=offline)
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import Bundle
    from sigstore.verify import Verifier
    from sigstore.verify.policy import Identity

    try:
        bundle = Bundle.from_json(json.dumps(bundle_data))
        verifier = Verifier(trusted_root=trust.trusted_root)
        payload_type, payload = verifier.verify_dsse(bundle, Identity(identity=identity, issuer=issuer))
    except (SigstoreError, ExtensionNotFound) as error:
        raise SignatureInvalidError(f"the Sigstore bundle does not verify: {error}") from error
    if payload_type != PAYLOAD_TYPE:
        raise SignatureInvalidError(f"the bundle signs a {payload_type!r} payload, not {PAYLOAD_TYPE!r}")
    statement, label = parse_statement(payload)
    certificate = bundle.signing_certificate
    public_key = certificate.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise SignatureInvalidError(f"the signing certificate holds a {type(public_key).__name__}")
    signer = SigstoreSigner(
        identity=identity,
        issuer=issuer,
        key_id=key_id(public_key),
        certificate_sha256=certificate.fingerprint(hashes.SHA256()).hex(),
        log_index=_log_entry_field(bundle_data, "logIndex"),
        integrated_time=_log_entry_field(bundle_data, "integratedTime"),
    )
    return statement, label, signer
