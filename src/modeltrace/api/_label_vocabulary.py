"""The facade for the label vocabulary: cheap to import, for help texts and argument checks."""

from __future__ import annotations

from modeltrace.label.vocabulary import EXPORT_FORMATS, RELATIONS

LABEL_EXPORT_FORMATS = EXPORT_FORMATS
LABEL_RELATIONS = RELATIONS

__all__ = ["EXPORT_FORMATS", "LABEL_EXPORT_FORMATS", "LABEL_RELATIONS"]
