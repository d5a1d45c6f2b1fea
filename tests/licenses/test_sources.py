"""Reading ancestry from lineage files, model cards and labels; hostile input gives LicenseError."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from modeltrace.api import _license_sources as model_sources
from modeltrace.errors import LicenseError
from modeltrace.licenses import sources
from modeltrace.licenses.lineage import MAX_DEPTH, LineageNode

COMPOSER_YAML = """\
name: composer-2
license: proprietary
parents:
  - {name: kimi-k2.5, license: kimi-k2.5, relation: finetune}   # parents may have parents
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_the_issue_s_yaml_lineage_file_parses(tmp_path: Path) -> None:
    tree = sources.load_lineage_file(write(tmp_path / "lineage.yaml", COMPOSER_YAML))
    assert tree == LineageNode(
        name="composer-2",
        license="proprietary",
        parents=(LineageNode(name="kimi-k2.5", license="kimi-k2.5", relation="finetune"),),
    )


def test_json_lineage_with_nested_parents_and_relation_aliases(tmp_path: Path) -> None:
    data = {
        "name": "a",
        "license": "mit",
        "parents": [
            {"name": "b", "license": "qwen", "relation": "Fine-Tune",
             "parents": [{"name": "c", "license": "llama3.1", "relation": "distillation"}]}
        ],
    }  # fmt: skip
    tree = sources.load_lineage_file(write(tmp_path / "l.json", json.dumps(data)))
    (b,) = tree.parents
    (c,) = b.parents
    assert (b.relation, c.relation) == ("finetune", "distilled-from-outputs")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: a\nparent: []\n", "unknown key"),
        ("name: a\nparents:\n  - {name: b, license: mit, relation: cloned}\n", "unknown relation"),
        ("name: a\nparents:\n  - {name: b, license: mit}\n", "relation"),
        ("license: mit\n", "non-empty 'name'"),
        ("- a\n- b\n", "expected a mapping"),
        ("name: a\nrelation: finetune\n", "takes no 'relation'"),
        ("name: a\nparents: {name: b}\n", "must be a list"),
        ("name: a\nlicense: [mit]\n", "must be a string"),
        ("name: [unclosed\n", "Cannot read lineage file"),
    ],
)
def test_malformed_lineage_files_are_licence_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(LicenseError, match=message):
        sources.load_lineage_file(write(tmp_path / "bad.yaml", text))


def test_a_too_deep_lineage_is_refused(tmp_path: Path) -> None:
    node: dict = {"name": "leaf", "license": "mit", "relation": "finetune"}
    for index in range(MAX_DEPTH + 2):
        node = {"name": f"n{index}", "license": "mit", "relation": "finetune", "parents": [node]}
    del node["relation"]
    with pytest.raises(LicenseError, match="deeper than"):
        sources.load_lineage_file(write(tmp_path / "deep.json", json.dumps(node)))


def test_a_yaml_alias_bomb_is_bounded(tmp_path: Path) -> None:
    # Each entry references the previous one twice: 2**31 nodes if walked naively.
    lines = ["name: r", "parents:", "  - &a0 {name: x, license: mit, relation: finetune}"]
    for level in range(1, 31):
        previous = f"*a{level - 1}"
        lines.append(
            f"  - &a{level} {{name: x{level}, relation: finetune, parents: [{previous}, {previous}]}}"
        )
    with pytest.raises(LicenseError, match="more than 10,000 models"):
        sources.load_lineage_file(write(tmp_path / "bomb.yaml", "\n".join(lines) + "\n"))


def test_an_oversized_lineage_file_is_refused(tmp_path: Path) -> None:
    big = write(tmp_path / "big.yaml", "name: a\n" + "#" * (sources.MAX_FILE_BYTES + 1))
    with pytest.raises(LicenseError, match="exceeds"):
        sources.load_lineage_file(big)


def test_a_missing_lineage_file_is_a_licence_error(tmp_path: Path) -> None:
    with pytest.raises(LicenseError, match="Cannot read lineage file"):
        sources.load_lineage_file(tmp_path / "nope.yaml")


CARD = """---
license: other
license_name: kimi-k2.5
base_model:
  - moonshotai/Kimi-K2.5
base_model_relation: finetune
---
# My model
"""


def test_model_card_front_matter_gives_root_licence_and_base_models(tmp_path: Path) -> None:
    write(tmp_path / "my-model" / "README.md", CARD)
    tree = model_sources.lineage_for_model(tmp_path / "my-model")
    assert tree.name == "my-model"
    assert tree.license == "kimi-k2.5"  # license: other -> license_name
    assert tree.parents == (LineageNode(name="moonshotai/Kimi-K2.5", license=None, relation="finetune"),)


def test_a_card_without_front_matter_has_no_declared_licence(tmp_path: Path) -> None:
    write(tmp_path / "m" / "README.md", "# Just prose\n")
    assert model_sources.lineage_for_model(tmp_path / "m") == LineageNode(name="m")


@pytest.mark.parametrize(
    ("card", "message"),
    [
        ("---\nlicense: mit\n", "never closed"),
        ("---\n- a\n---\n", "not a mapping"),
        ("---\nbase_model: {a: 1}\n---\n", "base_model"),
        ("---\nbase_model: x\nbase_model_relation: copy\n---\n", "unknown relation"),
    ],
)  # fmt: skip
def test_malformed_cards_are_licence_errors(tmp_path: Path, card: str, message: str) -> None:
    write(tmp_path / "m" / "README.md", card)
    with pytest.raises(LicenseError, match=message):
        model_sources.lineage_for_model(tmp_path / "m")


def test_a_lineage_file_completes_the_card_s_base_models(tmp_path: Path) -> None:
    write(
        tmp_path / "my-model" / "README.md",
        CARD.replace("license: other\nlicense_name: kimi-k2.5", "license: proprietary"),
    )
    lineage = write(
        tmp_path / "lineage.yaml",
        "name: kimi-k2.5\nlicense: kimi-k2.5\nparents:\n"
        "  - {name: kimi-k2.5-base, license: kimi-k2.5, relation: finetune}\n",
    )
    tree = sources.merge_lineage(
        model_sources.lineage_for_model(tmp_path / "my-model"), sources.load_lineage_file(lineage)
    )
    (parent,) = tree.parents
    assert (parent.name, parent.license, parent.relation) == ("moonshotai/Kimi-K2.5", "kimi-k2.5", "finetune")
    assert [grand.name for grand in parent.parents] == ["kimi-k2.5-base"]


def test_label_json_gives_licences_of_base_models(tmp_path: Path) -> None:
    label = {
        "name": "kimi-dev-72b",
        "license": "mit",
        "base_models": [
            {"name": "Qwen/Qwen2.5-72B", "relation": "finetune", "license": "qwen", "digest": "x"}
        ],
    }
    write(tmp_path / "m" / model_sources.LABEL_FILE_NAME, json.dumps(label))
    write(tmp_path / "m" / "README.md", "---\nlicense: apache-2.0\n---\n")  # the label wins
    tree = model_sources.lineage_for_model(tmp_path / "m")
    assert tree == LineageNode(
        name="kimi-dev-72b",
        license="mit",
        parents=(LineageNode(name="Qwen/Qwen2.5-72B", license="qwen", relation="finetune"),),
    )


def test_a_folder_with_neither_label_nor_card_is_a_licence_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(LicenseError, match="neither"):
        model_sources.lineage_for_model(tmp_path / "empty")
    with pytest.raises(LicenseError, match="no such file"):
        model_sources.lineage_for_model(tmp_path / "absent")


def test_a_cycle_by_name_is_reported_as_a_cycle(tmp_path: Path) -> None:
    text = (
        "name: A\nparents:\n  - name: B\n    license: mit\n    relation: finetune\n    parents:\n"
        "      - {name: a, license: mit, relation: finetune}\n"
    )
    with pytest.raises(LicenseError, match=r"cycle \(A -> B -> a\)"):
        sources.load_lineage_file(write(tmp_path / "cycle.yaml", text))


def test_a_self_referencing_yaml_alias_is_reported_as_a_cycle(tmp_path: Path) -> None:
    text = "name: root\nparents:\n  - &a {name: A, license: mit, relation: finetune, parents: [*a]}\n"
    with pytest.raises(LicenseError, match="cycle"):
        sources.load_lineage_file(write(tmp_path / "alias.yaml", text))


def test_a_shared_ancestor_is_not_a_cycle(tmp_path: Path) -> None:
    # A merge of two fine-tunes of the same base names the base twice, on different paths.
    text = (
        "name: merged\nparents:\n"
        "  - {name: ft1, license: mit, relation: merge, parents: [&base {name: base, license: mit, "
        "relation: finetune}]}\n"
        "  - {name: ft2, license: mit, relation: merge, parents: [*base]}\n"
    )
    tree = sources.load_lineage_file(write(tmp_path / "dag.yaml", text))
    assert [node.name for node, _ in tree.walk()] == ["merged", "ft1", "base", "ft2", "base"]


# -- one reader per file: the card and the label are read by formats/ and label/ ------------------

ALIASED_CARD = """---
license: &lic apache-2.0
license_name: *lic
base_model: org/base
---
"""


def test_a_card_with_yaml_aliases_gives_one_answer_everywhere(tmp_path: Path) -> None:
    """The licence check used to parse cards itself and accepted YAML aliases that `inspect`
    (formats/hf_folder.py) refuses: one README, two answers. Now both refuse it, with the same
    reason, because the licence check reads the card with the same reader."""
    from modeltrace.errors import CorruptFileError
    from modeltrace.formats.hf_folder import read_card

    folder = tmp_path / "aliased"
    write(folder / "README.md", ALIASED_CARD)
    with pytest.raises(CorruptFileError, match="YAML aliases") as by_inspect:
        read_card(folder)
    with pytest.raises(LicenseError, match="YAML aliases") as by_licence_check:
        model_sources.lineage_for_model(folder)
    assert by_inspect.value.reason in str(by_licence_check.value)


def test_the_card_reader_and_the_licence_check_agree_on_a_plain_card(tmp_path: Path) -> None:
    from modeltrace.formats.hf_folder import read_card

    folder = tmp_path / "plain"
    write(folder / "README.md", "---\nlicense: [mit, apache-2.0]\nbase_model: [org/a, org/b]\n---\n")
    _, declared = read_card(folder)
    tree = model_sources.lineage_for_model(folder)
    assert tree.license == declared.license == "mit"  # a list of licences: the first is the model's
    assert tuple(parent.name for parent in tree.parents) == declared.base_models == ("org/a", "org/b")


def test_a_signed_label_is_read_by_the_label_reader(tmp_path: Path) -> None:
    import base64

    predicate = {
        "name": "m",
        "license": {"id": "MIT"},
        "base_models": [{"id": "org/base", "relation": "adapter"}],
    }
    statement = {"predicate": predicate}
    envelope = {
        "payloadType": "application/vnd.in-toto+json",
        "payload": base64.b64encode(json.dumps(statement).encode()).decode(),
        "signatures": [],
    }
    bundle = {"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "dsseEnvelope": envelope}
    for name, document in (("envelope.json", envelope), ("bundle.json", bundle)):
        tree = model_sources.lineage_for_model(write(tmp_path / name, json.dumps(document)))
        assert tree == LineageNode(
            name="m", license="MIT", parents=(LineageNode(name="org/base", relation="adapter"),)
        )
    broken = {"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}
    with pytest.raises(LicenseError, match="holds no DSSE envelope"):
        model_sources.lineage_for_model(write(tmp_path / "broken.json", json.dumps(broken)))


def test_the_licences_package_imports_no_reader() -> None:
    """licenses/ takes values: cards and labels are read by the facade with formats/ and label/."""
    import ast
    from importlib import resources

    package = resources.files("modeltrace.licenses")
    offenders = []
    for module in sorted(path for path in package.iterdir() if path.name.endswith(".py")):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            names = (
                [alias.name for alias in node.names] if isinstance(node, ast.Import)
                else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            )  # fmt: skip
            offenders += [
                f"{module.name}: {name}"
                for name in names
                if name.split(".")[:2] in (["modeltrace", "formats"], ["modeltrace", "label"])
            ]
    assert offenders == []


def test_the_facade_takes_the_lineage_as_values_too(tmp_path: Path) -> None:
    """The registry hands the facade a tree it built in memory; no temporary lineage file."""
    from modeltrace import api

    from_file = api.check_license(lineage=write(tmp_path / "l.yaml", COMPOSER_YAML), monthly_revenue=8e7)
    from_values = api.check_license(tree=yaml.safe_load(COMPOSER_YAML), monthly_revenue=8e7)
    assert from_values.as_dict() == from_file.as_dict()
    with pytest.raises(LicenseError, match="not both"):
        api.check_license(lineage=tmp_path / "l.yaml", tree={"name": "x"})
    with pytest.raises(LicenseError, match="lineage tree: root: unknown key"):
        api.check_license(tree={"name": "x", "parent": []})
