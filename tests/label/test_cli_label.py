"""The documented command-line interface, end to end: digest, create, keygen, sign, verify, export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modeltrace.cli import main


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    return int(exit_info.value.code or 0), captured.out, captured.err


def test_full_cycle(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["digest", str(tiny_model), "--json"], capsys)
    assert code == 0
    digests = json.loads(out)
    assert set(digests) >= {"oms_root", "tensor_root"}

    label = tmp_path / "label.json"
    code, out, _ = run(
        ["label", "create", str(tiny_model), "-o", str(label), "--relation", "finetune",
         "--license", "MIT", "--dataset", "web=https://example.org/web",
         "--compute", "pretraining=1e22", "--compute", "sft=3e22"],
        capsys,
    )  # fmt: skip
    assert code == 0 and "traceability L1" in out and "1/4 pre-training, 3/4 post-training" in out
    assert json.loads(label.read_text())["model"]["digests"]["oms_root"] == digests["oms_root"]

    keys = tmp_path / "keys"
    code, out, _ = run(["label", "keygen", str(keys)], capsys)
    assert code == 0 and "BEGIN" not in out  # never print key material
    signed = tmp_path / "signed.json"
    code, _, _ = run(
        ["label", "sign", str(label), "--key", str(keys / "modeltrace.key"), "-o", str(signed)], capsys
    )
    assert code == 0

    verify = ["label", "verify", str(tiny_model), str(signed), "--pubkey", str(keys / "modeltrace.pub")]
    code, out, _ = run(verify, capsys)
    assert code == 0 and "OK" in out

    (tiny_model / "config.json").write_text('{"model_type": "tampered"}')
    code, _, err = run(verify, capsys)
    assert code == 2 and "file changed: config.json" in err
    # The report first, then the error tree's message (VerificationFailedError, exit 2).
    assert err.index("file changed") < err.index("error: verification FAILED: 1 difference(s), 0 problem(s)")
    code, out, err = run([*verify, "--json"], capsys)
    assert code == 2 and json.loads(out)["changes"] == [
        {"kind": "file", "change": "changed", "name": "config.json"}
    ]
    assert "error: verification FAILED" in err  # stdout stays the JSON report alone

    for export_format in ("spdx", "cyclonedx", "hf-card", "mof"):
        target = tmp_path / f"out.{export_format}"
        code, _, _ = run(
            ["label", "export", str(signed), "--format", export_format, "-o", str(target)], capsys
        )
        assert code == 0 and target.stat().st_size > 0


def test_bad_signature_exit_code(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    label = tmp_path / "label.json"
    run(["label", "create", str(tiny_model), "-o", str(label)], capsys)
    run(["label", "keygen", str(tmp_path / "a")], capsys)
    run(["label", "keygen", str(tmp_path / "b")], capsys)
    signed = tmp_path / "signed.json"
    run(
        ["label", "sign", str(label), "--key", str(tmp_path / "a" / "modeltrace.key"), "-o", str(signed)],
        capsys,
    )
    code, _, err = run(
        ["label", "verify", str(tiny_model), str(signed), "--pubkey", str(tmp_path / "b" / "modeltrace.pub")],
        capsys,
    )
    assert code == 2 and "no signature" in err


def test_label_written_inside_the_model_folder_is_not_part_of_it(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(["label", "create", str(tiny_model), "-o", str(tiny_model / "modeltrace-label.json")], capsys)
    run(["label", "keygen", str(tmp_path / "k")], capsys)
    signed = tiny_model / "modeltrace-label.signed.json"
    key = tmp_path / "k" / "modeltrace.key"
    run(
        ["label", "sign", str(tiny_model / "modeltrace-label.json"), "--key", str(key), "-o", str(signed)],
        capsys,
    )
    code, _, _ = run(
        ["label", "verify", str(tiny_model), str(signed), "--pubkey", str(tmp_path / "k" / "modeltrace.pub")],
        capsys,
    )
    assert code == 0
