"""The words a label accepts, in a module of their own.

``modeltrace label --help`` lists them; keeping them apart from the label machinery (jsonschema,
cryptography) lets the CLI show them without loading it.
"""

from __future__ import annotations

#: ``base_model_relation`` values a label accepts (``label create --relation``).
RELATIONS = ("finetune", "adapter", "merge", "quantized", "distilled", "upcycled", "continued-pretrain")
#: Formats ``label export`` writes: SPDX 3.0.1 (AI profile), CycloneDX 1.6 ML-BOM, HF card, MOF.
EXPORT_FORMATS = ("spdx", "cyclonedx", "hf-card", "mof")
