"""A fake Rekor v1 transparency log that accepts ``dsse`` entries.

What sigstore-python 4.x checks in a Rekor v1 entry, and what this log therefore produces:

* ``body``: the canonical (RFC 8785) JSON of the stored dsse/0.0.1 entry, i.e. the payload hash
  and the signature + certificate; the verifier compares both with the bundle;
* an RFC 6962 Merkle inclusion proof of ``body`` in the tree, and a checkpoint (a signed note,
  https://github.com/transparency-dev/formats/blob/main/log/README.md) naming the tree root;
* the signed entry timestamp (SET): the log's signature over body, integrated time, log id and
  index. It is the signed time at which the certificate must have been valid.

Like real Rekor, the log refuses an envelope whose signature the certificate's key does not verify.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from typing import Any

import rfc8785
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from .ca import log_id


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(size: int) -> int:
    """The largest power of two smaller than ``size`` (RFC 6962 section 2.1)."""
    return 1 << ((size - 1).bit_length() - 1)


def tree_hash(leaves: list[bytes]) -> bytes:
    """MTH(D[n]) over leaf hashes."""
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return _node_hash(tree_hash(leaves[:k]), tree_hash(leaves[k:]))


def inclusion_path(index: int, leaves: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]): sibling hashes from the leaf up to the root."""
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return [*inclusion_path(index, leaves[:k]), tree_hash(leaves[k:])]
    return [*inclusion_path(index - k, leaves[k:]), tree_hash(leaves[:k])]


def _pae(payload_type: str, payload: bytes) -> bytes:
    return b"DSSEv1 %d %s %d %s" % (len(payload_type), payload_type.encode(), len(payload), payload)


class RekorError(ValueError):
    """The proposed entry is refused (HTTP 400, as real Rekor answers)."""


class TransparencyLog:
    """An append-only log with one signing key; ``origin`` names it in checkpoints."""

    def __init__(self, origin: str = "fake-rekor.local", *, prefill: int = 5) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.origin = origin
        self.log_id = log_id(self.key.public_key())
        self._leaves: list[bytes] = []
        self._lock = threading.Lock()
        # Unrelated earlier entries, so inclusion proofs have real sibling hashes to check.
        for number in range(prefill):
            self._leaves.append(leaf_hash(b"earlier entry %d" % number))

    def _sign(self, data: bytes) -> bytes:
        return self.key.sign(data, ec.ECDSA(hashes.SHA256()))

    def _checkpoint(self, size: int, root: bytes) -> str:
        note = f"{self.origin} - 1\n{size}\n{base64.b64encode(root).decode()}\n"
        # Signature line: em dash, signer name, base64(4-byte key hint + signature).
        signature = base64.b64encode(self.log_id[:4] + self._sign(note.encode())).decode()
        return f"{note}\n\u2014 {self.origin} {signature}\n"

    def add_dsse(self, proposed: dict[str, Any]) -> dict[str, Any]:
        """Store a proposed dsse entry; return the Rekor v1 API response (``{uuid: entry}``)."""
        try:
            content = proposed["spec"]["proposedContent"]
            envelope = json.loads(content["envelope"])
            verifier_b64 = content["verifiers"][0]
            certificate = x509.load_pem_x509_certificate(base64.b64decode(verifier_b64))
            payload = base64.b64decode(envelope["payload"])
            signature_b64 = envelope["signatures"][0]["sig"]
        except (KeyError, IndexError, TypeError, ValueError) as error:
            raise RekorError(f"malformed dsse entry: {error!r}") from error
        if proposed.get("kind") != "dsse":
            raise RekorError(f"this fake log takes dsse entries only, not {proposed.get('kind')!r}")
        public_key = certificate.public_key()
        if not isinstance(public_key, ec.EllipticCurvePublicKey):
            raise RekorError("the verifier is not an ECDSA certificate")
        try:
            public_key.verify(
                base64.b64decode(signature_b64),
                _pae(envelope["payloadType"], payload),
                ec.ECDSA(hashes.SHA256()),
            )
        except InvalidSignature as error:
            raise RekorError("the envelope signature does not verify with the certificate") from error
        body = rfc8785.dumps(
            {
                "apiVersion": "0.0.1",
                "kind": "dsse",
                "spec": {
                    "envelopeHash": {
                        "algorithm": "sha256",
                        "value": hashlib.sha256(rfc8785.dumps(envelope)).hexdigest(),
                    },
                    "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()},
                    "signatures": [{"signature": signature_b64, "verifier": verifier_b64}],
                },
            }
        )
        with self._lock:
            index = len(self._leaves)
            self._leaves.append(leaf_hash(body))
            leaves = list(self._leaves)
        root = tree_hash(leaves)
        body_b64 = base64.b64encode(body).decode()
        integrated_time = int(time.time())
        entry_timestamp = rfc8785.dumps(
            {
                "body": body_b64,
                "integratedTime": integrated_time,
                "logID": self.log_id.hex(),
                "logIndex": index,
            }
        )
        entry = {
            "body": body_b64,
            "integratedTime": integrated_time,
            "logID": self.log_id.hex(),
            "logIndex": index,
            "verification": {
                "inclusionProof": {
                    "logIndex": index,
                    "treeSize": len(leaves),
                    "rootHash": root.hex(),
                    "hashes": [sibling.hex() for sibling in inclusion_path(index, leaves)],
                    "checkpoint": self._checkpoint(len(leaves), root),
                },
                "signedEntryTimestamp": base64.b64encode(self._sign(entry_timestamp)).decode(),
            },
        }
        return {leaf_hash(body).hex(): entry}
