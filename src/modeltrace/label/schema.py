"""The label document: its JSON Schema, validation, reading and writing, licence ids.

A label is a plain JSON object validated against ``data/label-v1.schema.json``. Keeping it a
dict (not a class tree) means the schema file is the single definition of the format; the
functions here are the only way labels enter or leave the program, and they always validate.
"""

from __future__ import annotations

import base64
import json
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from modeltrace.errors import LabelError
from modeltrace.label import vocabulary
from modeltrace.label.spdx_ids import HF_ALIASES, SPDX_IDS, UNKNOWN

SCHEMA_ID = "modeltrace-label/v1"
#: Every Sigstore bundle media type starts with this (``...bundle+json;version=0.1``, ``.v0.3+json``).
SIGSTORE_BUNDLE_MEDIA_TYPE_PREFIX = "application/vnd.dev.sigstore.bundle"
LABEL_FILE_NAME = "modeltrace-label.json"
#: Largest label file read (a label lists one digest per file and per tensor).
MAX_LABEL_BYTES = 256 * 1024 * 1024

RELATIONS = vocabulary.RELATIONS

Label = dict[str, Any]


@cache
def label_schema() -> dict[str, Any]:
    """The label JSON Schema (draft 2020-12)."""
    text = resources.files("modeltrace.label").joinpath("data/label-v1.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def validate_label(label: Any) -> Label:
    """Return ``label`` if it satisfies the schema, else raise LabelError naming the first problem."""
    validator = jsonschema.Draft202012Validator(label_schema())
    errors = sorted(validator.iter_errors(label), key=lambda error: list(error.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(part) for part in first.absolute_path) or "(top level)"
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        raise LabelError(f"Label does not match schema {SCHEMA_ID} at '{where}': {first.message:.200}{more}")
    return label  # type: ignore[no-any-return]


def _load_json(path: Path) -> Any:
    try:
        size = path.stat().st_size
    except OSError as error:
        raise LabelError(f"Cannot read label '{path}': {error.strerror}") from error
    if size > MAX_LABEL_BYTES:
        raise LabelError(f"Label '{path}' is {size:,} bytes, over the {MAX_LABEL_BYTES:,}-byte limit")
    try:
        return json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise LabelError(f"Label '{path}' is not valid JSON ({error})") from error


def is_sigstore_bundle(data: Any) -> bool:
    """Whether a parsed JSON document is a Sigstore bundle (``label sign --sigstore`` output)."""
    return isinstance(data, dict) and str(data.get("mediaType", "")).startswith(
        SIGSTORE_BUNDLE_MEDIA_TYPE_PREFIX
    )


def is_dsse_envelope(data: Any) -> bool:
    """Whether a parsed JSON document is a DSSE envelope (``label sign --key`` output)."""
    return isinstance(data, dict) and "payloadType" in data and "payload" in data


def read_label(path: str | Path) -> Label:
    """Read a label file, or the label inside a signed envelope or Sigstore bundle.

    The signature is NOT checked here (``verify`` does that); this only reads what was signed.
    """
    return validate_label(read_label_document(path))


def read_label_document(path: str | Path) -> Any:
    """The label JSON of a file, a signed DSSE envelope or a Sigstore bundle, NOT validated.

    For readers that need only a few declared fields (the licence check reads ``license`` and
    ``base_models``) and accept hand-written labels; everything else uses :func:`read_label`.
    The signature is not checked.
    """
    data = _load_json(Path(path))
    if is_sigstore_bundle(data):
        data = data.get("dsseEnvelope")
        if not is_dsse_envelope(data):
            raise LabelError(f"Sigstore bundle '{path}' holds no DSSE envelope, so no signed label")
    if is_dsse_envelope(data):
        try:
            statement = json.loads(base64.b64decode(data["payload"], validate=True))
            data = statement["predicate"]
        except (ValueError, KeyError, TypeError) as error:
            raise LabelError(f"Signed label '{path}' has an unreadable payload ({error})") from error
    return data


def write_label(label: Label, path: str | Path) -> Path:
    validate_label(label)
    target = Path(path)
    target.write_text(json.dumps(label, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return target


_LICENSE_REF = re.compile(r"[^A-Za-z0-9.\-]+")


def spdx_license_id(declared: str | None) -> str | None:
    """The SPDX id for a declared licence string; ``LicenseRef-<name>`` when not in the SPDX list.

    None when nothing is known (missing, ``unknown``, ``other`` without a name).
    """
    if declared is None or declared.strip().lower() in UNKNOWN:
        return None
    text = declared.strip()
    if text.startswith("LicenseRef-"):
        return text
    lowered = text.lower()
    if lowered in HF_ALIASES:
        return HF_ALIASES[lowered]
    if lowered in SPDX_IDS:
        return SPDX_IDS[lowered]
    return "LicenseRef-" + _LICENSE_REF.sub("-", text).strip("-")


def is_spdx_listed(license_id: str | None) -> bool:
    return (
        license_id is not None
        and license_id.lower() in SPDX_IDS
        and SPDX_IDS[license_id.lower()] == license_id
    )
