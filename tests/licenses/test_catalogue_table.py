"""docs/licenses.md's catalogue table is generated from the knowledge base and checked here.

Regenerate it with ``python tests/licenses/test_catalogue_table.py --write``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from modeltrace.licenses import License, load_catalog

DOCS = Path(__file__).parents[2] / "docs" / "licenses.md"
START, END = "<!-- catalogue-table:start -->", "<!-- catalogue-table:end -->"


def _stored_text(license_: License) -> str:
    text = license_.text
    if text is None or text.file is None:
        return "none: quotes not machine-checked"
    origin = "ScanCode LicenseDB" if "aboutcode-org/scancode-toolkit" in text.url else "first-hand"
    excerpt = " (excerpt)" if (text.note or "").lower().startswith("verbatim excerpt") else ""
    return f"{origin}{excerpt}"


def _hf_tag(license_: License) -> str:
    if license_.hf_license == "other" and license_.hf_license_name:
        return f"`other` + `{license_.hf_license_name}`"
    return f"`{license_.hf_license}`"


def _purposes(license_: License) -> str:
    categories = sorted({category for use in license_.prohibited_uses for category in use.categories})
    return ", ".join(categories) if categories else "-"


def render_table() -> str:
    rows = [
        "| Key | Licence | SPDX id | ScanCode key | HF tag | Stored text | `--purpose` mapped |",
        "|---|---|---|---|---|---|---|",
    ]
    for license_ in sorted(load_catalog(), key=lambda item: item.key):
        rows.append(
            f"| `{license_.key}` | {license_.name} | `{license_.id}` | {license_.scancode_key or '-'} "
            f"| {_hf_tag(license_)} | {_stored_text(license_)} | {_purposes(license_)} |"
        )
    return "\n".join(rows)


def _docs_with_table(docs: str) -> str:
    before, _, rest = docs.partition(START)
    _, _, after = rest.partition(END)
    return f"{before}{START}\n{render_table()}\n{END}{after}"


def test_the_docs_catalogue_is_generated_from_the_knowledge_base() -> None:
    docs = DOCS.read_text(encoding="utf-8")
    assert START in docs and END in docs
    assert docs == _docs_with_table(docs), (
        "docs/licenses.md's catalogue table is stale: "
        "run python tests/licenses/test_catalogue_table.py --write"
    )


if __name__ == "__main__" and "--write" in sys.argv:
    DOCS.write_text(_docs_with_table(DOCS.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote the catalogue table of {DOCS}")
