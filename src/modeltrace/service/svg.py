"""Server-side SVG for the web UI: the lineage graph and the layer-similarity heatmap.

Drawn here rather than by a JavaScript library so pages work without scripts and nothing is vendored.
Every piece of text that reaches the SVG passes through ``escape`` (model names come from uploads).
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup, escape

NODE_W, NODE_H, GAP_X, GAP_Y, PAD = 190, 40, 30, 70, 20


def _label(text: str, limit: int = 26) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _layers(
    tree: dict[str, Any],
) -> tuple[dict[str, int], list[tuple[str, str, dict[str, Any]]], dict[str, str]]:
    """Depth of every node (longest path from the root), the edges, and display names; a node's key
    is its model id, or ``?name`` for a declared base that is not registered."""
    depth: dict[str, int] = {}
    names: dict[str, str] = {}
    edges: list[tuple[str, str, dict[str, Any]]] = []

    def key(node: dict[str, Any]) -> str:
        return str(node["model_id"]) if node.get("model_id") is not None else "?" + node["model"]

    def walk(node: dict[str, Any], level: int) -> None:
        k = key(node)
        names[k] = node["model"]
        if depth.get(k, -1) >= level:
            return
        depth[k] = level
        for entry in node["bases"]:
            child = entry["node"]
            edges.append((k, key(child), entry))
            walk(child, level + 1)

    walk(tree, 0)
    unique = {(a, b, e["kind"]): (a, b, e) for a, b, e in edges}
    return depth, list(unique.values()), names


def lineage_svg(lineage: dict[str, Any]) -> Markup:
    """Ancestors above, the model at the bottom; detected edges solid, declared dashed, conflicts red."""
    depth, edges, names = _layers(lineage["tree"])
    conflict_pairs = {(str(c["model_id"]), str(c["base_id"])) for c in lineage["conflicts"]}
    conflict_nodes = {str(c["model_id"]) for c in lineage["conflicts"]}
    rows: dict[int, list[str]] = {}
    for k, level in sorted(depth.items(), key=lambda item: item[0]):
        rows.setdefault(level, []).append(k)
    levels = max(rows) + 1
    widest = max(len(row) for row in rows.values())
    width = PAD * 2 + widest * NODE_W + (widest - 1) * GAP_X
    height = PAD * 2 + levels * NODE_H + (levels - 1) * GAP_Y
    position: dict[str, tuple[float, float]] = {}
    for level, row in rows.items():
        span = len(row) * NODE_W + (len(row) - 1) * GAP_X
        left = (width - span) / 2
        y = height - PAD - NODE_H - level * (NODE_H + GAP_Y)
        for index, k in enumerate(row):
            position[k] = (left + index * (NODE_W + GAP_X), y)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="lineage" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="lineage graph">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="9" markerHeight="9" '
        'markerUnits="userSpaceOnUse" orient="auto-start-reverse">'
        '<path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>',
    ]
    for index, (child, base, entry) in enumerate(edges):
        (cx, cy), (bx, by) = position[child], position[base]
        offset = 8 if entry["kind"] == "declared" else -8
        x1, y1 = cx + NODE_W / 2 + offset, cy
        x2, y2 = bx + NODE_W / 2 + offset, by + NODE_H
        conflict = entry["kind"] == "detected" and (child, base) in conflict_pairs
        css = f"edge {entry['kind']}" + (" conflict" if conflict else "")
        title = f"{names[child]} \u2192 {names[base]}: {entry['kind']}"
        if entry["kind"] == "detected":
            title += (
                f" {entry.get('verdict')}, log10 p = {entry.get('log10_p') or 0:.1f} ({entry.get('test')})"
            )
        if entry.get("relation"):
            title += f"; {entry['relation']}"
        parts.append(
            f'<line class="{css}" id="edge-{index}" x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
            f'marker-end="url(#arrow)"><title>{escape(title)}</title></line>'
        )
    for k, (x, y) in position.items():
        css = "node" + (" root" if depth[k] == 0 else "") + (" unregistered" if k.startswith("?") else "")
        css += " conflict" if k in conflict_nodes else ""
        name = names[k]
        link_open = "" if k.startswith("?") else f'<a href="/models/{escape(k)}">'
        link_close = "" if k.startswith("?") else "</a>"
        parts.append(
            f'{link_open}<g class="{css}">'
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{NODE_W}" height="{NODE_H}" rx="6"/>'
            f'<text x="{x + NODE_W / 2:.1f}" y="{y + NODE_H / 2 + 5:.1f}" text-anchor="middle">'
            f"{escape(_label(name))}</text><title>{escape(name)}</title></g>{link_close}"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def heatmap_svg(matrix: dict[str, Any] | None, layer_map: Any = None) -> Markup:
    """Rows: the suspect's MLP blocks; columns: the base's; colour: mean best-match similarity."""
    if not matrix or not matrix.get("values"):
        return Markup("<p>No similarity matrix stored for this edge.</p>")
    values = matrix["values"][:64]
    rows, cols = matrix["suspect_blocks"][:64], matrix["base_blocks"][:64]
    longest = max((len(_label(str(name), 14)) for name in [*rows, *cols]), default=1)
    cell = 28 if max(len(rows), len(cols)) <= 16 else 14
    left = top = 14 + 6 * longest
    width, height = left + cell * len(cols) + 10, top + cell * len(rows) + 10
    flat = [v for row in values for v in row if v is not None]
    low, high = (min(flat), max(flat)) if flat else (0.0, 1.0)
    span = (high - low) or 1.0
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="heatmap" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="layer similarity heatmap">'
    ]
    for j, name in enumerate(cols):
        x = left + j * cell + cell / 2
        short = escape(_label(str(name), 14))
        parts.append(
            f'<text class="axis" transform="translate({x:.1f},{top - 6}) rotate(-60)">{short}</text>'
        )
    for i, name in enumerate(rows):
        y = top + i * cell + cell * 0.75
        short = escape(_label(str(name), 14))
        parts.append(f'<text class="axis" x="{left - 6}" y="{y:.1f}" text-anchor="end">{short}</text>')
        for j, value in enumerate(values[i][: len(cols)]):
            shade = 0.0 if value is None else (value - low) / span
            colour = f"rgb({int(255 - 200 * shade)},{int(255 - 120 * shade)},{int(255 - 40 * shade)})"
            parts.append(
                f'<rect x="{left + j * cell}" y="{top + i * cell}" width="{cell - 1}" height="{cell - 1}" '
                f'fill="{colour}"><title>{escape(str(name))} vs {escape(str(cols[j]))}: '
                f"{escape(str(value))}</title></rect>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))
