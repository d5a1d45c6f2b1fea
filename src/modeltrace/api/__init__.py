"""The public Python API of modeltrace: one facade over every layer.

The CLI and the service call only this package (and :mod:`modeltrace.errors`). Each submodule is
the facade of one area; functions there validate inputs, open files through ``formats`` and hand
values in memory to the pure layers (fingerprint, lineage, licences).
"""

from __future__ import annotations

from modeltrace.api._label import (
    EXPORT_FORMATS,
    LABEL_EXPORT_FORMATS,
    LABEL_RELATIONS,
    ComputeStage,
    Label,
    LevelReport,
    ModelDigest,
    VerifyReport,
    digest,
    label_create,
    label_export,
    label_import,
    label_keygen,
    label_read,
    label_sign,
    label_sign_sigstore,
    label_summary,
    label_verify,
    label_verify_sigstore,
    label_write,
)
from modeltrace.api._licenses import (
    check_license,
    list_licenses,
    show_license,
)
from modeltrace.api._lineage import (
    DEFAULT_ALPHA,
    Fingerprint,
    Progress,
    compare,
    fingerprint,
    identify,
    load_or_fingerprint,
)
from modeltrace.api._models import (
    build_demo_zoo,
    demo_zoo_members,
    inspect,
    symlink_policy,
    version,
)
from modeltrace.api._probe import (
    add_tokenizer,
    probe,
    probe_set,
    remove_tokenizer,
    tokenizer_library,
)
from modeltrace.api._zoo import (
    build_zoo,
    load_zoo_manifest,
    run_zoo_pairs,
    zoo_accuracy,
)

__all__ = [
    "DEFAULT_ALPHA",
    "EXPORT_FORMATS",
    "LABEL_EXPORT_FORMATS",
    "LABEL_RELATIONS",
    "ComputeStage",
    "Fingerprint",
    "Label",
    "LevelReport",
    "ModelDigest",
    "Progress",
    "VerifyReport",
    "add_tokenizer",
    "build_demo_zoo",
    "build_zoo",
    "check_license",
    "compare",
    "demo_zoo_members",
    "digest",
    "fingerprint",
    "identify",
    "inspect",
    "label_create",
    "label_export",
    "label_import",
    "label_keygen",
    "label_read",
    "label_sign",
    "label_sign_sigstore",
    "label_summary",
    "label_verify",
    "label_verify_sigstore",
    "label_write",
    "list_licenses",
    "load_or_fingerprint",
    "load_zoo_manifest",
    "probe",
    "probe_set",
    "remove_tokenizer",
    "run_zoo_pairs",
    "show_license",
    "symlink_policy",
    "tokenizer_library",
    "version",
    "zoo_accuracy",
]
