"""A self-contained HTML report of one comparison: verdict, layer similarity heatmap, null distribution.

No JavaScript, no external assets: inline SVG drawn from the comparison dict, so the file can be
attached to a dispute as is.
"""

from __future__ import annotations

import html
import math
from typing import Any

from modeltrace.lineage.display import format_p_value


def _heat_colour(value: float) -> str:
    level = max(0.0, min(1.0, value))
    red, blue = int(255 * level), int(255 * (1 - level))
    return f"rgb({red},{int(80 + 60 * (1 - abs(level - 0.5) * 2))},{blue})"


def _heatmap(result: dict[str, Any]) -> str:
    matrix = result.get("similarity_matrix") or {}
    values = matrix.get("values") or []
    if not values:
        return "<p>No layer similarity matrix (comparison was inconclusive).</p>"
    rows, cols, cell = len(values), len(values[0]), 18
    mapped = {(e["suspect"], e["base"]) for e in result.get("block_map", [])}
    parts = [f'<svg width="{cols * cell + 90}" height="{rows * cell + 60}" font-size="10">']
    for i, row in enumerate(values):
        label = html.escape(str(matrix["suspect_blocks"][i]))
        parts.append(f'<text x="0" y="{40 + i * cell + 12}">S {label}</text>')
        for j, value in enumerate(row):
            x, y = 60 + j * cell, 30 + i * cell
            # null: a block pair the shortlist pairing did not compare (lineage/pairing.py)
            shown = "not compared" if value is None else f"{value:.3f}"
            title = f"S {matrix['suspect_blocks'][i]} vs B {matrix['base_blocks'][j]}: {shown}"
            stroke = (
                ' stroke="black" stroke-width="2"'
                if (matrix["suspect_blocks"][i], matrix["base_blocks"][j]) in mapped
                else ""
            )
            fill = "#ddd" if value is None else _heat_colour(value)
            parts.append(
                f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" '
                f'fill="{fill}"{stroke}><title>{html.escape(title)}</title></rect>'
            )
    for j, label in enumerate(matrix["base_blocks"]):
        parts.append(f'<text x="{60 + j * cell + 2}" y="24">{html.escape(str(label))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _null_histogram(result: dict[str, Any], test: str = "unit_signs") -> str:
    """A sign test's exact null, Binomial(n, 1/2) positive signs, with this pair's count marked.
    ``test`` is ``unit_signs`` (gated MLP units) or ``value_signs`` (attention value dimensions)."""
    signs = result.get(test) or {}
    n = int(signs.get("matched_units") or signs.get("matched_dimensions") or 0)
    if not n:
        why = "no gated MLP pair" if test == "unit_signs" else "no attention value projection"
        return f"<p>This test did not run ({why} with named roles).</p>"
    observed = int(signs["positive_signs"])
    pmf = [math.exp(math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + n * math.log(0.5))
           for k in range(n + 1)]  # fmt: skip
    width, height, peak = 480, 140, max(pmf)
    parts = [f'<svg width="{width + 20}" height="{height + 40}" font-size="10">']
    for k, mass in enumerate(pmf):
        bar = height * mass / peak
        parts.append(
            f'<rect x="{10 + k * width / (n + 1)}" y="{10 + height - bar}" '
            f'width="{max(width / (n + 1) - 0.5, 0.5)}" height="{bar}" fill="#888"/>'
        )
    x = 10 + (observed + 0.5) * width / (n + 1)
    parts.append(f'<line x1="{x}" x2="{x}" y1="5" y2="{height + 12}" stroke="red" stroke-width="2"/>')
    parts.append(f'<text x="{min(x + 4, width - 120)}" y="15" fill="red">this pair {observed}/{n}</text>')
    parts.append(f'<text x="10" y="{height + 30}">0</text>')
    parts.append(f'<text x="{width - 20}" y="{height + 30}">{n}</text></svg>')
    return "".join(parts)


def render_html(result: dict[str, Any]) -> str:
    def esc(value: Any) -> str:
        return html.escape(str(value))

    p_text = format_p_value(result.get("log10_p"))  # the CLI's and the service's text (lineage/display.py)
    exact = result.get("exact") or {}
    rows = "".join(
        f"<tr><td>{esc(e['suspect_block'])}</td><td>{esc(e['base_block'])}</td><td>{e['units']}</td>"
        f"<td>{e['fixed_points']}</td><td>{e['log10_p']:.1f}</td><td>{e['diagonal_cosine']:.3f}</td></tr>"
        for e in exact.get("per_layer", [])
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>modeltrace compare</title>
<style>body{{font-family:sans-serif;max-width:960px;margin:2em auto}}
td,th{{padding:2px 8px}}</style></head><body>
<h1>{esc(result.get("suspect"))} vs {esc(result.get("base"))}</h1>
<p><b>Verdict:</b> {esc(result.get("verdict"))} &nbsp; <b>p</b> = {esc(p_text)}
({esc(result.get("p_value_kind"))}) &nbsp; <b>relation:</b> {esc(result.get("relation"))} &nbsp;
<b>direction:</b> {esc(result.get("direction"))}</p>
<p>Null hypothesis: the suspect was initialised independently of the base. Every p-value is exact
(no empirical panel, no floor): the fixed-point test uses the exchangeability of hidden units (fixed
points of the unit matching, Fisher across layers); the unit-sign test uses the sign symmetry of gated
units (matched units' up projections agree in sign like fair coins, Binomial(n, 1/2)); the value-sign
test uses the sign symmetry of attention value dimensions (any architecture, same null); the
residual-dimension test uses the permutation symmetry of the residual stream (fixed points of the
matching of embedding columns, rencontres law). The final
p-value is the Bonferroni minimum of the tests that ran ({esc(result.get("paths_tried"))};
{esc(result.get("p_value_test"))} gave it).
Not detectable by these tests: a suspect to which every symmetry was applied on purpose (MLP units
permuted <i>and</i> sign-flipped, value dimensions sign-flipped or rotated within heads), or changed
beyond recognition; see docs/lineage.md.</p>
<h2>Layer map</h2><p>{esc(result.get("layer_map"))}</p>
<h2>Layer-by-layer similarity</h2>
<p>Mean best-match cosine of whitened unit features; mapped pairs outlined.</p>
{_heatmap(result)}
<h2>Null distribution (unit-sign test: positive signs among matched units)</h2>{_null_histogram(result)}
<h2>Null distribution (value-sign test: positive signs among matched value dimensions)</h2>
{_null_histogram(result, "value_signs")}
<h2>Residual-dimension test</h2><p>{_residual_text(result)}</p>
<h2>Fixed-point test, per layer</h2>
<table><tr><th>S block</th><th>B block</th><th>units</th><th>fixed points</th>
<th>log10 p</th><th>cosine</th></tr>{rows}</table>
<p>Bytes read: {result.get("bytes_read", 0):,}. Shared anchor tokens: {esc(result.get("shared_anchors"))}.</p>
</body></html>"""


def _residual_text(result: dict[str, Any]) -> str:
    residual = result.get("residual_dims")
    if not residual:
        return "Did not run (different hidden sizes, or a fingerprint older than format 3)."
    return (
        f"{residual['fixed_points']} of {residual['dimensions']} residual dimensions matched to themselves "
        f"(about 1 expected under the null); log10 p = {residual['log10_p']:.1f}; mean |cosine| of "
        f"same-index embedding columns {residual['diagonal_cosine']:.3f}."
    )
