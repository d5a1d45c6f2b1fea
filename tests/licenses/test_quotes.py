"""Every quoted clause is verbatim in a stored first-hand copy of its licence (texts/*.txt)."""

from __future__ import annotations

from importlib import resources
from typing import Any

import pytest
import yaml

from modeltrace.licenses import load_catalog
from modeltrace.licenses.quotes import misquotes, normalise, quotes, stored_text

DATA = resources.files("modeltrace.licenses").joinpath("data")
FILES = sorted(entry.name for entry in DATA.iterdir() if entry.name.endswith(".yaml"))


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load(DATA.joinpath(name).read_text(encoding="utf-8"))


WITH_TEXT = [name for name in FILES if load(name)["text"]["file"]]
#: Licences whose first-hand text was not in the search store: their notes say so (see the report).
WITHOUT_TEXT = {name for name in FILES if not load(name)["text"]["file"]}


@pytest.mark.parametrize("name", WITH_TEXT)
def test_every_quote_is_verbatim_in_the_stored_text(name: str) -> None:
    assert misquotes(load(name)) == []


@pytest.mark.parametrize("name", FILES)
def test_every_licence_says_where_its_text_comes_from(name: str) -> None:
    source = load(name)["text"]
    assert source["url"].startswith("https://")
    assert source["retrieved"] >= "2026-01-01"
    if source["file"] is None:
        assert "No first-hand copy" in source["note"] or "not" in source["note"]
    else:
        assert len(stored_text(source["file"])) > 500  # a whole licence, not a snippet


def test_most_licences_have_a_first_hand_text() -> None:
    assert len(WITH_TEXT) >= len(FILES) // 2, sorted(WITHOUT_TEXT)


def test_a_paraphrase_is_caught() -> None:
    # The misquote the audit found in Llama 2 section 1.b.i.
    data = load("llama2.yaml")
    data["duties"][0]["clause"] = (
        "If you distribute or make available the Llama Materials (or any derivative works thereof) to a "
        "third party, you shall provide a copy of this Agreement to such third party."
    )
    assert [problem.split(":")[0] for problem in misquotes(data)] == ["duties[0].clause"]


def test_an_ellipsis_needs_every_part_in_order() -> None:
    data = load("cc-by-4.0.yaml")
    clause = data["duties"][0]["clause"]
    first, _, rest = clause.partition(" ... ")
    data["duties"][0]["clause"] = f"{rest} ... {first}"  # both parts exist, in the wrong order
    assert misquotes(data) != []


def test_an_unverified_quote_must_really_be_missing() -> None:
    data = load("llama4.yaml")
    assert data["text"]["unverified"] == ["geographic[0].clause"]
    data["text"]["unverified"].append("duties[0].clause")
    assert misquotes(data) == ["duties[0].clause: listed in text.unverified but found in llama4.txt"]


def test_normalise_forgives_layout_only() -> None:
    assert normalise("non-\n   transferable “Notice” **Agreement** 1\\. [x](https://y)") == (
        'non-transferable "Notice" Agreement 1. x'
    )
    assert normalise("Llama 2") != normalise("Llama 3")


def test_the_audit_s_misquotes_are_fixed() -> None:
    catalog = load_catalog()
    llama2 = catalog.get("llama2")
    assert llama2 is not None
    assert llama2.flows_down_clause.startswith(
        "If you distribute or make the Llama Materials, or any derivative works thereof, available to a"
    )
    deepseek = catalog.get("deepseek")
    assert deepseek is not None and "reproduce and distribute copies" in deepseek.commercial_clause
    mistral = catalog.get("mistral-research")
    assert mistral is not None
    copy = next(duty for duty in mistral.duties if duty.kind == "license_copy")
    assert "make available a copy of this Agreement to third-party recipients" in copy.clause


@pytest.mark.parametrize(
    ("key", "kind", "words"),
    [("tongyi-qianwen", "license_copy", "give any other recipients of the Materials"),
     ("tongyi-qianwen", "modification_notice", "modified files to carry prominent notices"),
     ("mistral-research", "modification_notice", "prominent notices stating that You modified")],
)  # fmt: skip
def test_the_missing_duties_are_added(key: str, kind: str, words: str) -> None:
    license_ = load_catalog().get(key)
    assert license_ is not None
    duty = next(duty for duty in license_.duties if duty.kind == kind)
    assert words in duty.clause
    assert duty.distribution == ("weights",)


def test_quotes_lists_every_clause_field() -> None:
    wheres = [where for where, _ in quotes(load("llama3.2.yaml"))]
    assert "geographic[0].clause" in wheres and "use_restrictions.clause" in wheres
    assert "duties[3].text" in wheres  # the notice text itself


def test_normalise_forgives_full_width_punctuation_only() -> None:
    # A Chinese licence copied through a tool that writes full-width punctuation in ASCII form.
    assert normalise("材料（或其任何衍生作品），您应：") == normalise("材料(或其任何衍生作品),您应:")
    assert normalise("出于任何军事目的") != normalise("出于任何民用目的")
