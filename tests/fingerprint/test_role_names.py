"""Roles by name in the common encoder and decoder naming schemes, each checked on a tiny model written
with that layout's real tensor names (as Hugging Face transformers names them)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from modeltrace.fingerprint.build import build_fingerprint
from modeltrace.fingerprint.roles import DECODER_LAYER_OFFSET
from modeltrace.formats.detect import open_model
from modeltrace.lineage.compare import compare_fingerprints

V, H, U, LAYERS = 96, 32, 64, 2  # vocabulary, hidden size, MLP units, layers
Shapes = dict[str, tuple[int, ...]]


def _bert_like(prefix: str, value: str, attention_norm: str) -> Shapes:
    shapes: Shapes = {f"{prefix}embeddings.word_embeddings.weight": (V, H),
                      f"{prefix}embeddings.position_embeddings.weight": (64, H),
                      f"{prefix}embeddings.LayerNorm.weight": (H,)}  # fmt: skip
    for layer in range(LAYERS):
        p = f"{prefix}encoder.layer.{layer}."
        shapes.update({p + value: (H, H), p + attention_norm: (H,), p + "intermediate.dense.weight": (U, H),
                       p + "output.dense.weight": (H, U), p + "output.LayerNorm.weight": (H,)})  # fmt: skip
    return shapes


def mpnet() -> Shapes:
    shapes = _bert_like("", "attention.attn.v.weight", "attention.LayerNorm.weight")
    for layer in range(LAYERS):
        for part in "qko":
            shapes[f"encoder.layer.{layer}.attention.attn.{part}.weight"] = (H, H)
    shapes["encoder.relative_attention_bias.weight"] = (32, 4)
    return shapes


def roberta() -> Shapes:  # XLM-R has the same names
    return _bert_like("roberta.", "attention.self.value.weight", "attention.output.LayerNorm.weight")


def deberta_v2() -> Shapes:
    shapes = _bert_like("deberta.", "attention.self.value_proj.weight", "attention.output.LayerNorm.weight")
    shapes["deberta.encoder.rel_embeddings.weight"] = (V, H)  # as many rows as tokens: must not be taken
    return shapes


def t5_v1_1() -> Shapes:
    shapes: Shapes = {"shared.weight": (V, H), "lm_head.weight": (V, H)}
    for stack, ff in (("encoder", 1), ("decoder", 2)):
        for layer in range(LAYERS):
            p = f"{stack}.block.{layer}.layer."
            shapes.update({f"{p}0.SelfAttention.{part}.weight": (H, H) for part in "qkvo"})
            shapes.update({f"{p}0.layer_norm.weight": (H,), f"{p}{ff}.layer_norm.weight": (H,),
                           f"{p}{ff}.DenseReluDense.wi_0.weight": (U, H),
                           f"{p}{ff}.DenseReluDense.wi_1.weight": (U, H),
                           f"{p}{ff}.DenseReluDense.wo.weight": (H, U)})  # fmt: skip
            if stack == "decoder":
                shapes.update({f"{p}1.EncDecAttention.{part}.weight": (H, H) for part in "qkvo"})
    return shapes


def falcon() -> Shapes:
    shapes: Shapes = {"transformer.word_embeddings.weight": (V, H), "lm_head.weight": (V, H)}
    for layer in range(LAYERS):
        p = f"transformer.h.{layer}."
        shapes.update({p + "input_layernorm.weight": (H,),
                       p + "self_attention.query_key_value.weight": (H + 16, H),
                       p + "self_attention.dense.weight": (H, H), p + "mlp.dense_h_to_4h.weight": (U, H),
                       p + "mlp.dense_4h_to_h.weight": (H, U)})  # fmt: skip
    return shapes


def gpt_neox() -> Shapes:
    shapes: Shapes = {"gpt_neox.embed_in.weight": (V, H), "embed_out.weight": (V, H)}
    for layer in range(LAYERS):
        p = f"gpt_neox.layers.{layer}."
        shapes.update({p + "input_layernorm.weight": (H,), p + "post_attention_layernorm.weight": (H,),
                       p + "attention.query_key_value.weight": (3 * H, H),
                       p + "attention.dense.weight": (H, H), p + "mlp.dense_h_to_4h.weight": (U, H),
                       p + "mlp.dense_4h_to_h.weight": (H, U)})  # fmt: skip
    return shapes


def phi() -> Shapes:
    shapes: Shapes = {"model.embed_tokens.weight": (V, H), "lm_head.weight": (V, H)}
    for layer in range(LAYERS):
        p = f"model.layers.{layer}."
        shapes.update({f"{p}self_attn.{part}_proj.weight": (H, H) for part in "qkv"})
        shapes.update({p + "input_layernorm.weight": (H,), p + "self_attn.dense.weight": (H, H),
                       p + "mlp.fc1.weight": (U, H), p + "mlp.fc2.weight": (H, U)})  # fmt: skip
    return shapes


def gemma3() -> Shapes:
    shapes: Shapes = {"model.embed_tokens.weight": (V, H)}
    for layer in range(LAYERS):
        p = f"model.layers.{layer}."
        shapes.update({f"{p}self_attn.{part}_proj.weight": (H, H) for part in "qvo"})
        shapes.update({p + "self_attn.k_proj.weight": (H, H), p + "mlp.gate_proj.weight": (U, H),
                       p + "mlp.up_proj.weight": (U, H), p + "mlp.down_proj.weight": (H, U)})  # fmt: skip
        for norm in ("input", "post_attention", "pre_feedforward", "post_feedforward"):
            shapes[f"{p}{norm}_layernorm.weight"] = (H,)
    return shapes


T5_LAYERS = [0, 1, DECODER_LAYER_OFFSET, DECODER_LAYER_OFFSET + 1]  # encoder, then decoder blocks
#: layout -> (shapes, MLP layers expected, attention layers with value rows read, MLP norm of layer 0)
LAYOUTS: dict[str, tuple[Callable[[], Shapes], list[int], list[int], str | None]] = {
    "mpnet": (mpnet, [0, 1], [0, 1], "encoder.layer.0.attention.LayerNorm.weight"),
    "roberta": (roberta, [0, 1], [0, 1], "roberta.encoder.layer.0.attention.output.LayerNorm.weight"),
    "deberta-v2": (deberta_v2, [0, 1], [0, 1], "deberta.encoder.layer.0.attention.output.LayerNorm.weight"),
    "t5-v1.1": (t5_v1_1, T5_LAYERS, T5_LAYERS, "encoder.block.0.layer.1.layer_norm.weight"),
    "falcon": (falcon, [0, 1], [], "transformer.h.0.input_layernorm.weight"),  # fused, grouped q/k/v
    "gpt-neox": (gpt_neox, [0, 1], [], "gpt_neox.layers.0.post_attention_layernorm.weight"),
    "phi": (phi, [0, 1], [0, 1], "model.layers.0.input_layernorm.weight"),  # parallel block: one norm
    "gemma3": (gemma3, [0, 1], [0, 1], "model.layers.0.pre_feedforward_layernorm.weight"),
}  # fmt: skip


def _write(folder: Path, shapes: Shapes, rng: np.random.Generator) -> dict[str, np.ndarray]:
    params = {
        name: (
            1 + 0.1 * rng.standard_normal(shape) if len(shape) == 1 else rng.standard_normal(shape) / 6
        ).astype(np.float32)
        for name, shape in shapes.items()
    }
    folder.mkdir()
    save_file(params, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"vocab_size": V, "hidden_size": H}))
    return params


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_roles_are_named_and_a_fine_tune_is_related(layout: str, tmp_path: Path) -> None:
    shapes_of, mlp_layers, value_layers, norm = LAYOUTS[layout]
    rng = np.random.default_rng(0)
    params = _write(tmp_path / "base", shapes_of(), rng)
    tuned = {name: value + 0.2 * value.std() * rng.standard_normal(value.shape).astype(np.float32)
             for name, value in params.items()}  # fmt: skip
    (tmp_path / "tuned").mkdir()
    save_file(tuned, str(tmp_path / "tuned" / "model.safetensors"))
    (tmp_path / "tuned" / "config.json").write_text((tmp_path / "base" / "config.json").read_text())
    with open_model(tmp_path / "base") as source:
        base = build_fingerprint(source)
    with open_model(tmp_path / "tuned") as source:
        suspect = build_fingerprint(source)
    assert base.header["role_method"] == "names"
    assert base.header["embedding"] in ("embeddings.word_embeddings.weight", "shared.weight") or base.header[
        "embedding"
    ].endswith(("word_embeddings.weight", "embed_in.weight", "embed_tokens.weight"))
    assert [block.layer for block in base.blocks] == mlp_layers
    assert [sample.layer for sample in base.attention] == value_layers
    with open_model(tmp_path / "base") as source:
        from modeltrace.fingerprint.roles import assign_roles

        roles = assign_roles(source.weights.tensors(), vocab_size=V, hidden_size=H, format="safetensors")
    assert roles.blocks[0].norm == norm
    result = compare_fingerprints(suspect, base)
    assert result.verdict == "related" and result.log10_p < -20
    assert result.exact is not None and result.exact["log10_p"] < -20


def test_t5_gated_mlp_reads_wi_0_as_gate_and_wi_1_as_up(tmp_path: Path) -> None:
    _write(tmp_path / "t5", t5_v1_1(), np.random.default_rng(1))
    with open_model(tmp_path / "t5") as source:
        fingerprint = build_fingerprint(source)
    first = fingerprint.blocks[0]
    assert first.tensors == ["encoder.block.0.layer.1.DenseReluDense.wi_1.weight",
                             "encoder.block.0.layer.1.DenseReluDense.wi_0.weight"]  # fmt: skip
