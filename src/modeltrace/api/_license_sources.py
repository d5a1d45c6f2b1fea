"""A model's declared ancestry for the licence check, read with the readers that own each file.

- **model card**: a folder's ``README.md`` (or the file itself), read by
  :mod:`modeltrace.formats.hf_folder`, the parser ``inspect`` and ``label create`` use, so one README
  gives one answer everywhere (YAML aliases, for instance, are refused by all of them). Its
  ``license`` (``license_name`` when ``license: other``), ``base_model`` and
  ``base_model_relation`` name the model's licence and its base models. A card names its base
  models but not their licences, and modeltrace has no hub access: base models appear with an
  unknown licence unless a lineage file supplies it.
- **provenance label**: ``modeltrace-label.json`` (or any ``.json``), plain, DSSE-signed or a
  Sigstore bundle, read by :mod:`modeltrace.label.schema` (the signature is not checked here:
  ``label verify`` does that). Its ``license`` and ``base_models: [{id|name, relation, license,
  base_models?}]`` give the ancestry.

Both become a :class:`~modeltrace.licenses.LineageNode` tree of values for the pure engine; a
reader's error becomes a LicenseError (exit 3) that names the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modeltrace.errors import FormatError, LabelError, LicenseError
from modeltrace.formats.hf_folder import CARD_FILE_NAME, read_card_file
from modeltrace.label.schema import LABEL_FILE_NAME, read_label_document
from modeltrace.licenses.lineage import MAX_DEPTH, LineageNode, lineage_from_data, normalize_relation

#: Relation assumed when a card or label names a base model without one.
DEFAULT_RELATION = "finetune"


def lineage_for_model(path: str | Path) -> LineageNode:
    """Ancestry of a model folder or file: its label when present, else its model card."""
    path = Path(path)
    if not path.exists():
        raise LicenseError(f"Cannot read model '{path}': no such file or folder.")
    if path.is_dir():
        if (path / LABEL_FILE_NAME).is_file():
            return lineage_from_label(path / LABEL_FILE_NAME)
        if (path / CARD_FILE_NAME).is_file():
            return lineage_from_model_card(path)
        raise LicenseError(
            f"Cannot find the ancestry of '{path}': it has neither {LABEL_FILE_NAME} nor "
            f"{CARD_FILE_NAME}; pass a lineage file with --lineage."
        )
    if path.suffix.lower() == ".json":
        return lineage_from_label(path)
    if path.suffix.lower() == ".md":
        return lineage_from_model_card(path)
    raise LicenseError(
        f"Cannot find the ancestry of '{path}': expected a model folder, a README.md or a label .json."
    )


def lineage_from_model_card(path: str | Path) -> LineageNode:
    """The deployed model and its declared base models (licences unknown) from a model card."""
    path = Path(path)
    readme = path / CARD_FILE_NAME if path.is_dir() else path
    try:
        # strict: a front-matter block that is never closed or is not a mapping is an error here,
        # not "no metadata", so that a licence cannot vanish silently.
        front_matter, declared = read_card_file(readme, strict=True)
    except FormatError as error:
        raise LicenseError(f"Cannot read model card: {error}") from error
    bases = front_matter.get("base_model")
    if bases is not None and not (
        (isinstance(bases, str) and bases.strip())
        or (isinstance(bases, list) and all(isinstance(base, str) and base.strip() for base in bases))
    ):
        raise LicenseError(f"Model card '{readme}': 'base_model' must be a model id or a list of ids.")
    relation = normalize_relation(declared.base_model_relation or DEFAULT_RELATION, f"Model card '{readme}'")
    name = declared.name or (path.name if path.is_dir() else readme.parent.name) or str(path)
    parents = tuple(
        LineageNode(name=base.strip(), license=None, relation=relation) for base in declared.base_models
    )
    return LineageNode(
        name=name, license=_card_license(declared.license, declared.license_name), parents=parents
    )


def _card_license(license_id: str | None, license_name: str | None) -> str | None:
    """The card's licence id; ``license_name`` names it when the tag is Hugging Face's ``other``."""
    if license_id is None or not license_id.strip():
        return None
    if license_id.strip().lower() == "other" and license_name and license_name.strip():
        return license_name.strip()
    return license_id.strip()


def lineage_from_label(label_path: str | Path) -> LineageNode:
    """The ancestry recorded in a provenance label (``license`` + ``base_models``)."""
    label_path = Path(label_path)
    try:
        data = read_label_document(label_path)
    except LabelError as error:
        raise LicenseError(str(error)) from error
    if not isinstance(data, Mapping):
        raise LicenseError(f"Cannot read label '{label_path}': expected a JSON object.")
    model = data.get("model") if isinstance(data.get("model"), Mapping) else {}
    name = data.get("name") or data.get("model_name") or model.get("name") or label_path.parent.name
    tree = {"name": str(name), "license": _label_license(data.get("license"))}
    tree["parents"] = _label_parents(data.get("base_models"), str(label_path), depth=0)
    return lineage_from_data(tree, source=str(label_path))


def _label_license(value: Any) -> str | None:
    if isinstance(value, Mapping):  # the label schema's {"id": "Apache-2.0", "declared_as": ...}
        value = value.get("id") or value.get("spdx")
    return value if isinstance(value, str) else None


def _label_parents(entries: Any, source: str, depth: int) -> list[dict[str, Any]]:
    if entries is None:
        return []
    if not isinstance(entries, list) or depth > MAX_DEPTH:
        raise LicenseError(f"Cannot read label '{source}': 'base_models' must be a list of objects.")
    parents = []
    for entry in entries:
        if isinstance(entry, str):
            entry = {"name": entry}
        if not isinstance(entry, Mapping):
            raise LicenseError(
                f"Cannot read label '{source}': each base model must be an object with 'name'."
            )
        parents.append(
            {
                # Labels name a base by ``id`` (hub id or path); lineage files by ``name``.
                "name": entry.get("name") or entry.get("id"),
                "license": _label_license(entry.get("license")),
                "relation": entry.get("relation") or DEFAULT_RELATION,
                "parents": _label_parents(entry.get("base_models"), source, depth + 1),
            }
        )
    return parents
