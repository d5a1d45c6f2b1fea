"""The architecture card as a two-column table: ``modeltrace inspect`` and ``modeltrace demo`` print it."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from modeltrace.cli._app import console, human_bytes, human_count


def _count(value: int | None) -> str:
    return "unknown" if value is None else f"{human_count(value)}  ({value:,})"


def _or_unknown(value: object) -> str:
    return "unknown" if value is None else f"{value:,}" if isinstance(value, int) else str(value)


def _parameter_rows(card: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [("Total parameters", _count(card["total_params"]))]
    if card.get("config_total_params") not in (None, card["total_params"]):
        rows.append(("  per config.json", _count(card["config_total_params"])))
    rate = card["activation_rate"]
    rows.append(("Active per token", _count(card["active_params"])))
    if card.get("experts") and card.get("active_params") is not None:
        # Makers differ in what "active" counts; docs/inspect.md says who counts which way.
        rows.append(("  without input embedding", _count(card["active_params_excluding_input_embedding"])))
        rows.append(("  without embedding and head", _count(card["active_params_excluding_embeddings"])))
    rows.append(("Activation rate", "unknown" if rate is None else f"{rate:.1%}"))
    if card.get("mtp_params"):
        rows.append(("MTP (not in totals)", _count(card["mtp_params"])))
    return rows


def _shape_rows(card: dict[str, Any]) -> list[tuple[str, str]]:
    heads = f"{_or_unknown(card['attention_heads'])} / {_or_unknown(card['kv_heads'])}"
    if card.get("attention"):
        heads += f"  ({card['attention'].upper()})"
    rows = [
        ("Layers", _or_unknown(card["layers"])),
        ("Hidden size", _or_unknown(card["hidden_size"])),
        ("Heads / KV heads", heads),
        ("Vocabulary", _or_unknown(card["vocab_size"])),
        ("Context length", _or_unknown(card["context_length"])),
    ]
    experts = card.get("experts")
    if experts:
        rows.append(
            (
                "Experts",
                f"{experts['routed']} routed, {experts['shared']} shared, "
                f"{_or_unknown(experts['per_token'])} per token, in {experts['moe_layers']} layers",
            )
        )
    return rows + _structure_rows(card)


def _structure_rows(card: dict[str, Any]) -> list[tuple[str, str]]:
    """What the config's fields state beyond the sizes: MLA ranks, sparse indexer, towers."""
    rows = []
    structure = card.get("structure") or {}
    mla = structure.get("mla")
    if mla:
        rows.append((
            "Latent attention",
            f"q_lora_rank {_or_unknown(mla['q_lora_rank'])}, kv_lora_rank {mla['kv_lora_rank']}, "
            f"head key {mla['qk_nope_head_dim']}+{mla['qk_rope_head_dim']} rotary, value {mla['v_head_dim']}",
        ))  # fmt: skip
    indexer = structure.get("indexer")
    if indexer:
        rows.append((
            "Sparse indexer",
            f"{indexer['heads']} heads of {indexer['head_dim']}, top {_or_unknown(indexer['topk'])} tokens",
        ))  # fmt: skip
    if structure.get("dense_layers"):
        rows.append(("Dense MLP layers", ", ".join(map(str, structure["dense_layers"]))))
    for tower in card.get("towers") or []:
        params = "parameters unknown (no weights)" if tower["params"] is None else _count(tower["params"])
        sizes = f"{_or_unknown(tower['layers'])} layers, hidden {_or_unknown(tower['hidden_size'])}"
        rows.append((f"{tower['kind'].capitalize()} tower", f"{sizes}; {params}; not in the totals"))
    return rows


def _file_rows(card: dict[str, Any]) -> list[tuple[str, str]]:
    if card.get("tensor_count") is None:
        return [("Weights", "none (counted from config.json)")]
    dtypes = ", ".join(f"{dtype} x{count}" for dtype, count in card["dtypes"].items())
    return [
        ("Tensors", f"{card['tensor_count']:,}"),
        ("Size on disk", human_bytes(card["total_bytes"])),
        ("Dtypes", dtypes),
        *_quantization_rows(card.get("quantization")),
    ]


def _quantization_rows(quantization: dict[str, Any] | None) -> list[tuple[str, str]]:
    """``Quantisation``: what the tensors hold (most common encoding, how many weights), and what
    config.json declares when the tensors were not read or say nothing."""
    if not quantization:
        return []
    if quantization.get("scheme"):
        others = len(quantization.get("encodings") or {}) - 1
        text = f"{quantization['scheme']} ({quantization['quantised_tensors']:,} weights"
        text += f"; {others} other encoding{'s' if others > 1 else ''})" if others > 0 else ")"
        return [("Quantisation", text)]
    declared = quantization.get("declared") or {}
    return [("Quantisation", f"{declared.get('quant_method', 'unknown')} (declared in config.json)")]


def _declared_rows(declared: dict[str, Any]) -> list[tuple[str, str]]:
    base = ", ".join(declared.get("base_model") or []) or "none declared"
    relation = declared.get("base_model_relation")
    rows = [("Base model", f"{base} ({relation})" if relation else base)]
    rows.append(("License", declared.get("license") or "none declared"))
    if declared.get("source"):
        rows.append(("Declared in", declared["source"]))
    return rows


def print_card(card: dict[str, Any]) -> None:
    """Print an ``api.inspect`` result as a two-column Rich table."""
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    architecture = card.get("architecture") or "unknown"
    if card.get("family") and card["family"] != architecture:
        architecture += f"  (family {card['family']})"
    rows = [("Format", card["format"]), ("Architecture", architecture)]
    rows += _parameter_rows(card) + _shape_rows(card) + _file_rows(card) + _declared_rows(card["declared"])
    for label, value in rows:
        table.add_row(label, value)
    console.print(table)
    for note in card.get("notes", []):
        console.print(f"[yellow]note:[/] {note}")
