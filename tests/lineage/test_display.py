"""The p-value as people read it: one formatter (lineage/display.py) for the CLI and the service pages."""

from __future__ import annotations

import math

from modeltrace import api
from modeltrace.lineage.display import format_p_value


def test_plain_numbers_then_powers_of_ten_below_float_range() -> None:
    assert format_p_value(math.log10(0.0123)) == "0.0123"
    assert format_p_value(0.0) == "1"
    assert format_p_value(-299.5) == "3.16e-300"
    assert format_p_value(-855.8) == "1e-856"  # 10**-855.8 is 0.0 as a float


def test_no_p_value_reads_n_a() -> None:
    assert format_p_value(None) == "n/a"
    assert format_p_value(math.nan) == "n/a"


def test_the_facade_and_the_cli_print_the_same_text() -> None:
    from modeltrace.cli._app import p_text

    assert api.format_p_value is format_p_value
    assert p_text(-855.8) == format_p_value(-855.8)


def test_the_html_report_prints_the_same_text() -> None:
    """render_html once wrote ``10^-855.8`` where the CLI and the service write ``1e-856``."""
    from modeltrace.lineage.report import render_html

    for log10_p in (-855.8, math.log10(0.0123), None):
        page = render_html({"suspect": "s", "base": "b", "log10_p": log10_p,
                            "p_value": None if log10_p is None else 10**log10_p})  # fmt: skip
        assert f"<b>p</b> = {format_p_value(log10_p)}\n" in page
    assert "10^" not in render_html({"log10_p": -855.8, "p_value": 0.0})
