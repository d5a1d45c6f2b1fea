"""A fake Fulcio CA and the fake certificate-transparency (CT) log whose SCT it embeds.

Real Fulcio issues a 10-minute code-signing certificate for the key in a CSR, naming the OIDC
identity in the SAN and the OIDC issuer in Sigstore's extensions, and embeds a signed
certificate timestamp (SCT, RFC 6962) from its CT log. sigstore-python checks all of that on
signing (the SCT) and on verification (chain, SCT, key usage, SAN, issuer), so this fake does the
same with its own keys. No intermediate CA: the root signs leaves directly, which cryptography's
path builder accepts as a one-link chain.
"""

from __future__ import annotations

import hashlib
import struct
import time
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

# Sigstore's OIDC-issuer extensions: .1.1 holds the raw URL (legacy), .1.8 a DER UTF8String.
OIDC_ISSUER_OID = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
OIDC_ISSUER_V2_OID = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
CERT_LIFETIME = timedelta(minutes=10)


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    size = (length.bit_length() + 7) // 8
    return bytes([0x80 | size]) + length.to_bytes(size, "big")


def der_utf8_string(text: str) -> bytes:
    encoded = text.encode("utf-8")
    return b"\x0c" + _der_length(len(encoded)) + encoded


def _der_octet_string(data: bytes) -> bytes:
    return b"\x04" + _der_length(len(data)) + data


def spki_der(public_key: ec.EllipticCurvePublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def log_id(public_key: ec.EllipticCurvePublicKey) -> bytes:
    """RFC 6962 log id (also Sigstore's key id): SHA-256 of the DER SubjectPublicKeyInfo."""
    return hashlib.sha256(spki_der(public_key)).digest()


class CTLog:
    """Signs SCTs for precertificates (RFC 6962 section 3.2), never stores anything."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())

    def sct_extension(self, tbs_precertificate: bytes, issuer_key: ec.EllipticCurvePublicKey) -> bytes:
        """The DER value of the embedded-SCT-list extension for this TBS certificate."""
        # Whole seconds: sigstore rebuilds the millisecond timestamp from a float datetime, and
        # a value like ...123 ms can come back as ...122.9999 there; whole seconds are exact.
        timestamp_ms = int(time.time()) * 1000
        signed_data = (
            struct.pack("!BBQH", 0, 0, timestamp_ms, 1)  # v1, certificate_timestamp, time, precert_entry
            + log_id(issuer_key)  # issuer_key_hash
            + len(tbs_precertificate).to_bytes(3, "big")
            + tbs_precertificate
            + struct.pack("!H", 0)  # no CT extensions
        )
        signature = self.key.sign(signed_data, ec.ECDSA(hashes.SHA256()))
        sct = (
            struct.pack("!B", 0)
            + log_id(self.key.public_key())
            + struct.pack("!QH", timestamp_ms, 0)
            + struct.pack("!BBH", 4, 3, len(signature))  # sha256, ecdsa
            + signature
        )
        sct_list = struct.pack("!HH", len(sct) + 2, len(sct)) + sct
        return _der_octet_string(sct_list)


class FulcioCA:
    """A self-signed root that issues leaf certificates the way Fulcio does."""

    def __init__(self, name: str) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.ct_log = CTLog()
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "modeltrace tests"),
                x509.NameAttribute(NameOID.COMMON_NAME, name),
            ]
        )
        now = datetime.now(UTC).replace(microsecond=0)
        public_key = self.key.public_key()
        self.root = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False)
            .sign(self.key, hashes.SHA256())
        )

    def issue(self, public_key: ec.EllipticCurvePublicKey, *, identity: str, issuer: str) -> x509.Certificate:
        """A code-signing certificate for ``public_key`` naming ``identity`` (email or URI)."""
        general_name: x509.GeneralName = (
            x509.UniformResourceIdentifier(identity) if "://" in identity else x509.RFC822Name(identity)
        )
        now = datetime.now(UTC).replace(microsecond=0)
        serial = x509.random_serial_number()

        def build(extra: list[x509.ExtensionType]) -> x509.Certificate:
            builder = (
                x509.CertificateBuilder()
                .subject_name(x509.Name([]))  # Fulcio leaves have an empty subject...
                .issuer_name(self.root.subject)
                .public_key(public_key)
                .serial_number(serial)
                .not_valid_before(now)
                .not_valid_after(now + CERT_LIFETIME)
                .add_extension(_key_usage(), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
                .add_extension(
                    x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
                )
                # ...so the SAN, which carries the identity, is critical (RFC 5280 4.2.1.6).
                .add_extension(x509.SubjectAlternativeName([general_name]), critical=True)
                .add_extension(x509.UnrecognizedExtension(OIDC_ISSUER_OID, issuer.encode()), critical=False)
                .add_extension(
                    x509.UnrecognizedExtension(OIDC_ISSUER_V2_OID, der_utf8_string(issuer)), critical=False
                )
            )
            for extension in extra:
                builder = builder.add_extension(extension, critical=False)
            return builder.sign(self.key, hashes.SHA256())

        # The CT log signs the certificate without its SCT list (the "precertificate" TBS);
        # the final certificate is the same one with that list appended.
        precertificate = build([])
        sct_value = self.ct_log.sct_extension(precertificate.tbs_certificate_bytes, self.key.public_key())
        oid = ExtensionOID.PRECERT_SIGNED_CERTIFICATE_TIMESTAMPS
        certificate = build([x509.UnrecognizedExtension(oid, sct_value)])
        if certificate.tbs_precertificate_bytes != precertificate.tbs_certificate_bytes:
            raise RuntimeError("fake Fulcio bug: the SCT does not cover the issued certificate")
        return certificate


def _key_usage(*, cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )
