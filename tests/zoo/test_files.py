"""The zoo's writers: safetensors bytes, tokenizer.json, FP8/int8 codes, GGUF and ONNX exports."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from modeltrace.formats import open_model
from modeltrace.formats.base import F8_E4M3_TABLE
from modeltrace.zoo.arch import ArchConfig, init_params, parameter_shapes
from modeltrace.zoo.corpus import generate_tokens, make_lexicon, tokenizer_json
from modeltrace.zoo.files import write_hf_folder, write_safetensors
from modeltrace.zoo.quantize import encode_fp8_e4m3, fp8_tensors, int8_tensors, quantize_int8_rows

safetensors_numpy = pytest.importorskip("safetensors.numpy")

CONFIG = ArchConfig("llama", vocab_size=40, hidden_size=32, intermediate_size=64, num_layers=2,
                    num_heads=4, num_kv_heads=2, max_positions=16)  # fmt: skip


@settings(max_examples=25, deadline=None)
@given(
    arrays=st.lists(
        hnp.arrays(
            st.sampled_from([np.float32, np.float16, np.int8, np.int64]),
            hnp.array_shapes(min_dims=0, max_dims=3, max_side=5),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_safetensors_writer_round_trips_through_the_reference_library(tmp_path_factory, arrays) -> None:
    path = tmp_path_factory.mktemp("st") / "x.safetensors"
    tensors = {f"t{index}": array for index, array in enumerate(arrays)}
    write_safetensors(path, tensors, metadata={"format": "pt"})
    loaded = safetensors_numpy.load_file(str(path))
    assert loaded.keys() == tensors.keys()
    for name, array in tensors.items():
        np.testing.assert_array_equal(loaded[name], array)
        assert loaded[name].dtype == array.dtype
    header_length = int.from_bytes(path.read_bytes()[:8], "little")
    assert header_length % 8 == 0


def test_tokenizer_json_loads_in_hf_tokenizers_and_matches_the_vocabulary(tmp_path) -> None:
    tokenizers = pytest.importorskip("tokenizers")
    lexicon = make_lexicon(0)
    (tmp_path / "tokenizer.json").write_text(json.dumps(tokenizer_json(lexicon.vocab)))
    tokenizer = tokenizers.Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    stream = generate_tokens(lexicon, 60, seed=1)
    text = " ".join(lexicon.vocab[index] for index in stream)
    assert tokenizer.encode(text).ids == stream.tolist()
    assert tokenizer.get_vocab_size() == len(lexicon.vocab)


def test_corpus_is_deterministic_and_domain_differs() -> None:
    lexicon = make_lexicon(0)
    assert make_lexicon(0) == lexicon and make_lexicon(1).vocab != lexicon.vocab
    first = generate_tokens(lexicon, 500, seed=3)
    np.testing.assert_array_equal(first, generate_tokens(lexicon, 500, seed=3))
    domain = generate_tokens(lexicon, 5000, seed=3, domain=True)
    domain_ids = {lexicon.token_ids[word] for word in lexicon.words["domain_noun"]}
    assert domain_ids & set(domain.tolist())
    assert not domain_ids & set(generate_tokens(lexicon, 5000, seed=3).tolist())


def test_fp8_encoding_is_exact_on_representable_values_and_nearest_otherwise() -> None:
    finite = np.flatnonzero(np.isfinite(F8_E4M3_TABLE))
    values = F8_E4M3_TABLE[finite]
    np.testing.assert_array_equal(F8_E4M3_TABLE[encode_fp8_e4m3(values)], values)
    samples = np.random.default_rng(0).normal(0, 50, 2000).astype(np.float32)
    decoded = F8_E4M3_TABLE[encode_fp8_e4m3(samples)]
    clipped = np.clip(samples, -448, 448)
    nearest = np.abs(values[None, :] - clipped[:, None]).min(1)
    np.testing.assert_allclose(np.abs(decoded - clipped), nearest, atol=1e-6)


def test_int8_rows_reconstruct_within_half_a_step() -> None:
    weight = np.random.default_rng(0).normal(size=(8, 16)).astype(np.float32)
    codes, scale = quantize_int8_rows(weight)
    assert codes.dtype == np.int8 and scale.shape == (8, 1)
    assert np.all(np.abs(codes.astype(np.float32) * scale - weight) <= scale / 2 + 1e-7)


def test_quantized_folders_read_back_through_modeltrace(tmp_path) -> None:
    params = init_params(CONFIG, seed=0)
    vocab = [f"w{index}" for index in range(CONFIG.vocab_size)]
    stored, dtypes, dequantised = fp8_tensors(params)
    write_hf_folder(tmp_path / "fp8", CONFIG, stored, vocab, dtypes)
    with open_model(tmp_path / "fp8") as source:
        assert set(source.weights.tensors()) == set(parameter_shapes(CONFIG))  # scales folded away
        name = "model.layers.1.mlp.down_proj.weight"
        np.testing.assert_allclose(source.weights.read(name), dequantised[name], rtol=1e-6)
        assert np.abs(source.weights.read(name) - params[name]).max() < 0.07 * np.abs(params[name]).max()
    stored, dequantised = int8_tensors(params)
    write_hf_folder(tmp_path / "int8", CONFIG, stored, vocab)
    loaded = safetensors_numpy.load_file(str(tmp_path / "int8" / "model.safetensors"))
    name = "model.layers.0.self_attn.q_proj.weight"
    assert loaded[name].dtype == np.int8
    np.testing.assert_allclose(loaded[name] * loaded[name + "_scale"], dequantised[name])


def test_gguf_export_names_quantises_and_permutes_rotary_rows(tmp_path) -> None:
    gguf = pytest.importorskip("gguf")
    from modeltrace.zoo.export_gguf import rotary_permute, write_gguf

    params = init_params(CONFIG, seed=0)
    vocab = [f"w{index}" for index in range(CONFIG.vocab_size)]
    path = write_gguf(tmp_path / "m.gguf", "m", params, CONFIG, vocab, "Q8_0")
    reader = gguf.GGUFReader(str(path))
    tensors = {tensor.name: tensor for tensor in reader.tensors}
    assert len(tensors) == len(params) and "blk.1.ffn_down.weight" in tensors
    q = tensors["blk.0.attn_q.weight"]
    assert q.tensor_type == gguf.GGMLQuantizationType.Q8_0
    values = gguf.quants.dequantize(q.data, q.tensor_type).reshape(CONFIG.hidden_size, CONFIG.hidden_size)
    expected = rotary_permute(params["model.layers.0.self_attn.q_proj.weight"], CONFIG.num_heads)
    assert np.abs(values - expected).max() < np.abs(expected).max() / 100
    tokens = reader.fields["tokenizer.ggml.tokens"]
    assert [bytes(tokens.parts[index]).decode() for index in tokens.data][:3] == ["w0", "w1", "w2"]


def test_rotary_permute_only_reorders_rows_within_heads() -> None:
    from modeltrace.zoo.export_gguf import rotary_permute

    weight = np.arange(32 * 3, dtype=np.float32).reshape(32, 3)
    permuted = rotary_permute(weight, heads=4)
    assert sorted(permuted[:, 0].tolist()) == sorted(weight[:, 0].tolist())
    # head 0 holds rows 0..7; the interleaved layout alternates its two halves
    assert permuted[:8, 0].tolist() == [0, 12, 3, 15, 6, 18, 9, 21]


def test_onnx_export_runs_and_matches_the_dequantised_model(tmp_path) -> None:
    pytest.importorskip("torch")
    from onnx.reference import ReferenceEvaluator

    from modeltrace.zoo.export_onnx import build_graph, dequantised
    from modeltrace.zoo.network import numpy_logits

    params = {
        name: value * 10 if value.ndim == 2 else value for name, value in init_params(CONFIG, 0).items()
    }
    model = build_graph(params, CONFIG, "m")
    names = [initializer.name for initializer in model.graph.initializer]
    assert all(name.startswith("val_") for name in names)
    assert sum(name.endswith("_q") for name in names) == CONFIG.num_layers * 7 + 1
    tokens = np.random.default_rng(0).integers(0, CONFIG.vocab_size, (2, 12))
    out = ReferenceEvaluator(model).run(None, {"input_ids": tokens})[0]
    reference = numpy_logits(dequantised(params), CONFIG, tokens)
    assert reference.std() > 0.5
    np.testing.assert_allclose(out, reference, atol=1e-4)
