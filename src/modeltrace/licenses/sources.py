"""Read a model's ancestry from disk: a lineage file, a model card, or a provenance label.

The only module of ``licenses`` that touches files. Everything it returns is a
:class:`~modeltrace.licenses.lineage.LineageNode` tree for the pure engine. Inputs are treated as
hostile: size-limited reads, ``yaml.safe_load`` only, clear :class:`LicenseError` messages.

Sources:

- **lineage file** (YAML or JSON): a nested tree ``{name, license, parents: [{name, license,
  relation, parents}]}``.
- **model card**: a folder's ``README.md`` (or the file itself) with Hugging Face front-matter
  ``license`` (``license_name`` when ``license: other``), ``base_model`` (one or a list) and
  ``base_model_relation``. The card names its base models but not their licences, and modeltrace
  has no hub access: base models appear with an unknown licence unless a lineage file supplies it.
- **provenance label**: ``modeltrace-label.json`` (or any ``.json``) with ``license`` and
  ``base_models: [{name, relation, license, base_models?}]``. Kept small on purpose so that it can
  follow the label schema as that evolves.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from modeltrace.errors import LicenseError
from modeltrace.licenses.lineage import LineageNode, lineage_from_data, normalize_relation

#: Lineage files and labels are small; anything bigger is a mistake or an attack.
MAX_FILE_BYTES = 1 << 20
#: How much of a README is read to find its front-matter.
MAX_CARD_BYTES = 1 << 20
LABEL_FILE = "modeltrace-label.json"
#: Media type prefix of a Sigstore bundle (kept here: licences may not import the label layer).
SIGSTORE_BUNDLE_MEDIA_TYPE_PREFIX = "application/vnd.dev.sigstore.bundle"
CARD_FILE = "README.md"
#: Relation assumed when a card names a base model without ``base_model_relation``.
DEFAULT_CARD_RELATION = "finetune"


def _read_text(path: Path, limit: int, what: str) -> str:
    try:
        size = path.stat().st_size
        if size > limit:
            raise LicenseError(
                f"Cannot read {what} '{path}': {size:,} bytes exceeds the {limit:,}-byte limit."
            )
        return path.read_bytes().decode("utf-8")
    except OSError as error:
        raise LicenseError(f"Cannot read {what} '{path}': {error.strerror or error}.") from error
    except UnicodeDecodeError as error:
        raise LicenseError(f"Cannot read {what} '{path}': not UTF-8 text ({error.reason}).") from error


def load_lineage_file(path: str | Path) -> LineageNode:
    """Parse a YAML or JSON lineage file into a tree (LicenseError when it is malformed)."""
    path = Path(path)
    text = _read_text(path, MAX_FILE_BYTES, "lineage file")
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise LicenseError(f"Cannot read lineage file '{path}': {error}") from error
    return lineage_from_data(data, source=str(path))


def read_front_matter(readme: str | Path) -> dict[str, Any]:
    """The YAML front-matter of a model card as a dict ({} when the card has none)."""
    readme = Path(readme)
    try:
        with readme.open("rb") as handle:
            raw = handle.read(MAX_CARD_BYTES)
    except OSError as error:
        raise LicenseError(f"Cannot read model card '{readme}': {error.strerror or error}.") from error
    text = raw.decode("utf-8", errors="replace").lstrip("\ufeff")
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return {}
    try:
        end = next(index for index in range(1, len(lines)) if lines[index].strip() == "---")
    except StopIteration:
        raise LicenseError(
            f"Cannot read model card '{readme}': front-matter opened with '---' is never closed "
            f"within the first {MAX_CARD_BYTES:,} bytes."
        ) from None
    try:
        data = yaml.safe_load("\n".join(lines[1:end]))
    except yaml.YAMLError as error:
        raise LicenseError(
            f"Cannot read model card '{readme}': front-matter is not valid YAML ({error})."
        ) from error
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise LicenseError(f"Cannot read model card '{readme}': front-matter is not a mapping.")
    return dict(data)


def lineage_from_model_card(path: str | Path) -> LineageNode:
    """The deployed model and its declared base models (licences unknown) from a model card."""
    path = Path(path)
    readme = path / CARD_FILE if path.is_dir() else path
    card = read_front_matter(readme)
    name = card.get("model_name") if isinstance(card.get("model_name"), str) else None
    name = name or (path.name if path.is_dir() else readme.parent.name) or str(path)
    license_id = _card_license(card)
    bases = card.get("base_model")
    if isinstance(bases, str):
        bases = [bases]
    if bases is None:
        bases = []
    if not isinstance(bases, list) or not all(isinstance(base, str) and base.strip() for base in bases):
        raise LicenseError(f"Model card '{readme}': 'base_model' must be a model id or a list of ids.")
    raw_relation = card.get("base_model_relation") or DEFAULT_CARD_RELATION
    relation = normalize_relation(raw_relation, f"Model card '{readme}'")
    parents = tuple(LineageNode(name=base.strip(), license=None, relation=relation) for base in bases)
    return LineageNode(name=name, license=license_id, parents=parents)


def _card_license(card: Mapping[str, Any]) -> str | None:
    license_id = card.get("license")
    if isinstance(license_id, list):  # some cards list several; the first is the model's own
        license_id = license_id[0] if license_id else None
    if not isinstance(license_id, str) or not license_id.strip():
        return None
    license_name = card.get("license_name")
    if license_id.strip().lower() == "other" and isinstance(license_name, str) and license_name.strip():
        return license_name.strip()
    return license_id.strip()


def lineage_from_label(path: str | Path) -> LineageNode:
    """The ancestry recorded in a provenance label JSON (``license`` + ``base_models``)."""
    path = Path(path)
    label_path = path / LABEL_FILE if path.is_dir() else path
    text = _read_text(label_path, MAX_FILE_BYTES, "label")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise LicenseError(f"Cannot read label '{label_path}': not valid JSON ({error}).") from error
    if not isinstance(data, Mapping):
        raise LicenseError(f"Cannot read label '{label_path}': expected a JSON object.")
    data = _unwrap_signed_label(data, label_path)
    model = data.get("model") if isinstance(data.get("model"), Mapping) else {}
    name = data.get("name") or data.get("model_name") or model.get("name") or label_path.parent.name
    tree = {"name": str(name), "license": _label_license(data.get("license"))}
    tree["parents"] = _label_parents(data.get("base_models"), str(label_path), depth=0)
    return lineage_from_data(tree, source=str(label_path))


def _unwrap_signed_label(data: Mapping[str, Any], label_path: Path) -> Mapping[str, Any]:
    """The label inside a signed DSSE envelope or Sigstore bundle (``modeltrace label sign --key``
    or ``--sigstore`` output), else ``data``.

    The signature is not checked here, for either kind (``modeltrace label verify`` does that);
    the licence check only needs the declared ancestry. A Sigstore bundle holds the same DSSE
    envelope under ``dsseEnvelope``.
    """
    if str(data.get("mediaType", "")).startswith(SIGSTORE_BUNDLE_MEDIA_TYPE_PREFIX):
        envelope = data.get("dsseEnvelope")
        if not isinstance(envelope, Mapping):
            raise LicenseError(f"Cannot read label '{label_path}': the Sigstore bundle holds no label.")
        data = envelope
    if "payload" not in data or "payloadType" not in data:
        return data
    try:
        statement = json.loads(base64.b64decode(str(data["payload"]), validate=True))
        predicate = statement["predicate"]
    except (ValueError, KeyError, TypeError) as error:
        raise LicenseError(
            f"Cannot read label '{label_path}': signed envelope has no readable label."
        ) from error
    if not isinstance(predicate, Mapping):
        raise LicenseError(f"Cannot read label '{label_path}': signed envelope has no readable label.")
    return predicate


def _label_license(value: Any) -> str | None:
    if isinstance(value, Mapping):  # e.g. {"id": "apache-2.0", "name": ...}
        value = value.get("id") or value.get("spdx")
    return value if isinstance(value, str) else None


def _label_parents(entries: Any, source: str, depth: int) -> list[dict[str, Any]]:
    if entries is None:
        return []
    if not isinstance(entries, list) or depth > 64:
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
                "relation": entry.get("relation") or DEFAULT_CARD_RELATION,
                "parents": _label_parents(entry.get("base_models"), source, depth + 1),
            }
        )
    return parents


def lineage_for_model(path: str | Path) -> LineageNode:
    """Ancestry of a model folder or file: its label when present, else its model card."""
    path = Path(path)
    if not path.exists():
        raise LicenseError(f"Cannot read model '{path}': no such file or folder.")
    if path.is_dir():
        if (path / LABEL_FILE).is_file():
            return lineage_from_label(path)
        if (path / CARD_FILE).is_file():
            return lineage_from_model_card(path)
        raise LicenseError(
            f"Cannot find the ancestry of '{path}': it has neither {LABEL_FILE} nor {CARD_FILE}; "
            "pass a lineage file with --lineage."
        )
    if path.suffix.lower() == ".json":
        return lineage_from_label(path)
    if path.suffix.lower() == ".md":
        return lineage_from_model_card(path)
    raise LicenseError(
        f"Cannot find the ancestry of '{path}': expected a model folder, a README.md or a label .json."
    )


def merge_lineage(model: LineageNode, lineage: LineageNode) -> LineageNode:
    """Complete a card or label's ancestry with a lineage file.

    Each parent the model declares is looked up by name anywhere in the lineage file (names compare
    case-insensitively, and ``org/name`` matches ``name``); a match supplies its licence and its own
    parents. When the lineage file's root is the model itself, its parents are added too.
    """
    index: dict[str, LineageNode] = {}
    for node, _path in lineage.walk():
        for key in _name_keys(node.name):
            index.setdefault(key, node)

    def completed(parent: LineageNode) -> LineageNode:
        match = next((index[key] for key in _name_keys(parent.name) if key in index), None)
        if match is None:
            return parent
        return LineageNode(
            name=parent.name,
            license=parent.license or match.license,
            relation=parent.relation,
            parents=match.parents,
            multimodal=match.multimodal if parent.multimodal is None else parent.multimodal,
        )

    parents = [completed(parent) for parent in model.parents]
    if _name_keys(lineage.name) & _name_keys(model.name) or not model.parents:
        declared = {key for parent in parents for key in _name_keys(parent.name)}
        parents += [parent for parent in lineage.parents if not _name_keys(parent.name) & declared]
    return LineageNode(
        name=model.name,
        license=model.license or lineage.license,
        parents=tuple(parents),
        multimodal=model.multimodal,
        grants=(*model.grants, *(grant for grant in lineage.grants if grant not in model.grants)),
    )


def _name_keys(name: str) -> set[str]:
    lowered = name.strip().lower()
    return {lowered, lowered.rsplit("/", 1)[-1]}
