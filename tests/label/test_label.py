"""Label creation: pre-fill from the model card, traceability levels, compute shares, schema."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from modeltrace import api
from modeltrace.errors import LabelError, UsageError
from modeltrace.label.create import import_declared
from modeltrace.label.levels import compute_shares, traceability
from modeltrace.label.mof import CLASS_I, CLASS_II, CLASS_III, mof_class
from modeltrace.label.schema import spdx_license_id, validate_label
from modeltrace.types import Declared


def test_create_prefills_from_the_model_card_and_records_where(tiny_model: Path) -> None:
    label = api.label_create(tiny_model)
    assert [base["id"] for base in label["base_models"]] == ["org/base-7b"]
    assert label["base_models"][0]["relation"] == "finetune"
    assert [dataset["name"] for dataset in label["datasets"]] == ["org/instructions"]
    assert label["license"] == {"id": "Apache-2.0", "declared_as": "apache-2.0"}
    assert label["claims_source"]["license"] == "README.md front-matter"
    assert label["model"]["architecture"]["model_type"] == "tiny"
    assert label["model"]["architecture"]["parameters"] == 16 * 8 + 8 * 8 + 8 + 4 * 8


def test_command_line_statements_win_over_the_card(tiny_model: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "part-0.jsonl").write_text('{"text": "hello"}\n')
    label = api.label_create(
        tiny_model, bases=["other/base"], relation="distilled", license="MIT", datasets=[f"mine={data}"]
    )
    assert label["base_models"][0] == {
        "id": "other/base",
        "relation": "distilled",
        "digests": None,
        "license": None,
        "source": "command line",
    }
    assert label["license"]["id"] == "MIT"
    assert label["datasets"][0]["fingerprint"] == api.digest(data, tensors=False).oms_root


def test_levels_climb_as_the_ancestry_is_pinned(tiny_model: Path, tmp_path: Path, make_model) -> None:  # type: ignore[no-untyped-def]
    bare = api.label_create(tiny_model, prefill=False)
    assert traceability(bare).name == "L1"
    assert any("base models" in gap for gap in traceability(bare).missing)

    by_id = api.label_create(tiny_model)  # base named by id only: no digest
    assert traceability(by_id).name == "L1"
    assert any("content digest for base model 'org/base-7b'" in gap for gap in traceability(by_id).missing)

    base = make_model(tmp_path / "base", card="---\nlicense: llama2\nmodel_name: base-7b\n---\n")
    pinned = api.label_create(tiny_model, bases=[str(base)], relation="finetune", license="Apache-2.0")
    assert pinned["base_models"][0]["digests"]["oms_root"] == api.digest(base).oms_root
    assert pinned["base_models"][0]["license"] == "LicenseRef-llama2"
    assert traceability(pinned).name == "L3" and traceability(pinned).missing == ()

    unlicensed_base = make_model(tmp_path / "base2", card=None)
    partial = api.label_create(tiny_model, bases=[str(unlicensed_base)], relation="finetune")
    assert traceability(partial).name == "L2"
    assert traceability(partial).missing == ("the licence of base model 'base2'",)


def test_from_scratch_needs_no_base_but_contradicting_base_is_refused(tiny_model: Path) -> None:
    label = api.label_create(tiny_model, from_scratch=True, prefill=False, datasets=["web"], license="MIT")
    assert traceability(label).name == "L3"
    with pytest.raises(UsageError):
        api.label_create(tiny_model, from_scratch=True, bases=["x/y"])


def test_compute_shares_quarter_base_three_quarters_post_training(tiny_model: Path) -> None:
    label = api.label_create(tiny_model, compute=["pretraining=1e24@Meta", "sft=2e24@Acme", "rlhf=1e24@Acme"])
    shares = compute_shares(label)
    assert shares["by_kind"] == {"pre-training": "1/4", "post-training": "3/4"}
    assert shares["by_party"] == {"Meta": "1/4", "Acme": "3/4"}
    assert shares["total_flops"] == 4e24
    with pytest.raises(UsageError):
        api.label_create(tiny_model, compute=["sft=lots"])


def test_training_log_and_instruction_set_hashes(tiny_model: Path, tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.write_text("step 1 loss 2.3\n")
    label = api.label_create(tiny_model, training_log=log, instruction_set=log)
    import hashlib

    assert label["training"]["log_sha256"] == hashlib.sha256(log.read_bytes()).hexdigest()


def test_import_fills_only_gaps() -> None:
    label = {
        "base_models": [],
        "datasets": [{"name": "kept", "url": None, "fingerprint": None, "source": "command line"}],
        "license": {"id": None},
        "model": {"name": "m"},
    }
    declared = Declared(
        base_models=("a/b",), base_model_relation="quantized", license="gemma", datasets=("x",)
    )
    import_declared(label, declared, "GGUF general.* metadata")
    assert label["base_models"][0]["relation"] == "quantized"
    assert label["datasets"][0]["name"] == "kept"
    assert label["license"]["id"] == "LicenseRef-gemma"


@pytest.mark.parametrize(
    ("declared", "expected"),
    [
        ("apache-2.0", "Apache-2.0"),
        ("MIT", "MIT"),
        ("cc-by-nc-4.0", "CC-BY-NC-4.0"),
        ("gpl-3.0", "GPL-3.0-only"),
        ("llama3.1", "LicenseRef-llama3.1"),
        ("other", None),
        (None, None),
        ("LicenseRef-acme", "LicenseRef-acme"),
    ],
)
def test_licence_ids(declared: str | None, expected: str | None) -> None:
    assert spdx_license_id(declared) == expected


def test_schema_rejects_malformed_labels(tiny_model: Path) -> None:
    label = api.label_create(tiny_model)
    for mutate in (
        lambda doc: doc["model"]["digests"].__setitem__("oms_root", "xyz"),
        lambda doc: doc["base_models"][0].__setitem__("relation", "cousin"),
        lambda doc: doc.__setitem__("schema", "modeltrace-label/v0"),
        lambda doc: doc.__setitem__("unknown_key", 1),
    ):
        broken = copy.deepcopy(label)
        mutate(broken)
        with pytest.raises(LabelError):
            validate_label(broken)


def test_mof_classes() -> None:
    def label_with(names: tuple[str, ...], license_id: str = "Apache-2.0") -> dict:  # type: ignore[type-arg]
        return {"openness": {name: {"available": True, "license": license_id} for name in names}}

    assert mof_class(label_with(()))["class"] is None
    assert mof_class(label_with(CLASS_III))["class"] == "Class III - Open Model"
    assert mof_class(label_with(CLASS_III + CLASS_II))["class"] == "Class II - Open Tooling"
    assert mof_class(label_with(CLASS_III + CLASS_II + CLASS_I))["class"] == "Class I - Open Science"
    restricted = mof_class(label_with(CLASS_III, "CC-BY-NC-4.0"))
    assert restricted["class"] is None
    assert "model-card: licence 'CC-BY-NC-4.0' is not an open licence" in restricted["missing_for_next"]


def test_label_import_fills_licence_into_components_but_keeps_from_scratch(tiny_model: Path) -> None:
    label = api.label_create(tiny_model, prefill=False, from_scratch=True)
    assert label["license"]["id"] is None
    assert label["openness"]["model-parameters"]["license"] is None
    imported = api.label_import(label, tiny_model)
    assert imported["license"]["id"] == "Apache-2.0"
    assert imported["openness"]["model-parameters"]["license"] == "Apache-2.0"
    assert imported["base_models"] == []  # the publisher's "from scratch" is not overwritten by the card
    assert imported["datasets"][0]["name"] == "org/instructions"
