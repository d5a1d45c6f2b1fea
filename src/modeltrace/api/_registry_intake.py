"""Reading what ``registry add`` is given (a model, a fingerprint file, a label) into an Arrival."""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modeltrace.errors import LabelError, ModeltraceError

if TYPE_CHECKING:
    from modeltrace.fingerprint.model import Fingerprint
    from modeltrace.registry.records import Arrival

_LABEL_SUFFIXES = (".json",)


def arrival_from_path(path: Path, name: str | None, namespace: str) -> Arrival:
    from modeltrace.fingerprint.model import is_fingerprint_file, load_fingerprint

    if is_fingerprint_file(path):
        return arrival_from_fingerprint(path, load_fingerprint(path), name, namespace, source=str(path))
    if path.is_file() and path.suffix.lower() in _LABEL_SUFFIXES and path.name != "config.json":
        try:
            return arrival_from_label(path, name, namespace, source=str(path))
        except LabelError:
            pass  # not a label: maybe a bare config.json-like model file; read it as a model
    return _arrival_from_model(path, name, namespace)


def _arrival_from_model(path: Path, name: str | None, namespace: str) -> Arrival:
    from modeltrace.api._label import digest
    from modeltrace.api._lineage import fingerprint as build_fingerprint
    from modeltrace.api._models import inspect

    card = inspect(path)
    digests = digest(path)
    arrival = arrival_from_card(
        card,
        name=name or str(card.get("name") or path.name),
        namespace=namespace,
        source=str(path),
        digest=digests.oms_root,
    )
    arrival.oms_root, arrival.tensor_root = digests.oms_root, digests.tensor_root
    try:
        with tempfile.TemporaryDirectory(prefix="modeltrace-fp-") as folder:
            output = Path(folder) / "model.mtfp"
            build_fingerprint(path, output)
            arrival.fingerprint = output.read_bytes()
    except ModeltraceError:
        pass  # e.g. a bare config.json: registered with its card, without lineage evidence
    label_file = path / "modeltrace-label.json" if path.is_dir() else None
    if label_file is not None and label_file.is_file():
        _attach_label(arrival, label_file)
    return arrival


def arrival_from_card(
    card: dict[str, Any], *, name: str, namespace: str, source: str, digest: str
) -> Arrival:
    """An arrival from an architecture card: the licence and base models the model declares."""
    from modeltrace.registry.records import Arrival, DeclaredBase

    declared = card.get("declared") or {}
    origin = str(declared.get("source") or "model metadata")
    relation = declared.get("base_model_relation")
    return Arrival(
        name=name,
        namespace=namespace,
        source=source,
        digest=digest,
        card=card,
        license=declared.get("license"),
        declared=[DeclaredBase(str(base), relation, origin) for base in declared.get("base_model") or []],
    )


def arrival_from_fingerprint(
    path: Path, fp: Fingerprint, name: str | None, namespace: str, *, source: str
) -> Arrival:
    from modeltrace.registry.records import Arrival

    data = path.read_bytes()
    return Arrival(
        name=name or fp.name,
        namespace=namespace,
        source=source,
        digest="mtfp:" + hashlib.sha256(data).hexdigest(),
        card=card_from_fingerprint(fp),
        fingerprint=data,
    )


def card_from_fingerprint(fp: Fingerprint) -> dict[str, Any]:
    """The card a registry records for a model known only by its fingerprint: the parameter counts
    ``modeltrace inspect`` reports, which the fingerprint carries (header ``card``). Fingerprints
    written before it did are counted from their tensor inventory by the card's rules."""
    from modeltrace.fingerprint.build import CARD_KEYS

    header = fp.header
    model = header.get("model") or {}
    figures = header.get("card")
    if not isinstance(figures, dict):
        figures = _figures_from_inventory(header)
    card: dict[str, Any] = {"format": model.get("format"), "config": header.get("config")}
    card.update({key: _count(figures.get(key)) for key in CARD_KEYS})
    if card["layers"] is None:
        card["layers"] = len(fp.layers())
    return card


def _count(value: Any) -> int | None:
    """A figure from a fingerprint header (uploads are untrusted): a count, or None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _figures_from_inventory(header: dict[str, Any]) -> dict[str, Any]:
    from modeltrace.inspect.card import card_from_tensors
    from modeltrace.types import TensorInfo

    inventory = header.get("inventory")
    if header.get("inventory_truncated") or not isinstance(inventory, list):
        return {"total_params": header.get("parameters")}  # the plain tensor sum: the best there is
    try:
        tensors = [TensorInfo(str(name), tuple(int(n) for n in shape), str(dtype), 0, "")
                   for name, shape, dtype in inventory]  # fmt: skip
    except (TypeError, ValueError):
        return {"total_params": header.get("parameters")}
    if any(dim < 0 for info in tensors for dim in info.shape):
        return {"total_params": header.get("parameters")}
    config = header.get("config") if isinstance(header.get("config"), dict) else None
    try:
        card = card_from_tensors(tensors, config)
    except ModeltraceError:  # the header keeps only some config keys: too few to lay the model out
        card = card_from_tensors(tensors, None)
    return card.as_dict()


def arrival_from_label(path: Path, name: str | None, namespace: str, *, source: str) -> Arrival:
    from modeltrace.label.schema import read_label
    from modeltrace.registry.records import Arrival

    label = read_label(path)
    digests = label["model"].get("digests") or {}
    arrival = Arrival(
        name=name or str(label["model"]["name"]),
        namespace=namespace,
        source=source,
        digest=str(digests["oms_root"]),
        oms_root=digests.get("oms_root"),
        tensor_root=digests.get("tensor_root"),
        card={"architecture": label["model"].get("architecture"), "format": label["model"].get("format")},
    )
    _attach_label(arrival, path)
    return arrival


def _attach_label(arrival: Arrival, path: Path) -> None:
    from modeltrace.api._label import label_summary
    from modeltrace.label.schema import read_label
    from modeltrace.registry.records import DeclaredBase

    label = read_label(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise LabelError(f"Cannot read label '{path}': {error}") from error
    arrival.label = raw if isinstance(raw, dict) else dict(label)
    arrival.label_signed = isinstance(raw, dict) and ("payload" in raw or "dsseEnvelope" in raw)
    arrival.label_summary = label_summary(label)
    licence = label.get("license") or {}
    # The licence engine knows ids like ``llama3.1`` or ``kimi-k2.5`` that SPDX writes as LicenseRef-...
    spdx = licence.get("id")
    as_declared = (
        spdx if spdx and not str(spdx).startswith("LicenseRef-") else licence.get("declared_as") or spdx
    )
    arrival.license = arrival.license or as_declared
    if label.get("from_scratch"):
        arrival.from_scratch = True
    for base in label.get("base_models") or []:
        arrival.declared.append(DeclaredBase(str(base["id"]), base.get("relation"), "label"))
