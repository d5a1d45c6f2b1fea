"""Licence identifiers: Hugging Face model-card spellings to SPDX ids, and which are open. Data only.

The Hugging Face hub writes licences in lower case (``apache-2.0``) and has ids of its own for
model licences that are not in the SPDX list (``llama3``, ``gemma``); those become
``LicenseRef-<id>`` so that SPDX and CycloneDX documents stay valid.
"""

from __future__ import annotations

#: Lower-case spelling -> canonical SPDX licence id (the subset model and data cards use).
SPDX_IDS: dict[str, str] = {
    name.lower(): name
    for name in (
        "Apache-2.0", "MIT", "BSD-2-Clause", "BSD-3-Clause", "BSD-3-Clause-Clear", "ISC", "0BSD",
        "CC0-1.0", "CC-BY-2.0", "CC-BY-2.5", "CC-BY-3.0", "CC-BY-4.0", "CC-BY-SA-3.0", "CC-BY-SA-4.0",
        "CC-BY-NC-2.0", "CC-BY-NC-3.0", "CC-BY-NC-4.0", "CC-BY-NC-SA-2.0", "CC-BY-NC-SA-3.0",
        "CC-BY-NC-SA-4.0", "CC-BY-ND-4.0", "CC-BY-NC-ND-3.0", "CC-BY-NC-ND-4.0", "CDLA-Permissive-1.0",
        "CDLA-Permissive-2.0", "CDLA-Sharing-1.0", "ODC-By-1.0", "ODbL-1.0", "PDDL-1.0",
        "GPL-2.0-only", "GPL-2.0-or-later", "GPL-3.0-only", "GPL-3.0-or-later", "LGPL-2.1-only",
        "LGPL-3.0-only", "AGPL-3.0-only", "MPL-2.0", "EPL-1.0", "EPL-2.0", "ECL-2.0", "AFL-3.0",
        "Artistic-2.0", "BSL-1.0", "OSL-3.0", "Unlicense", "WTFPL", "Zlib", "NCSA", "PostgreSQL",
        "LPPL-1.3c", "GFDL-1.3-only", "EUPL-1.2", "C-UDA-1.0", "EUPL-1.1",
    )
}  # fmt: skip

#: Hugging Face spellings that differ from the SPDX id.
HF_ALIASES: dict[str, str] = {
    "gpl-3.0": "GPL-3.0-only",
    "gpl-2.0": "GPL-2.0-only",
    "gpl": "GPL-3.0-or-later",
    "lgpl-3.0": "LGPL-3.0-only",
    "lgpl-2.1": "LGPL-2.1-only",
    "lgpl-lr": "LicenseRef-lgpl-lr",
    "agpl-3.0": "AGPL-3.0-only",
    "gfdl": "GFDL-1.3-only",
    "bsd": "BSD-3-Clause",
    "bsd-3-clause-clear": "BSD-3-Clause-Clear",
    "cc": "LicenseRef-cc",
    "odc-by": "ODC-By-1.0",
    "odbl": "ODbL-1.0",
    "pddl": "PDDL-1.0",
}

#: Licences the Model Openness Framework accepts as open: OSI-approved for code, open-data
#: licences (and permissive OSI licences) for data, weights and documents. Non-commercial,
#: no-derivatives and use-restricted (RAIL, vendor) licences are not open.
OPEN_LICENSES: frozenset[str] = frozenset(
    {
        "Apache-2.0", "MIT", "BSD-2-Clause", "BSD-3-Clause", "BSD-3-Clause-Clear", "ISC", "0BSD",
        "CC0-1.0", "CC-BY-2.0", "CC-BY-2.5", "CC-BY-3.0", "CC-BY-4.0", "CC-BY-SA-3.0", "CC-BY-SA-4.0",
        "CDLA-Permissive-1.0", "CDLA-Permissive-2.0", "CDLA-Sharing-1.0", "ODC-By-1.0", "ODbL-1.0",
        "PDDL-1.0", "GPL-2.0-only", "GPL-2.0-or-later", "GPL-3.0-only", "GPL-3.0-or-later",
        "LGPL-2.1-only", "LGPL-3.0-only", "AGPL-3.0-only", "MPL-2.0", "EPL-2.0", "ECL-2.0",
        "AFL-3.0", "Artistic-2.0", "BSL-1.0", "OSL-3.0", "Unlicense", "Zlib", "NCSA", "PostgreSQL",
        "EUPL-1.2", "GFDL-1.3-only",
    }
)  # fmt: skip

#: Values that say nothing about the licence.
UNKNOWN = frozenset({"", "unknown", "noassertion", "none", "other"})
