"""``modeltrace label sign --sigstore`` / ``verify --sigstore-identity`` end to end on the CLI.

Runs the real entry point (``modeltrace.cli.main``, as tests/label/test_cli_label.py does) so
that library errors become their documented exit codes, against the fake Sigstore of
fake_sigstore/ through ``--trust-config``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modeltrace.cli import main

pytest.importorskip("sigstore", reason="needs the modeltrace[sigstore] extra")

from tests.label.fake_sigstore import FAKE_ISSUER, FakeSigstore

ALICE = "alice@example.com"
# Environment variables through which sigstore-python finds an ambient CI identity.
AMBIENT_CREDENTIALS = ("GITHUB_ACTIONS", "GOOGLE_SERVICE_ACCOUNT_NAME", "BUILDKITE", "GITLAB_CI", "CIRCLECI")


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    return int(exit_info.value.code or 0), captured.out, captured.err


@pytest.fixture
def label_file(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    label = tmp_path / "label.json"
    code, _, _ = run(["label", "create", str(tiny_model), "-o", str(label), "--license", "MIT"], capsys)
    assert code == 0
    return label


@pytest.fixture
def no_ambient_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SIGSTORE_ID_TOKEN", raising=False)
    for name in AMBIENT_CREDENTIALS:
        monkeypatch.delenv(name, raising=False)


def test_sign_and_verify_keyless(
    fake_sigstore: tuple[FakeSigstore, Path],
    tiny_model: Path,
    label_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake, trust = fake_sigstore
    bundle = tmp_path / "label.sigstore.json"
    sign = ["label", "sign", str(label_file), "--sigstore", "--trust-config", str(trust), "-o", str(bundle)]
    code, out, err = run([*sign, "--identity-token", fake.token(ALICE)], capsys)
    assert code == 0, err
    assert "Sigstore bundle" in out and "Rekor log index" in out
    assert json.loads(bundle.read_text())["mediaType"].startswith("application/vnd.dev.sigstore.bundle")

    verify = ["label", "verify", str(tiny_model), str(bundle), "--trust-config", str(trust),
              "--sigstore-issuer", FAKE_ISSUER, "--sigstore-identity"]  # fmt: skip
    code, out, err = run([*verify, ALICE], capsys)
    assert code == 0, err
    assert "OK" in out and ALICE in out

    code, out, _ = run([*verify, ALICE, "--json"], capsys)
    result = json.loads(out)
    assert code == 0 and result["ok"] is True
    assert result["signature"]["sigstore"]["identity"] == ALICE

    code, _, err = run([*verify, "mallory@example.com"], capsys)
    assert code == 2 and "SANs" in err

    (tiny_model / "config.json").write_text('{"model_type": "tampered"}')
    code, _, err = run([*verify, ALICE], capsys)
    assert code == 2 and "file changed: config.json" in err

    # `label show` and `license check` read the label inside the bundle (signature not checked).
    code, out, _ = run(["label", "show", str(bundle), "--json"], capsys)
    assert code == 0 and json.loads(out)["model"] == "tiny"
    check = ["license", "check", str(bundle), "--use", "commercial", "--distribution", "hosted", "--json"]
    code, out, _ = run(check, capsys)
    assert code in (0, 1) and "MIT" in out


def test_the_token_comes_from_sigstore_id_token(
    fake_sigstore: tuple[FakeSigstore, Path],
    label_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake, trust = fake_sigstore
    monkeypatch.setenv("SIGSTORE_ID_TOKEN", fake.token("ci@example.com"))
    bundle = tmp_path / "b.json"
    code, _, err = run(
        ["label", "sign", str(label_file), "--sigstore", "--trust-config", str(trust), "-o", str(bundle)],
        capsys,
    )
    assert code == 0, err
    certificate_holder = json.loads(bundle.read_text())["verificationMaterial"]["certificate"]
    assert certificate_holder["rawBytes"]


def test_without_a_token_signing_says_how_to_give_one(
    fake_sigstore: tuple[FakeSigstore, Path],
    label_file: Path,
    tmp_path: Path,
    no_ambient_identity: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, trust = fake_sigstore
    bundle = tmp_path / "b.json"
    code, _, err = run(
        ["label", "sign", str(label_file), "--sigstore", "--trust-config", str(trust), "-o", str(bundle)],
        capsys,
    )
    assert code == 2 and "SIGSTORE_ID_TOKEN" in err and not bundle.exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--key", "k.pem", "--sigstore"], "exclude each other"),
        ([], "--sigstore"),
        (["--key", "k.pem", "--staging"], "go with --sigstore"),
    ],
)
def test_sign_flag_mistakes_are_usage_errors(
    label_file: Path, extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["label", "sign", str(label_file), "-o", "out.json", *extra], capsys)
    assert code == 2 and message in err


def test_verify_flag_mistakes_are_usage_errors(
    tiny_model: Path, label_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = tmp_path / "keys"
    run(["label", "keygen", str(keys)], capsys)
    signed = tmp_path / "signed.json"
    run(["label", "sign", str(label_file), "--key", str(keys / "modeltrace.key"), "-o", str(signed)], capsys)
    base = ["label", "verify", str(tiny_model), str(signed)]
    pubkey = ["--pubkey", str(keys / "modeltrace.pub")]
    cases = [
        ([], "Give --pubkey"),
        ([*pubkey, "--sigstore-identity", ALICE, "--sigstore-issuer", FAKE_ISSUER], "exclude each other"),
        (["--sigstore-identity", ALICE], "both --sigstore-identity and --sigstore-issuer"),
        ([*pubkey, "--offline"], "not --pubkey"),
        (["--sigstore-identity", ALICE, "--sigstore-issuer", FAKE_ISSUER, "--offline"], "--pubkey KEY"),
    ]
    for extra, message in cases:
        code, _, err = run([*base, *extra], capsys)
        assert code == 2, extra
        assert message in " ".join(err.split()), (extra, err)
    code, out, _ = run([*base, *pubkey], capsys)  # the key path itself still works as before
    assert code == 0 and "OK" in out


def test_a_bundle_given_with_a_missing_pubkey_names_the_real_mistake(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "b.sigstore.json"
    bundle.write_text(json.dumps({"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}))
    code, _, err = run(["label", "verify", str(tiny_model), str(bundle), "--pubkey", "missing.pub"], capsys)
    assert code == 2 and "is a Sigstore bundle" in " ".join(err.split())
