"""Verify a signed label against a model: signature, then every file and every tensor by name."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modeltrace.errors import LabelError, UsageError
from modeltrace.label import file_digest, tensor_digest
from modeltrace.label.digest import Progress, digest_model
from modeltrace.label.schema import MAX_LABEL_BYTES, Label, is_sigstore_bundle
from modeltrace.label.signing import PublicKey, key_id, open_envelope
from modeltrace.label.sigstore_signing import open_bundle


@dataclass(frozen=True)
class Change:
    """One difference between the label and the model on disk."""

    kind: str  # "file" or "tensor"
    change: str  # "changed", "added" or "removed"
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.change}: {self.name}"


@dataclass
class VerifyReport:
    model: str
    label_name: str
    key_id: str
    expected: dict[str, str | None]
    actual: dict[str, str | None]
    changes: list[Change] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    lineage: list[dict[str, Any]] = field(default_factory=list)
    #: Who signed, for a Sigstore bundle (SigstoreSigner.as_dict()); None for a local key.
    sigstore: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return not self.changes and not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "model": self.model,
            "label": self.label_name,
            "signature": {"valid": True, "keyid": self.key_id, **self._sigstore_part()},
            "expected": self.expected,
            "actual": self.actual,
            "changes": [{"kind": c.kind, "change": c.change, "name": c.name} for c in self.changes],
            "problems": list(self.problems),
            **({"lineage": self.lineage} if self.lineage else {}),
        }

    def _sigstore_part(self) -> dict[str, Any]:
        return {"sigstore": self.sigstore} if self.sigstore is not None else {}


def diff_digests(kind: str, expected: dict[str, str], actual: dict[str, str]) -> list[Change]:
    """Every name whose digest differs, that appeared, or that disappeared, sorted by name."""
    changes = [
        Change(kind, "changed", name)
        for name in expected
        if name in actual and actual[name] != expected[name]
    ]
    changes += [Change(kind, "removed", name) for name in expected if name not in actual]
    changes += [Change(kind, "added", name) for name in actual if name not in expected]
    return sorted(changes, key=lambda change: (change.name, change.change))


def _check_label_consistency(label: Label) -> None:
    """The per-file and per-tensor lists must hash to the roots the signature names."""
    digests = label["model"]["digests"]
    files = digests.get("files")
    if not files:
        raise LabelError("the label lists no per-file digests; re-create it with `modeltrace label create`")
    if file_digest.root_of(files) != digests["oms_root"]:
        raise LabelError("the label's file list does not hash to its oms_root: the label is inconsistent")
    tensors = digests.get("tensors") or {}
    if tensors and tensor_digest.root_of(tensors) != digests.get("tensor_root"):
        raise LabelError(
            "the label's tensor list does not hash to its tensor_root: the label is inconsistent"
        )


def _read_envelope(path: Path) -> Any:
    try:
        if path.stat().st_size > MAX_LABEL_BYTES:
            raise LabelError(f"signed label '{path}' is over {MAX_LABEL_BYTES:,} bytes")
        return json.loads(path.read_bytes())
    except OSError as error:
        raise LabelError(f"Cannot read signed label '{path}': {error.strerror}") from error
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise LabelError(f"signed label '{path}' is not JSON ({error})") from error


def require_key_signed(signed_label: str | Path) -> Any:
    """The parsed envelope of ``signed_label``; a UsageError naming the right flags when it is a
    Sigstore bundle (checked before any key is loaded, so that mistake is the one reported)."""
    envelope = _read_envelope(Path(signed_label).expanduser().resolve())
    if is_sigstore_bundle(envelope):
        raise UsageError(
            f"'{signed_label}' is a Sigstore bundle (`label sign --sigstore`), not a key-signed "
            "envelope: verify it with --sigstore-identity and --sigstore-issuer instead of --pubkey"
        )
    return envelope


def verify_model(
    model: str | Path,
    signed_label: str | Path,
    public_key: PublicKey,
    *,
    workers: int | None = None,
    progress: Progress | None = None,
) -> tuple[VerifyReport, Label]:
    """Check the signature, recompute both digests and list every difference by name.

    Signature failures raise (SignatureInvalidError); content differences are reported in the
    returned report (``report.ok`` is False) so the caller can show all of them at once.
    """
    envelope_path = Path(signed_label).expanduser().resolve()
    envelope = require_key_signed(envelope_path)
    _statement, label = open_envelope(envelope, public_key)
    report = compare_with_model(
        model, envelope_path, label, signer_key_id=key_id(public_key), workers=workers, progress=progress
    )
    return report, label


def verify_model_sigstore(
    model: str | Path,
    signed_label: str | Path,
    *,
    identity: str,
    issuer: str,
    trust_config: str | Path | None = None,
    staging: bool = False,
    offline: bool = False,
    workers: int | None = None,
    progress: Progress | None = None,
) -> tuple[VerifyReport, Label]:
    """As :func:`verify_model` for a Sigstore bundle signed by ``identity`` via OIDC ``issuer``."""
    bundle_path = Path(signed_label).expanduser().resolve()
    _statement, label, signer = open_bundle(
        _read_envelope(bundle_path),
        identity=identity,
        issuer=issuer,
        trust_config=trust_config,
        staging=staging,
        offline=offline,
    )
    report = compare_with_model(
        model, bundle_path, label, signer_key_id=signer.key_id, workers=workers, progress=progress
    )
    report.sigstore = signer.as_dict()
    return report, label


def compare_with_model(
    model: str | Path,
    signed_path: Path,
    label: Label,
    *,
    signer_key_id: str,
    workers: int | None = None,
    progress: Progress | None = None,
) -> VerifyReport:
    """Recompute both digests of ``model`` and name every file and tensor that differs from ``label``.

    ``label`` comes from a signature already checked; ``signed_path`` is the signed file, skipped
    when it lies inside the model folder.
    """
    model_path = Path(model).expanduser().resolve()
    _check_label_consistency(label)
    digests = label["model"]["digests"]
    ignored = list(digests.get("ignored_paths") or file_digest.GIT_PATHS)
    # A signed label kept inside the model folder is not part of the model.
    if signed_path.is_relative_to(model_path) and signed_path != model_path:
        ignored.append(signed_path.relative_to(model_path).as_posix())
    want_tensors = bool(digests.get("tensors"))
    actual = digest_model(
        model_path, tensors=want_tensors, ignored=ignored, workers=workers, progress=progress, strict=False
    )
    report = VerifyReport(
        model=str(model_path),
        label_name=label["model"]["name"],
        key_id=signer_key_id,
        expected={"oms_root": digests["oms_root"], "tensor_root": digests.get("tensor_root")},
        actual={"oms_root": actual.oms_root, "tensor_root": actual.tensor_root},
    )
    report.changes = diff_digests("file", digests["files"], actual.files.files)
    if want_tensors:
        if actual.tensors is None:
            report.problems.append(
                f"the weights could not be read, so no tensor could be checked: {actual.tensor_error}"
            )
        else:
            report.changes += diff_digests("tensor", digests["tensors"], actual.tensors.tensors)
    return report
