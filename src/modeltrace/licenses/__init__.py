"""Licence knowledge base (data/*.yaml, no logic) and the engine that walks a model's ancestry.

- :mod:`.catalog`: the licence files, validated against ``schema.json``, as :class:`License` values;
- :mod:`.lineage`: the ancestry tree (:class:`LineageNode`) built from parsed data;
- :mod:`.sources`: reading lineage files from disk (model cards and labels are read by the facade,
  ``api._license_sources``, with the ``formats`` and ``label`` readers: this package imports no reader);
- :mod:`.engine`: ancestry x deployment profile -> obligations, violations, tier (pure).
"""

from modeltrace.licenses.catalog import Catalog, License, load_catalog
from modeltrace.licenses.engine import ComplianceReport, DeploymentProfile, Finding, check_compliance
from modeltrace.licenses.lineage import LineageNode, lineage_from_data

__all__ = [
    "Catalog",
    "ComplianceReport",
    "DeploymentProfile",
    "Finding",
    "License",
    "LineageNode",
    "check_compliance",
    "lineage_from_data",
    "load_catalog",
]
