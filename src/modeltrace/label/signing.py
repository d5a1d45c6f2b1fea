"""Signed labels: the label as an in-toto Statement v1 inside a DSSE envelope, signed with a local key.

* Statement: ``_type`` ``https://in-toto.io/Statement/v1``; one subject, the model, with digest
  ``{"sha256": <oms_root>, "modeltrace-tensor-sha256": <tensor_root>}`` (the ``sha256`` value is
  the OMS root, so the statement names the same model an OMS signature names); predicateType
  :data:`PREDICATE_TYPE`; predicate = the label.
* Envelope (DSSE v1): ``{"payloadType": "application/vnd.in-toto+json", "payload": base64(statement),
  "signatures": [{"keyid": ..., "sig": base64(signature)}]}``; the signature covers
  ``PAE(payloadType, payload)`` = ``"DSSEv1" SP len(type) SP type SP len(body) SP body``.
* Keys: Ed25519 (default) or ECDSA P-256 with SHA-256, PEM files; ``keyid`` is the hex SHA-256 of
  the DER SubjectPublicKeyInfo.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from modeltrace.errors import LabelError, SignatureInvalidError, UsageError
from modeltrace.label.schema import Label, validate_label

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://modeltrace.dev/provenance-label/v1"
TENSOR_DIGEST_KEY = "modeltrace-tensor-sha256"
PRIVATE_KEY_NAME = "modeltrace.key"
PUBLIC_KEY_NAME = "modeltrace.pub"
ALGORITHMS = ("ed25519", "ecdsa-p256")

PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what the signature actually covers."""
    encoded_type = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(encoded_type), encoded_type, len(payload), payload)


def key_id(public_key: PublicKey) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def generate_keypair(
    folder: str | Path, algorithm: str = "ed25519", *, overwrite: bool = False
) -> tuple[Path, Path]:
    """Write ``folder/modeltrace.key`` (PEM PKCS#8, mode 0600) and ``folder/modeltrace.pub`` (PEM)."""
    if algorithm not in ALGORITHMS:
        raise UsageError(f"key algorithm {algorithm!r} is not one of {', '.join(ALGORITHMS)}")
    target = Path(folder).expanduser()
    target.mkdir(parents=True, exist_ok=True)
    private_path, public_path = target / PRIVATE_KEY_NAME, target / PUBLIC_KEY_NAME
    if not overwrite and (private_path.exists() or public_path.exists()):
        raise UsageError(f"'{private_path}' or '{public_path}' exists already; pass --force to replace them")
    private_key: PrivateKey = (
        ed25519.Ed25519PrivateKey.generate()
        if algorithm == "ed25519"
        else ec.generate_private_key(ec.SECP256R1())
    )
    private_pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # Create the private key file with mode 0600 from the start: never world-readable, not even briefly.
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    descriptor = os.open(private_path, flags, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(private_pem)
    os.chmod(private_path, 0o600)
    public_path.write_bytes(
        private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private_path, public_path


def load_private_key(path: str | Path) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).expanduser().read_bytes(), password=None)
    except OSError as error:
        raise UsageError(f"Cannot read private key '{path}': {error.strerror}") from error
    except (ValueError, TypeError) as error:
        # Never echo key material: the message names the file only.
        raise UsageError(f"'{path}' is not an unencrypted PEM private key") from error
    if isinstance(key, ec.EllipticCurvePrivateKey) and not isinstance(key.curve, ec.SECP256R1):
        raise UsageError(f"'{path}' is an ECDSA key on {key.curve.name}; only P-256 is supported")
    if not isinstance(key, (ed25519.Ed25519PrivateKey, ec.EllipticCurvePrivateKey)):
        raise UsageError(f"'{path}' is a {type(key).__name__}; use an Ed25519 or ECDSA P-256 key")
    return key


def load_public_key(path: str | Path) -> PublicKey:
    try:
        key = serialization.load_pem_public_key(Path(path).expanduser().read_bytes())
    except OSError as error:
        raise UsageError(f"Cannot read public key '{path}': {error.strerror}") from error
    except ValueError as error:
        raise UsageError(f"'{path}' is not a PEM public key") from error
    if not isinstance(key, (ed25519.Ed25519PublicKey, ec.EllipticCurvePublicKey)):
        raise UsageError(f"'{path}' is a {type(key).__name__}; use an Ed25519 or ECDSA P-256 key")
    return key


def statement_for(label: Label) -> dict[str, Any]:
    """The in-toto Statement whose subject is the model and whose predicate is the label."""
    digests = label["model"]["digests"]
    subject_digest = {"sha256": digests["oms_root"]}
    if digests.get("tensor_root"):
        subject_digest[TENSOR_DIGEST_KEY] = digests["tensor_root"]
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": label["model"]["name"], "digest": subject_digest}],
        "predicateType": PREDICATE_TYPE,
        "predicate": label,
    }


def statement_payload(label: Label) -> bytes:
    """The exact bytes every signature covers: the statement as compact, key-sorted UTF-8 JSON.

    Local-key (DSSE) and Sigstore signing both sign these bytes, so both kinds of signed label
    carry the same statement.
    """
    validate_label(label)
    payload = json.dumps(statement_for(label), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return payload.encode("utf-8")


def sign_label(label: Label, private_key: PrivateKey) -> dict[str, Any]:
    """The DSSE envelope of the label's statement, signed with ``private_key``."""
    payload_bytes = statement_payload(label)
    message = pae(PAYLOAD_TYPE, payload_bytes)
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        signature = private_key.sign(message)
    else:
        signature = private_key.sign(message, ec.ECDSA(hashes.SHA256()))
    return {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(payload_bytes).decode("ascii"),
        "signatures": [
            {"keyid": key_id(private_key.public_key()), "sig": base64.b64encode(signature).decode("ascii")}
        ],
    }


def _verify_one(public_key: PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        if isinstance(public_key, ed25519.Ed25519PublicKey):
            public_key.verify(signature, message)
        else:
            public_key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def open_envelope(envelope: Any, public_key: PublicKey) -> tuple[dict[str, Any], Label]:
    """Check the envelope's signature with ``public_key``; return (statement, label).

    Raises SignatureInvalidError when no signature verifies (tampered payload, wrong key) and
    LabelError when the envelope or statement is malformed.
    """
    if not isinstance(envelope, dict) or envelope.get("payloadType") != PAYLOAD_TYPE:
        raise LabelError(f"not a DSSE envelope with payloadType {PAYLOAD_TYPE!r}")
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        raise SignatureInvalidError("the envelope carries no signature")
    try:
        payload = base64.b64decode(envelope["payload"], validate=True)
    except (binascii.Error, TypeError, KeyError) as error:
        raise LabelError(f"the envelope payload is not base64 ({error})") from error
    message = pae(PAYLOAD_TYPE, payload)
    wanted_id = key_id(public_key)
    verified = False
    for entry in signatures:
        if not isinstance(entry, dict) or entry.get("keyid") not in (None, "", wanted_id):
            continue
        try:
            signature = base64.b64decode(entry.get("sig", ""), validate=True)
        except (binascii.Error, TypeError):
            continue
        if _verify_one(public_key, signature, message):
            verified = True
            break
    if not verified:
        raise SignatureInvalidError(
            f"no signature in the envelope verifies with the public key (keyid {wanted_id[:16]}...): "
            "the label was changed after signing, or it was signed with another key"
        )
    return parse_statement(payload)


def parse_statement(payload: bytes) -> tuple[dict[str, Any], Label]:
    """The statement and label inside a signed payload whose signature was already checked.

    Raises LabelError when the payload is not our in-toto Statement, the label fails the schema,
    or the statement's subject does not name the label's digests.
    """
    try:
        statement = json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise LabelError(f"the signed payload is not JSON ({error})") from error
    if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_TYPE:
        raise LabelError(f"the signed payload is not an in-toto Statement ({STATEMENT_TYPE})")
    if statement.get("predicateType") != PREDICATE_TYPE:
        raise LabelError(f"predicateType is {statement.get('predicateType')!r}, expected {PREDICATE_TYPE!r}")
    label = validate_label(statement.get("predicate"))
    subjects = statement.get("subject")
    if subjects != statement_for(label)["subject"]:
        raise LabelError("the statement's subject does not match the label's digests")
    return statement, label
