"""Sigstore keyless labels, signed and verified for real through sigstore-python.

The Sigstore services are the local fake in fake_sigstore/ (own CA, CT log, Rekor, OIDC keys;
see its docstrings for what is and is not modelled). What these tests prove: our code drives
sigstore-python's signing flow and its full bundle verification (chain, SCT, identity policy,
inclusion proof, checkpoint, SET, DSSE signature) and then runs the same model checks as the
key path. What they cannot prove: that Sigstore's production services behave like the fake.
"""

from __future__ import annotations

import base64
import copy
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from modeltrace import api
from modeltrace.errors import LabelError, SignatureInvalidError, UsageError
from modeltrace.label import signing, sigstore_signing

pytest.importorskip("sigstore", reason="needs the modeltrace[sigstore] extra")

from tests.label.fake_sigstore import FAKE_ISSUER, FakeSigstore

ALICE = "alice@example.com"
Setup = tuple[Path, Path, dict[str, Any], Path, Path]


@pytest.fixture(scope="module")
def signed_bundle(
    fake_sigstore: tuple[FakeSigstore, Path],
    tmp_path_factory: pytest.TempPathFactory,
    make_model: Callable[[Path], Path],
) -> Setup:
    """(model, bundle path, label, trust config, key-signed envelope) made once per module."""
    fake, trust = fake_sigstore
    root = tmp_path_factory.mktemp("keyless")
    model = make_model(root / "model")
    label = api.label_create(model, license="MIT")
    bundle = api.label_sign_sigstore(label, identity_token=fake.token(ALICE), trust_config=trust)
    bundle_path = root / "label.sigstore.json"
    bundle_path.write_text(json.dumps(bundle))
    private_key, _public_key = api.label_keygen(root / "keys")
    envelope_path = root / "label.signed.json"
    envelope_path.write_text(json.dumps(api.label_sign(label, private_key)))
    return model, bundle_path, label, trust, envelope_path


@pytest.fixture(scope="module")
def label_file(tmp_path_factory: pytest.TempPathFactory, make_model: Callable[[Path], Path]) -> Path:
    folder = tmp_path_factory.mktemp("unsigned")
    return api.label_write(api.label_create(make_model(folder / "m"), license="MIT"), folder / "label.json")


def _verify(model: Path, bundle: Path, trust: Path, **overrides: str) -> api.VerifyReport:
    options = {"identity": ALICE, "issuer": FAKE_ISSUER, **overrides}
    return api.label_verify_sigstore(model, bundle, trust_config=trust, **options)


def test_sign_then_verify_names_the_signer_and_checks_every_file(signed_bundle: Setup) -> None:
    model, bundle_path, label, trust, _ = signed_bundle
    report = _verify(model, bundle_path, trust)
    assert report.ok and report.changes == [] and report.problems == []
    assert report.actual["oms_root"] == label["model"]["digests"]["oms_root"]
    signature = report.as_dict()["signature"]
    assert signature["valid"] is True and len(signature["keyid"]) == 64
    assert signature["sigstore"]["identity"] == ALICE
    assert signature["sigstore"]["issuer"] == FAKE_ISSUER
    # The fake log holds 5 earlier entries, so ours is at index 5 or later, with a real proof.
    assert signature["sigstore"]["rekor_log_index"] >= 5


def test_the_bundle_signs_the_same_statement_bytes_as_a_local_key(signed_bundle: Setup) -> None:
    _, bundle_path, label, _, envelope_path = signed_bundle
    bundle = json.loads(bundle_path.read_text())
    assert bundle["mediaType"].startswith("application/vnd.dev.sigstore.bundle")
    payload = base64.b64decode(bundle["dsseEnvelope"]["payload"])
    key_signed = base64.b64decode(json.loads(envelope_path.read_text())["payload"])
    assert payload == signing.statement_payload(label) == key_signed
    statement = json.loads(payload)
    assert statement["subject"][0]["digest"] == {
        "sha256": label["model"]["digests"]["oms_root"],
        signing.TENSOR_DIGEST_KEY: label["model"]["digests"]["tensor_root"],
    }


def test_the_signing_flow_really_used_fulcio_and_rekor(
    fake_sigstore: tuple[FakeSigstore, Path], label_file: Path
) -> None:
    fake, trust = fake_sigstore
    label = api.label_read(label_file)
    before = (fake.fulcio.requests, fake.rekor.requests)
    api.label_sign_sigstore(label, identity_token=fake.token("bob@example.com"), trust_config=trust)
    assert (fake.fulcio.requests, fake.rekor.requests) == (before[0] + 1, before[1] + 1)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"identity": "mallory@example.com"}, "SANs do not match"),
        ({"issuer": "https://accounts.google.com"}, "OIDCIssuer does not match"),
    ],
)
def test_another_identity_or_issuer_is_refused(
    signed_bundle: Setup, overrides: dict[str, str], reason: str
) -> None:
    model, bundle_path, _, trust, _ = signed_bundle
    with pytest.raises(SignatureInvalidError, match=reason):
        _verify(model, bundle_path, trust, **overrides)


def _flip_payload(bundle: dict[str, Any]) -> None:
    payload = bytearray(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    at = payload.index(b'"MIT"') + 1
    payload[at] = ord("Z")  # still valid JSON, a different licence
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(bytes(payload)).decode()


def _flip_signature(bundle: dict[str, Any]) -> None:
    signature = bytearray(base64.b64decode(bundle["dsseEnvelope"]["signatures"][0]["sig"]))
    signature[-1] ^= 0x01
    bundle["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(signature)).decode()


def _move_log_index(bundle: dict[str, Any]) -> None:
    entry = bundle["verificationMaterial"]["tlogEntries"][0]
    entry["logIndex"] = str(int(entry["logIndex"]) + 1)


def _rewrite_integrated_time(bundle: dict[str, Any]) -> None:
    entry = bundle["verificationMaterial"]["tlogEntries"][0]
    entry["integratedTime"] = str(int(entry["integratedTime"]) + 1)


def _bend_inclusion_proof(bundle: dict[str, Any]) -> None:
    hashes = bundle["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["hashes"]
    first = bytearray(base64.b64decode(hashes[0]))
    first[0] ^= 0x01
    hashes[0] = base64.b64encode(bytes(first)).decode()


@pytest.mark.parametrize(
    "tamper",
    [_flip_payload, _flip_signature, _move_log_index, _rewrite_integrated_time, _bend_inclusion_proof],
    ids=["payload", "signature", "log-index", "integrated-time", "inclusion-proof"],
)
def test_a_tampered_bundle_fails(
    signed_bundle: Setup, tmp_path: Path, tamper: Callable[[dict[str, Any]], None]
) -> None:
    model, bundle_path, _, trust, _ = signed_bundle
    bundle = json.loads(bundle_path.read_text())
    tamper(bundle)
    tampered = tmp_path / "tampered.sigstore.json"
    tampered.write_text(json.dumps(bundle))
    with pytest.raises(SignatureInvalidError):
        _verify(model, tampered, trust)


def test_a_changed_model_file_is_named_as_by_the_key_path(signed_bundle: Setup, tmp_path: Path) -> None:
    model, bundle_path, _, trust, envelope_path = signed_bundle
    changed = tmp_path / "model"
    shutil.copytree(model, changed)
    (changed / "config.json").write_text('{"model_type": "tampered"}')
    report = _verify(changed, bundle_path, trust)
    key_report = api.label_verify(changed, envelope_path, envelope_path.parent / "keys" / "modeltrace.pub")
    assert not report.ok
    assert [str(change) for change in report.changes] == ["file changed: config.json"]
    assert report.as_dict()["changes"] == key_report.as_dict()["changes"]


def test_a_bundle_from_another_sigstore_is_not_trusted(signed_bundle: Setup, tmp_path: Path) -> None:
    model, bundle_path, _, _, _ = signed_bundle
    with FakeSigstore("other") as other:  # same issuer URL and identity, different keys
        other_trust = other.write_trust_config(tmp_path / "other.json")
    with pytest.raises(SignatureInvalidError):
        _verify(model, bundle_path, other_trust)


def test_a_fake_bundle_does_not_verify_against_sigstore_production(
    signed_bundle: Setup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default trust root is Sigstore's own (offline: sigstore-python's built-in copy)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # sigstore's TUF cache
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    model, bundle_path, _, _, _ = signed_bundle
    with pytest.raises(SignatureInvalidError):
        api.label_verify_sigstore(model, bundle_path, identity=ALICE, issuer=FAKE_ISSUER, offline=True)


def test_each_verify_refuses_the_other_kind_of_signed_file(signed_bundle: Setup) -> None:
    model, bundle_path, _, trust, envelope_path = signed_bundle
    with pytest.raises(UsageError, match="Sigstore bundle"):
        api.label_verify(model, bundle_path, envelope_path.parent / "keys" / "modeltrace.pub")
    with pytest.raises(UsageError, match="--pubkey"):
        _verify(model, envelope_path, trust)


def test_a_token_from_another_identity_provider_is_refused_by_fulcio(
    fake_sigstore: tuple[FakeSigstore, Path], label_file: Path
) -> None:
    _, trust = fake_sigstore
    label = api.label_read(label_file)
    with FakeSigstore("stranger") as stranger:  # its identity provider signs the token
        token = stranger.token(ALICE)
    with pytest.raises(LabelError, match="401"):  # Fulcio checks the token's signature
        api.label_sign_sigstore(label, identity_token=token, trust_config=trust)


def test_an_expired_token_is_a_usage_error(
    fake_sigstore: tuple[FakeSigstore, Path], label_file: Path
) -> None:
    fake, trust = fake_sigstore
    label = api.label_read(label_file)
    with pytest.raises(UsageError, match="not usable"):
        api.label_sign_sigstore(label, identity_token=fake.token(ALICE, lifetime=-60), trust_config=trust)


def test_show_and_license_check_read_the_label_inside_a_bundle(signed_bundle: Setup) -> None:
    _, bundle_path, label, _, _ = signed_bundle
    assert api.label_read(bundle_path) == label
    report = api.check_license(bundle_path)
    assert "MIT" in json.dumps(report.as_dict())


def test_a_trust_config_that_is_not_one_is_a_usage_error(signed_bundle: Setup, tmp_path: Path) -> None:
    model, bundle_path, _, trust, _ = signed_bundle
    bad = tmp_path / "bad.json"
    bad.write_text('{"mediaType": "something else"}')
    with pytest.raises(UsageError, match="ClientTrustConfig"):
        _verify(model, bundle_path, bad)
    with pytest.raises(UsageError, match="exclude each other"):
        api.label_verify_sigstore(
            model, bundle_path, identity=ALICE, issuer=FAKE_ISSUER, trust_config=trust, staging=True
        )


def test_without_the_extra_sigstore_asks_for_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sigstore", None)  # what `import sigstore` sees when absent
    with pytest.raises(UsageError, match=r"modeltrace\[sigstore\]"):
        sigstore_signing.require_sigstore()


def test_the_key_path_is_unchanged_by_the_refactor(tmp_path: Path, tiny_model: Path) -> None:
    """A key-signed envelope is still the DSSE of the compact, key-sorted statement."""
    label = api.label_create(tiny_model)
    private_key, _ = api.label_keygen(tmp_path / "k")
    envelope = api.label_sign(label, private_key)
    expected = json.dumps(signing.statement_for(copy.deepcopy(label)), sort_keys=True, separators=(",", ":"))
    assert base64.b64decode(envelope["payload"]) == expected.encode("utf-8")
    assert set(envelope) == {"payloadType", "payload", "signatures"}
