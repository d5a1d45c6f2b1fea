"""A provenance label (plain or signed) feeds `license check`: the two issues' formats agree."""

from __future__ import annotations

import json
from pathlib import Path

from modeltrace import api


def _labelled_demo_model(tmp_path: Path) -> tuple[Path, Path]:
    zoo = api.build_demo_zoo(tmp_path / "home")
    base, child = zoo / "tiny-llama", zoo / "tiny-llama-chat"
    label = api.label_create(child, bases=[str(base)], relation="continued-pretrain", license="apache-2.0")
    plain = api.label_write(label, tmp_path / "label.json")
    keys = api.label_keygen(tmp_path / "keys")
    signed = tmp_path / "signed.json"
    signed.write_text(json.dumps(api.label_sign(label, keys[0])), encoding="utf-8")
    return plain, signed


def test_plain_and_signed_labels_give_the_same_ancestry(tmp_path: Path) -> None:
    plain, signed = _labelled_demo_model(tmp_path)
    reports = [
        api.check_license(path, use="commercial", distribution="weights").as_dict()
        for path in (plain, signed)
    ]
    for report in reports:
        assert report["model"] == "tiny-llama-chat"
        # The base's Apache-2.0 (digested from its folder into the label) is part of the ancestry:
        # identical duties are merged into one finding that lists every ancestor it comes from.
        assert report["obligations"]
        assert all(
            set(finding["ancestors"]) == {"tiny-llama-chat", "tiny-llama"}
            for finding in report["obligations"]
        )
        assert report["tier"] == "commercial-permissive"
        assert report["violations"] == []
    assert reports[0]["obligations"] == reports[1]["obligations"]
