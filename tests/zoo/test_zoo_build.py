"""The quick zoo, built once per session: manifest, files, training, symmetries, distillation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")

from modeltrace.formats import open_model
from modeltrace.zoo import load_manifest
from modeltrace.zoo.arch import init_params, parameter_shapes
from modeltrace.zoo.corpus import generate_tokens, make_lexicon, sample_windows
from modeltrace.zoo.files import read_hf_folder
from modeltrace.zoo.network import numpy_logits

#: Every transform of the lineage issue (point 3) that the zoo must hold a child for.
REQUIRED_TRANSFORMS = {
    "finetune", "continued-pretrain", "rl", "lora-merged", "quantized-int8", "quantized-fp8", "gguf-q8",
    "gguf-q4", "onnx-int8", "permuted-units", "permuted-heads", "residual-permuted-signflipped", "rescaled",
    "vocab-extended", "vocab-pruned", "vocab-reordered", "layers-dropped", "layers-subsampled",
    "layers-duplicated", "width-pruned", "upcycled-moe", "merged", "distilled", "permuted-units-heads",
}  # fmt: skip


@pytest.fixture(scope="module")
def manifest(quick_zoo: Path) -> dict[str, Any]:
    return load_manifest(quick_zoo)


@pytest.fixture(scope="module")
def models(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {model["name"]: model for model in manifest["models"]}


@pytest.fixture(scope="module")
def windows(manifest: dict[str, Any]) -> np.ndarray:
    lexicon = make_lexicon(manifest["build"]["seed"])
    held_out = generate_tokens(lexicon, 5_000, seed=12_345)
    return sample_windows(held_out, 8, 48, np.random.default_rng(0))


def _load(zoo: Path, model: dict[str, Any]):
    return read_hf_folder(zoo / model["path"])


def test_manifest_lists_every_transform_and_consistent_links(quick_zoo, manifest, models) -> None:
    assert manifest["version"] == 1
    assert {model["transform"] for model in manifest["models"]} >= REQUIRED_TRANSFORMS
    bases = [model for model in manifest["models"] if model["transform"] == "base"]
    llama_seeds = {model["seed"] for model in bases if model["architecture"] == "llama"}
    assert len(llama_seeds) >= 2 and {model["architecture"] for model in bases} >= {"llama", "gpt2"}
    seen: set[str] = set()
    for model in manifest["models"]:
        assert (quick_zoo / model["path"]).exists(), model["path"]
        assert set(model["parents"]) <= seen, f"{model['name']} names a parent built after it"
        assert model["format"] in {"safetensors", "gguf", "onnx"}
        seen.add(model["name"])
    distilled = models["llama-s0.distilled"]
    assert distilled["parents"] == [] and distilled["teacher"] == "llama-s0"


def test_pairs_cover_parents_bases_and_distillation(quick_zoo, manifest, models) -> None:
    pairs = {(pair["suspect"], pair["base"]): pair for pair in manifest["pairs"]}
    assert all(suspect in models and base in models for suspect, base in pairs)
    for model in manifest["models"]:
        for parent in model["parents"]:
            assert pairs[model["name"], parent]["expected"] == "related"
    assert pairs["llama-s0.distilled", "llama-s0"]["expected"] == "unrelated"
    assert pairs["llama-s0.finetune", "llama-s1"]["expected"] == "unrelated"
    assert pairs["llama-s1", "llama-s0"]["expected"] == "unrelated"
    assert pairs["llama-s0", "llama-s0"]["expected"] == "same-weights"
    assert pairs["llama-s0.finetune.gguf-q4", "llama-s0"]["relation"] == "finetune+gguf-q4"
    for pair in manifest["pairs"]:
        layer_map = pair["layer_map"]
        if layer_map is not None:
            suspect_layers = _layers(quick_zoo, models[pair["suspect"]])
            assert sorted(int(key) for key in layer_map) == list(range(suspect_layers))
            assert max(layer_map.values()) < _layers(quick_zoo, models[pair["base"]])
    assert pairs["llama-s0.layers-duplicated", "llama-s0"]["layer_map"] == {
        "0": 0, "1": 1, "2": 2, "3": 1, "4": 2, "5": 3,
    }  # fmt: skip


def _layers(zoo: Path, model: dict[str, Any]) -> int:
    return json.loads((zoo / model["path"] / "config.json").read_text())["num_hidden_layers"]


def test_every_safetensors_model_opens_with_the_shapes_its_config_declares(quick_zoo, manifest) -> None:
    for model in manifest["models"]:
        if model["format"] != "safetensors":
            continue
        params, config, vocab = _load(quick_zoo, model)
        shapes = {name: value.shape for name, value in params.items()}
        assert shapes == parameter_shapes(config), model["name"]
        assert len(vocab) == config.vocab_size
        with open_model(quick_zoo / model["path"]) as source:
            assert source.format == "safetensors" and source.tokenizer_files


@pytest.mark.parametrize(("fmt", "module"), [("gguf", "gguf_file"), ("onnx", "onnx_file")])
def test_gguf_and_onnx_children_open_with_modeltrace(quick_zoo, manifest, fmt: str, module: str) -> None:
    pytest.importorskip(f"modeltrace.formats.{module}")
    for model in manifest["models"]:
        if model["format"] == fmt:
            with open_model(quick_zoo / model["path"]) as source:
                assert source.format == fmt and len(source.weights.tensors()) > 0


def test_training_lowered_every_trained_models_loss(manifest) -> None:
    trained = [model for model in manifest["models"] if model["metrics"].get("loss_before") is not None]
    assert len(trained) >= 9
    for model in trained:
        metrics = model["metrics"]
        if model["transform"] in ("width-pruned", "upcycled-moe"):
            # healing runs after a near-lossless change: they must not damage the model, but on a
            # well-trained parent they have little left to gain
            assert metrics["loss_after"] < metrics["loss_before"] + 0.02, model["name"]
            continue
        assert metrics["loss_after"] < metrics["loss_before"], model["name"]
        if model["transform"] in ("base", "distilled"):
            assert metrics["loss_after"] < metrics["loss_before"] - 1.5, model["name"]
    finetune = next(model for model in manifest["models"] if model["name"] == "llama-s0.finetune")
    assert finetune["metrics"]["corpus"] == "domain"


def test_rl_child_moved_probability_towards_rewarded_tokens(quick_zoo, models, windows) -> None:
    base, base_config, _ = _load(quick_zoo, models["llama-s0"])
    tuned, _, _ = _load(quick_zoo, models["llama-s0.rl"])
    rewarded = np.array(models["llama-s0.rl"]["metrics"]["rewarded_tokens"])

    def mass(params: dict[str, np.ndarray]) -> float:
        logits = numpy_logits(params, base_config, windows)
        probs = np.exp(logits - logits.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        return float(probs[..., rewarded].sum(-1).mean())

    assert mass(tuned) > mass(base)
    assert not np.array_equal(tuned["lm_head.weight"], base["lm_head.weight"])


def test_function_preserving_children_compute_parents_logits(quick_zoo, manifest, models, windows) -> None:
    preserving = [model for model in manifest["models"] if model["function_preserving"]]
    assert {model["transform"] for model in preserving} == {
        "permuted-units", "permuted-heads", "residual-permuted-signflipped", "rescaled", "vocab-reordered",
        "permuted-units-heads",
    }  # fmt: skip
    for model in preserving:
        (parent_name,) = model["parents"]
        parent, parent_config, parent_vocab = _load(quick_zoo, models[parent_name])
        child, child_config, child_vocab = _load(quick_zoo, model)
        child_id = {token: index for index, token in enumerate(child_vocab)}
        to_child = np.array([child_id[token] for token in parent_vocab])
        expected = numpy_logits(parent, parent_config, windows)
        actual = numpy_logits(child, child_config, to_child[windows])[..., to_child]
        assert np.abs(actual - expected).max() < 1e-4, model["name"]
        assert any(not np.array_equal(child[name], parent[name]) for name in parent), model["name"]


def test_non_preserving_children_really_differ(quick_zoo, models, windows) -> None:
    base, config, _ = _load(quick_zoo, models["llama-s0"])
    reference = numpy_logits(base, config, windows)
    for name in ("llama-s0.finetune", "llama-s0.lora-merged", "llama-s0.merged", "llama-s0.quantized-fp8"):
        params, child_config, _ = _load(quick_zoo, models[name])
        assert np.abs(numpy_logits(params, child_config, windows) - reference).max() > 1e-3, name


def test_quantised_children_stay_close_to_their_parent(quick_zoo, models) -> None:
    base, _, _ = _load(quick_zoo, models["llama-s0"])
    name = "model.layers.2.mlp.up_proj.weight"
    for child_name, tolerance in (("llama-s0.quantized-int8", 0.01), ("llama-s0.quantized-fp8", 0.07)):
        child, _, _ = _load(quick_zoo, models[child_name])
        error = np.abs(child[name] - base[name]).max() / np.abs(base[name]).max()
        assert 0 < error < tolerance, child_name


def test_onnx_child_runs_and_matches_its_parent(quick_zoo, models, windows) -> None:
    import onnx
    from onnx.reference import ReferenceEvaluator

    base, config, _ = _load(quick_zoo, models["llama-s0"])
    graph = onnx.load(str(quick_zoo / models["llama-s0.onnx-int8"]["path"] / "model.onnx"))
    out = ReferenceEvaluator(graph).run(None, {"input_ids": windows[:2]})[0]
    reference = numpy_logits(base, config, windows[:2])
    assert np.abs(out - reference).max() < 0.05 * np.abs(reference).max()


def test_distilled_model_has_independent_weights_but_agrees_in_outputs(quick_zoo, models, windows) -> None:
    teacher, config, _ = _load(quick_zoo, models["llama-s0"])
    student, _, _ = _load(quick_zoo, models["llama-s0.distilled"])
    finetune, _, _ = _load(quick_zoo, models["llama-s0.finetune"])

    def cosine(first: np.ndarray, second: np.ndarray) -> float:
        return float(first.ravel() @ second.ravel() / np.linalg.norm(first) / np.linalg.norm(second))

    # Independent weights: cosines scatter around 0 (a single matrix dominated by one direction,
    # such as an LM head, can reach ~1/sqrt(hidden) by chance), so the test averages over every
    # matrix; a fine-tune of the teacher keeps most of its weights (cosine near 1).
    matrices = [name for name, value in teacher.items() if value.ndim == 2]
    assert np.mean([abs(cosine(student[name], teacher[name])) for name in matrices]) < 0.05
    assert np.mean([cosine(finetune[name], teacher[name]) for name in matrices]) > 0.8
    untrained = init_params(config, models["llama-s0.distilled"]["seed"])
    top = numpy_logits(teacher, config, windows).argmax(-1)
    agreement = float((numpy_logits(student, config, windows).argmax(-1) == top).mean())
    chance = float((numpy_logits(untrained, config, windows).argmax(-1) == top).mean())
    assert agreement > chance + 0.3


def test_tokenizers_follow_the_vocabulary_transforms(quick_zoo, models) -> None:
    _, _, base_vocab = _load(quick_zoo, models["llama-s0"])
    checks = {
        "llama-s0.vocab-extended": lambda vocab: (
            vocab[: len(base_vocab)] == base_vocab and len(vocab) > len(base_vocab)
        ),
        "llama-s0.vocab-pruned": lambda vocab: set(vocab) < set(base_vocab),
        "llama-s0.vocab-reordered": lambda vocab: sorted(vocab) == sorted(base_vocab) and vocab != base_vocab,
    }
    for name, check in checks.items():
        _, config, vocab = _load(quick_zoo, models[name])
        assert check(vocab) and config.vocab_size == len(vocab), name
        tokenizer = json.loads((quick_zoo / models[name]["path"] / "tokenizer.json").read_text())
        assert len(tokenizer["model"]["vocab"]) == len(vocab)
