"""First-hand licence texts (``texts/*.txt``) and the check that every quoted clause is verbatim.

Each data file names its stored text (``text.file``), where it was copied from (``text.url``) and
when (``text.retrieved``). :func:`misquotes` lists the quotes of a licence that do not appear in
that text, compared after :func:`normalise`, which forgives only layout: whitespace and line-break
hyphenation, typographic quotes and dashes, Unicode compatibility forms (full-width punctuation),
Markdown emphasis, escapes and links.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Mapping
from importlib import resources
from typing import Any

_MARKDOWN_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_TRANSLATE = str.maketrans(
    {"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'", "–": "-", "—": "-", "\u00a0": " ", "\t": " "}
)


def normalise(text: str) -> str:
    """``text`` with layout differences removed, for verbatim comparison.

    Unicode compatibility forms count as layout (NFKC): a full-width comma in a Chinese licence and
    its ASCII form, as a search index or a converter may write it, compare equal.
    """
    text = unicodedata.normalize("NFKC", text).translate(_TRANSLATE)
    text = _MARKDOWN_LINK.sub(r"\1", text)
    text = text.replace("**", "").replace("__", "")
    text = re.sub(r"\\([_.*\-\[\]()#])", r"\1", text)  # Markdown escapes: "1\." -> "1."
    text = re.sub(r"(?<=\w)-[ \t]*\n\s*(?=\w)", "-", text)  # "non-\ntransferable" -> "non-transferable"
    return " ".join(text.split())


def _contains(text: str, quote: str) -> bool:
    """Whether normalised ``text`` holds ``quote``; an ellipsis (``...``) in a quote marks left-out
    words, so each part between ellipses must appear, in order."""
    position = 0
    for part in re.split(r"\s*(?:\.\.\.|…)\s*", quote):
        part = normalise(part)
        if not part:
            continue
        found = text.find(part, position)
        if found < 0:
            return False
        position = found + len(part)
    return True


def stored_text(file: str) -> str:
    """The stored first-hand copy ``texts/<file>``."""
    return resources.files("modeltrace.licenses").joinpath("texts", file).read_text(encoding="utf-8")


def quotes(data: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, quote) for every verbatim quote of one parsed licence file."""
    yield "commercial_use.clause", data["commercial_use"]["clause"]
    yield "flows_down.clause", data["flows_down"]["clause"]
    if data["outputs"].get("clause"):
        yield "outputs.clause", data["outputs"]["clause"]
    for index, threshold in enumerate(data["thresholds"]):
        yield f"thresholds[{index}].clause", threshold["clause"]
    for index, duty in enumerate(data["duties"]):
        yield f"duties[{index}].clause", duty["clause"]
        if duty["kind"] == "notice_file" and duty.get("text"):
            yield f"duties[{index}].text", duty["text"]
    if data["use_restrictions"]:
        yield "use_restrictions.clause", data["use_restrictions"]["clause"]
    for index, carve_out in enumerate(data["geographic"]):
        yield f"geographic[{index}].clause", carve_out["clause"]
    if data.get("no_derivatives"):
        yield "no_derivatives.clause", data["no_derivatives"]["clause"]
    for index, purpose in enumerate(data.get("prohibited_uses", [])):
        yield f"prohibited_uses[{index}].clause", purpose["clause"]


def misquotes(data: Mapping[str, Any]) -> list[str]:
    """Where each quote of ``data`` is missing from its stored text ([] when all are verbatim).

    Quotes listed in ``text.unverified`` are skipped, but must really be absent: a listed quote
    that the stored text does contain is reported too, so the list cannot go stale.
    """
    source = data.get("text") or {}
    if not source.get("file"):
        return []
    text = normalise(stored_text(source["file"]))
    unverified = set(source.get("unverified", ()))
    problems = []
    for where, quote in quotes(data):
        found = _contains(text, quote)
        if where in unverified and found:
            problems.append(f"{where}: listed in text.unverified but found in {source['file']}")
        elif where not in unverified and not found:
            problems.append(f"{where}: {quote!r}")
    known = {where for where, _ in quotes(data)}
    problems += [f"{where}: listed in text.unverified but no such quote" for where in unverified - known]
    return problems
