"""The pooled licensing repository's arithmetic: attribution by declared compute, fee statements.

Pure values in, values out: storage of terms and reports belongs to the registry, labels come from
the label layer. See docs/royalties.md for the method and its assumptions.
"""

from modeltrace.royalties.ancestry import (
    AncestryShares,
    Attribution,
    Edge,
    Unresolved,
    attribute,
    declared_split,
    fraction_text,
)
from modeltrace.royalties.statement import (
    DetectedEdge,
    FeeSchedule,
    RevenueReport,
    Statement,
    StatementLine,
    build_statement,
    parse_money,
    parse_period,
    parse_rate,
    to_cents,
)

__all__ = [
    "AncestryShares",
    "Attribution",
    "DetectedEdge",
    "Edge",
    "FeeSchedule",
    "RevenueReport",
    "Statement",
    "StatementLine",
    "Unresolved",
    "attribute",
    "build_statement",
    "declared_split",
    "fraction_text",
    "parse_money",
    "parse_period",
    "parse_rate",
    "to_cents",
]
