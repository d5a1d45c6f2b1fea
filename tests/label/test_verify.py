"""Signed labels: keys, DSSE signatures, and verification naming every changed file and tensor."""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modeltrace import api
from modeltrace.errors import SignatureInvalidError, UsageError
from modeltrace.label import signing


@pytest.fixture(scope="module")
def signed_setup(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A model, its signed label and the key pair, made once (tests copy the model to change it)."""
    from safetensors.numpy import save_file

    root = tmp_path_factory.mktemp("signed")
    model = root / "model"
    (model / "sub").mkdir(parents=True)
    import numpy as np

    generator = np.random.default_rng(3)
    save_file(
        {
            "a.weight": generator.standard_normal((8, 4)).astype(np.float32),
            "b.bias": np.arange(4, dtype=np.int32),
        },
        str(model / "model.safetensors"),
    )
    (model / "config.json").write_text(json.dumps({"model_type": "tiny"}))
    (model / "sub" / "notes.txt").write_text("tokenizer notes")
    (model / "empty.txt").write_bytes(b"")
    private_key, public_key = api.label_keygen(root / "keys")
    label = api.label_create(model, license="MIT")
    signed = root / "signed.json"
    signed.write_text(json.dumps(api.label_sign(label, private_key)))
    return model, signed, public_key


def test_keygen_writes_private_key_readable_by_owner_only(tmp_path: Path) -> None:
    private_key, public_key = api.label_keygen(tmp_path / "k", algorithm="ecdsa-p256")
    assert stat.S_IMODE(private_key.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in private_key.read_bytes() and b"PUBLIC KEY" in public_key.read_bytes()
    with pytest.raises(UsageError):
        api.label_keygen(tmp_path / "k")  # never overwrites a key silently


@pytest.mark.parametrize("algorithm", signing.ALGORITHMS)
def test_sign_and_verify_round_trip_with_each_algorithm(
    tmp_path: Path, tiny_model: Path, algorithm: str
) -> None:
    private_key, public_key = api.label_keygen(tmp_path / "keys", algorithm=algorithm)
    envelope = api.label_sign(api.label_create(tiny_model), private_key)
    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["subject"][0]["digest"]["sha256"] == api.digest(tiny_model).oms_root
    signed = tmp_path / "signed.json"
    signed.write_text(json.dumps(envelope))
    report = api.label_verify(tiny_model, signed, public_key)
    assert report.ok, report.as_dict()


def test_tampered_payload_and_wrong_key_are_rejected(tmp_path: Path, signed_setup) -> None:  # type: ignore[no-untyped-def]
    model, signed, public_key = signed_setup
    envelope = json.loads(signed.read_text())
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["predicate"]["license"]["id"] = "Apache-2.0"
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(envelope))
    with pytest.raises(SignatureInvalidError):
        api.label_verify(model, tampered, public_key)
    _, other_public = api.label_keygen(tmp_path / "other")
    with pytest.raises(SignatureInvalidError):
        api.label_verify(model, signed, other_public)


def test_untouched_model_verifies_and_signed_label_inside_folder_is_ignored(
    tmp_path: Path, signed_setup
) -> None:  # type: ignore[no-untyped-def]
    model, signed, public_key = signed_setup
    assert api.label_verify(model, signed, public_key).ok
    copy = tmp_path / "copy"
    shutil.copytree(model, copy)
    shutil.copy(signed, copy / "model.sig.json")
    assert api.label_verify(copy, copy / "model.sig.json", public_key).ok


MUTATIONS = ("flip", "rename", "add", "delete")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutation=st.sampled_from(MUTATIONS), pick=st.integers(min_value=0, max_value=10**6), data=st.data())
def test_any_single_change_fails_verification_naming_it(
    tmp_path_factory: pytest.TempPathFactory, signed_setup, mutation: str, pick: int, data: st.DataObject
) -> None:  # type: ignore[no-untyped-def]
    model, signed, public_key = signed_setup
    copy = tmp_path_factory.mktemp("mutated") / "model"
    shutil.copytree(model, copy)
    files = sorted(p.relative_to(copy).as_posix() for p in copy.rglob("*") if p.is_file())
    target = files[pick % len(files)]
    expected: set[str] = set()
    if mutation == "flip":
        path = copy / target
        size = path.stat().st_size
        if size == 0:  # nothing to flip in an empty file: append a byte instead
            path.write_bytes(b"\0")
        else:
            offset = data.draw(st.integers(min_value=0, max_value=size - 1), label="offset")
            bit = data.draw(st.integers(min_value=0, max_value=7), label="bit")
            raw = bytearray(path.read_bytes())
            raw[offset] ^= 1 << bit
            path.write_bytes(bytes(raw))
        expected = {f"file changed: {target}"}
    elif mutation == "rename":
        os.rename(copy / target, copy / (target + ".renamed"))
        expected = {f"file removed: {target}", f"file added: {target}.renamed"}
    elif mutation == "add":
        (copy / "extra.bin").write_bytes(b"\x00" * (pick % 7))
        expected = {"file added: extra.bin"}
    else:
        (copy / target).unlink()
        expected = {f"file removed: {target}"}
    report = api.label_verify(copy, signed, public_key)
    assert not report.ok
    assert expected <= {str(change) for change in report.changes}
    if target == "model.safetensors" and mutation in ("rename", "delete"):
        # The weights are gone: the report says no tensor could be checked (it never crashes).
        assert report.problems


def test_changed_tensor_is_named(tmp_path: Path, signed_setup) -> None:  # type: ignore[no-untyped-def]
    model, signed, public_key = signed_setup
    copy = tmp_path / "model"
    shutil.copytree(model, copy)
    path = copy / "model.safetensors"
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0xFF  # the last byte belongs to the last tensor in the data buffer
    path.write_bytes(bytes(raw))
    report = api.label_verify(copy, signed, public_key)
    names = {str(change) for change in report.changes}
    assert "file changed: model.safetensors" in names
    assert any(name.startswith("tensor changed: ") for name in names)


def test_corrupt_header_fails_cleanly_naming_the_file(tmp_path: Path, signed_setup) -> None:  # type: ignore[no-untyped-def]
    model, signed, public_key = signed_setup
    copy = tmp_path / "model"
    shutil.copytree(model, copy)
    path = copy / "model.safetensors"
    raw = bytearray(path.read_bytes())
    raw[0:8] = (10**15).to_bytes(8, "little")  # header length far beyond the file
    path.write_bytes(bytes(raw))
    report = api.label_verify(copy, signed, public_key)
    assert "file changed: model.safetensors" in {str(change) for change in report.changes}
    assert report.problems and "model.safetensors" in report.problems[0]


@pytest.mark.parametrize(("declared_base", "holds"), [("tiny-llama", True), ("tiny-moe", False)])
def test_verify_lineage_checks_the_declared_base_against_the_weights(
    tmp_path: Path, declared_base: str, holds: bool
) -> None:
    # tiny-llama-chat really is a fine-tune of tiny-llama; tiny-moe is independently generated.
    zoo = api.build_demo_zoo(tmp_path / "home")
    model = zoo / "tiny-llama-chat"
    label = api.label_create(
        model, bases=[str(zoo / declared_base)], relation="finetune", license="apache-2.0"
    )
    private_key, public_key = api.label_keygen(tmp_path / "keys")
    signed = tmp_path / "signed.json"
    signed.write_text(json.dumps(api.label_sign(label, private_key)), encoding="utf-8")
    report = api.label_verify(model, signed, public_key, lineage=True)
    assert report.lineage[0]["checked"] is True
    assert report.ok is holds
    if not holds:
        assert any(declared_base in problem for problem in report.problems)


@pytest.mark.parametrize(("model_name", "holds"), [("tiny-llama-chat", False), ("tiny-moe", True)])
def test_verify_lineage_tests_a_from_scratch_claim_against_known_bases(
    tmp_path: Path, model_name: str, holds: bool
) -> None:
    # tiny-llama-chat is a fine-tune of tiny-llama, so "from scratch" is false for it; tiny-moe is
    # independently generated, so the same claim holds against the same known models.
    zoo = api.build_demo_zoo(tmp_path / "home")
    known = tmp_path / "known"
    known.mkdir()
    (known / "tiny-llama").symlink_to(zoo / "tiny-llama", target_is_directory=True)
    model = zoo / model_name
    label = api.label_create(model, from_scratch=True, license="apache-2.0", prefill=False)
    private_key, public_key = api.label_keygen(tmp_path / "keys")
    signed = tmp_path / "signed.json"
    signed.write_text(json.dumps(api.label_sign(label, private_key)), encoding="utf-8")
    report = api.label_verify(model, signed, public_key, lineage=True, known_bases=known)
    assert report.ok is holds
    if not holds:
        assert any("tiny-llama" in problem and "from scratch" in problem for problem in report.problems)
