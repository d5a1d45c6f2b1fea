"""The public Python API of modeltrace: one facade over every layer.

The CLI and the service call only this package (and :mod:`modeltrace.errors`). Each submodule is
the facade of one area; functions there validate inputs, open files through ``formats`` and hand
values in memory to the pure layers (fingerprint, lineage, licences).

Names load on first use (PEP 562): ``api.compare`` imports the lineage area (numpy, scipy) when it
is first looked up, not when ``modeltrace.api`` is imported, so ``modeltrace --help`` and
``--version`` start in a fraction of the time. To add a name, list it under its facade module in
``_FACADES`` and in the ``TYPE_CHECKING`` imports below (a test checks that both agree).
"""

# The TYPE_CHECKING imports exist for type checkers; __all__ is built from _FACADES, which ruff cannot see.
# ruff: noqa: F401

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# Facade module -> the public names it provides. Kept sorted by module; one entry per area.
_FACADES: dict[str, tuple[str, ...]] = {
    "_about": ("version",),
    # Option defaults shown by `--help`: no area (numpy, scipy) loads to read them.
    "_defaults": ("DEFAULT_ALPHA",),
    "_label": (
        "ComputeStage",
        "Label",
        "LevelReport",
        "ModelDigest",
        "VerifyReport",
        "digest",
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
    ),
    # The label vocabulary is shown in `label --help`; it lives apart from the label machinery.
    "_label_vocabulary": ("EXPORT_FORMATS", "LABEL_EXPORT_FORMATS", "LABEL_RELATIONS"),
    "_licenses": ("check_license", "list_licenses", "show_license"),
    "_lineage": (
        "Comparison",
        "Fingerprint",
        "Progress",
        "compare",
        "fingerprint",
        "identify",
        "load_or_fingerprint",
    ),
    # How a p-value reads for people; apart from the lineage machinery (no numpy to print a listing).
    "_lineage_text": ("format_p_value",),
    "_models": ("build_demo_zoo", "demo_zoo_members", "inspect", "symlink_policy"),
    "_probe": ("add_tokenizer", "probe", "probe_set", "remove_tokenizer", "tokenizer_library"),
    "_registry": (
        "create_service",
        "open_registry",
        "registry_add",
        "registry_add_upload",
        "registry_edge",
        "registry_license_check",
        "registry_lineage",
        "registry_list",
        "registry_remove",
        "registry_show",
        "registry_url",
        "serve",
        "token_create",
        "token_namespace",
    ),
    "_registry_detect": ("registry_identify",),
    "_royalties": ("royalties_model_ids", "royalties_report", "royalties_statement", "royalties_terms_add"),
    "_scan": ("registry_graph", "scan"),
    "_zoo": (
        "build_seed_case",
        "build_zoo",
        "load_zoo_manifest",
        "run_zoo_pairs",
        "seed_case_demo",
        "zoo_accuracy",
    ),
}
_MODULE_OF = {name: module for module, names in _FACADES.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> object:
    """Import the facade module that defines ``name`` on first use, then cache the value here."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # what type checkers and editors see; at run time __getattr__ provides these
    from modeltrace.api._about import version
    from modeltrace.api._defaults import DEFAULT_ALPHA
    from modeltrace.api._label import (
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
    from modeltrace.api._label_vocabulary import EXPORT_FORMATS, LABEL_EXPORT_FORMATS, LABEL_RELATIONS
    from modeltrace.api._licenses import check_license, list_licenses, show_license
    from modeltrace.api._lineage import (
        Comparison,
        Fingerprint,
        Progress,
        compare,
        fingerprint,
        identify,
        load_or_fingerprint,
    )
    from modeltrace.api._lineage_text import format_p_value
    from modeltrace.api._models import build_demo_zoo, demo_zoo_members, inspect, symlink_policy
    from modeltrace.api._probe import add_tokenizer, probe, probe_set, remove_tokenizer, tokenizer_library
    from modeltrace.api._registry import (
        create_service,
        open_registry,
        registry_add,
        registry_add_upload,
        registry_edge,
        registry_license_check,
        registry_lineage,
        registry_list,
        registry_remove,
        registry_show,
        registry_url,
        serve,
        token_create,
        token_namespace,
    )
    from modeltrace.api._registry_detect import registry_identify
    from modeltrace.api._royalties import (
        royalties_model_ids,
        royalties_report,
        royalties_statement,
        royalties_terms_add,
    )
    from modeltrace.api._scan import registry_graph, scan
    from modeltrace.api._zoo import (
        build_seed_case,
        build_zoo,
        load_zoo_manifest,
        run_zoo_pairs,
        seed_case_demo,
        zoo_accuracy,
    )
