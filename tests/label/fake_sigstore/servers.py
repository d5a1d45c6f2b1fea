"""A local, fake Sigstore: OIDC issuer, Fulcio and Rekor v1 on 127.0.0.1, with their own keys.

``FakeSigstore`` starts two real HTTP servers (Fulcio, Rekor) that sigstore-python reaches
through its ordinary ``requests`` clients, mints identity tokens, and writes the
``ClientTrustConfig`` JSON (trusted root + signing config) that points sigstore-python at them.
Nothing here leaves the machine; nothing in sigstore-python is patched.

Not faked, because sigstore-python does not need it for this path: a timestamp authority
(Rekor v1's signed entry timestamp is the signed time) and TUF (the trust config is a file).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .ca import FulcioCA, log_id, spki_der
from .rekor import RekorError, TransparencyLog

FAKE_ISSUER = "https://oidc.fake-sigstore.test"
TOKEN_AUDIENCE = "sigstore"  # the audience sigstore-python requires
Route = Callable[[bytes, dict[str, str]], tuple[int, dict[str, Any]]]


class _Server:
    """One HTTP service on 127.0.0.1 (free port) answering JSON POSTs by path, in a thread."""

    def __init__(self, routes: dict[str, Route]) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                route = routes.get(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if route is None:
                    status, answer = 404, {"code": 404, "message": f"no route {self.path}"}
                else:
                    status, answer = route(body, {key.lower(): value for key, value in self.headers.items()})
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.requests = 0
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class FakeSigstore:
    """Fake OIDC issuer + Fulcio (with CT log) + Rekor, each with fresh keys."""

    def __init__(self, name: str = "fake-sigstore") -> None:
        self.issuer = FAKE_ISSUER
        self.oidc_key = ec.generate_private_key(ec.SECP256R1())  # the fake identity provider's key
        self.ca = FulcioCA(f"{name} root")
        self.log = TransparencyLog(f"{name}-rekor.local")
        self.fulcio = _Server({"/api/v2/signingCert": self._signing_cert})
        self.rekor = _Server({"/api/v1/log/entries": self._log_entry})

    def __enter__(self) -> FakeSigstore:
        self.fulcio.start()
        self.rekor.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.fulcio.stop()
        self.rekor.stop()

    # --- identity provider ---------------------------------------------------------------------

    def token(self, email: str, *, lifetime: int = 600, audience: str = TOKEN_AUDIENCE) -> str:
        """An OIDC ID token for ``email``, signed by the fake identity provider (ES256)."""
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": email,
            "email": email,
            "email_verified": True,
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
        }
        return jwt.encode(claims, self.oidc_key, algorithm="ES256")

    # --- Fulcio --------------------------------------------------------------------------------

    def _signing_cert(self, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """POST /api/v2/signingCert: check the token and the CSR, issue a certificate."""
        self.fulcio.requests += 1
        token = headers.get("authorization", "").removeprefix("Bearer ")
        try:
            # sigstore-python only forwards the token; checking its signature is Fulcio's job.
            claims = jwt.decode(
                token,
                self.oidc_key.public_key(),
                algorithms=["ES256"],
                audience=TOKEN_AUDIENCE,
                issuer=self.issuer,
            )
        except jwt.PyJWTError as error:
            return 401, {"code": 401, "message": f"invalid identity token: {error}"}
        try:
            csr_pem = base64.b64decode(json.loads(body)["certificateSigningRequest"])
            csr = x509.load_pem_x509_csr(csr_pem)
        except (KeyError, ValueError) as error:
            return 400, {"code": 400, "message": f"bad certificate request: {error}"}
        public_key = csr.public_key()
        # Proof of possession: the CSR must be signed by the key to certify.
        if not csr.is_signature_valid or not isinstance(public_key, ec.EllipticCurvePublicKey):
            return 400, {"code": 400, "message": "the CSR signature does not verify"}
        certificate = self.ca.issue(
            public_key, identity=claims.get("email") or claims["sub"], issuer=self.issuer
        )
        chain = [
            cert.public_bytes(serialization.Encoding.PEM).decode() for cert in (certificate, self.ca.root)
        ]
        return 201, {"signedCertificateEmbeddedSct": {"chain": {"certificates": chain}}}

    # --- Rekor ---------------------------------------------------------------------------------

    def _log_entry(self, body: bytes, _headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """POST /api/v1/log/entries: integrate a proposed entry."""
        self.rekor.requests += 1
        try:
            return 201, self.log.add_dsse(json.loads(body))
        except (RekorError, json.JSONDecodeError) as error:
            return 400, {"code": 400, "message": str(error)}

    # --- client configuration ------------------------------------------------------------------

    def trust_config(self) -> dict[str, Any]:
        """The ClientTrustConfig JSON: trust these keys, send requests to these servers."""
        start = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")

        def log_instance(url: str, key: ec.EllipticCurvePublicKey) -> dict[str, Any]:
            return {
                "baseUrl": url,
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": base64.b64encode(spki_der(key)).decode(),
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": {"start": start},
                },
                "logId": {"keyId": base64.b64encode(log_id(key)).decode()},
            }

        def service(url: str) -> dict[str, Any]:
            return {"url": url, "majorApiVersion": 1, "validFor": {"start": start}, "operator": "fake"}

        root_der = self.ca.root.public_bytes(serialization.Encoding.DER)
        return {
            "mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
            "trustedRoot": {
                "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
                "tlogs": [log_instance(self.rekor.url, self.log.key.public_key())],
                "certificateAuthorities": [
                    {
                        "subject": {"organization": "modeltrace tests", "commonName": "fake fulcio"},
                        "uri": self.fulcio.url,
                        "certChain": {"certificates": [{"rawBytes": base64.b64encode(root_der).decode()}]},
                        "validFor": {"start": start},
                    }
                ],
                "ctlogs": [log_instance("http://127.0.0.1/ct", self.ca.ct_log.key.public_key())],
                "timestampAuthorities": [],
            },
            "signingConfig": {
                "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
                "caUrls": [service(self.fulcio.url)],
                "oidcUrls": [service(self.issuer)],
                "rekorTlogUrls": [service(self.rekor.url)],
                "tsaUrls": [],
                "rekorTlogConfig": {"selector": "ANY"},
                "tsaConfig": {"selector": "ANY"},
            },
        }

    def write_trust_config(self, path: Path) -> Path:
        path.write_text(json.dumps(self.trust_config(), indent=2), encoding="utf-8")
        return path
