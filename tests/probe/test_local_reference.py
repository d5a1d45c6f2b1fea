"""A local model folder as a behavioural reference: numpy forward pass vs torch, prompt format, verdicts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from modeltrace import api
from modeltrace.cli import main
from modeltrace.errors import ResourceLimitError, TokenizerError, UnsupportedFormatError, UsageError
from modeltrace.probe.local_model import PROMPT_FORMAT_CHAT, PROMPT_FORMAT_RAW, load_local_reference
from modeltrace.probe.prompts import BEHAVIOUR_PROMPTS
from tests.probe.fake_endpoint import FakeConfig, FakeEndpoint
from tests.probe.tiny_decoder import (
    perturbed,
    random_tensors,
    tiny_config,
    torch_logits,
    write_tiny_model,
)

FAST = {"timeout_s": 2.0, "backoff_s": 0.01}

ARCHITECTURES = {
    "llama-gqa-untied": (tiny_config("llama"), False),
    "llama3-rope-scaling": (
        tiny_config(
            "llama",
            num_key_value_heads=1,
            rope_theta=500000.0,
            rope_scaling={
                "rope_type": "llama3",
                "factor": 32.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 8,  # tiny, so every branch of the blend is used
            },
        ),
        False,
    ),
    "qwen2-biases-tied": (tiny_config("qwen2", tie_word_embeddings=True, rope_theta=1000000.0), True),
    "qwen3-qk-norm-head-dim": (tiny_config("qwen3", head_dim=16, tie_word_embeddings=True), False),
    "mistral-mha": (tiny_config("mistral", num_key_value_heads=4, sliding_window=4096), False),
    "mixtral-moe": (tiny_config("mixtral"), False),
}


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_numpy_forward_matches_torch_reference(name: str, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    config, biases = ARCHITECTURES[name]
    tensors = random_tensors(config, seed=7, biases=biases)
    reference = load_local_reference(write_tiny_model(tmp_path / name, config, tensors))
    ids = reference.prompt_ids("The capital of France is, in 1969, the first prime number greater than 100")
    assert len(ids) > 12  # long enough for causal masking and rotary positions to matter
    ours = reference.decoder.logits(ids, last_only=False)
    expected = torch_logits(config, tensors, ids)
    assert ours.shape == expected.shape == (len(ids), config["vocab_size"])
    np.testing.assert_allclose(ours, expected, atol=1e-4, rtol=0)
    assert np.argmax(ours[-1]) == np.argmax(expected[-1])


def test_raw_prompt_format_adds_the_tokenizers_own_bos(tmp_path: Path) -> None:
    config = tiny_config()
    reference = load_local_reference(write_tiny_model(tmp_path / "m", config, random_tensors(config, 1)))
    assert reference.prompt_format == PROMPT_FORMAT_RAW
    ids = reference.prompt_ids("Roses are red")
    assert ids[0] == 1  # <s>, from the tokenizer's post-processor
    assert reference.tokenizer.decode(ids) == "roses are red"


def test_chat_template_is_rendered_like_a_chat_server(tmp_path: Path) -> None:
    config = tiny_config()
    template = (
        "{{ bos_token }}{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant:{% endif %}"
    )
    folder = write_tiny_model(tmp_path / "chat", config, random_tensors(config, 1), chat_template=template)
    reference = load_local_reference(folder)
    assert reference.prompt_format == PROMPT_FORMAT_CHAT
    ids = reference.prompt_ids("Roses are red")
    expected = reference.tokenizer.encode("<s>user: Roses are red\nassistant:", add_special_tokens=False).ids
    assert ids == expected and ids.count(1) == 1  # BOS once: from the template, not added again


def test_greedy_token_is_decoded_in_context(tmp_path: Path) -> None:
    config = tiny_config()
    reference = load_local_reference(write_tiny_model(tmp_path / "m", config, random_tensors(config, 3)))
    answers = [reference.greedy_next_token(prompt) for prompt in BEHAVIOUR_PROMPTS[:40]]
    for prompt, answer in zip(BEHAVIOUR_PROMPTS[:40], answers, strict=True):
        ids = reference.prompt_ids(prompt)
        token = int(np.argmax(reference.decoder.logits(ids)))
        word = reference.tokenizer.id_to_token(token)
        assert answer == ("" if word in ("<s>", "</s>") else f" {word}")  # WordLevel joins with spaces
    assert len(set(answers)) > 5  # the tiny model's answer depends on the prompt


def test_too_large_unsupported_and_incomplete_models_are_refused(tmp_path: Path) -> None:
    config = tiny_config()
    tensors = random_tensors(config, 1)
    folder = write_tiny_model(tmp_path / "m", config, tensors)
    with pytest.raises(ResourceLimitError, match=r"over the limit of 0\.00 GB.*--reference"):
        load_local_reference(folder, max_weight_bytes=1000)
    gpt2 = write_tiny_model(tmp_path / "gpt2", {**config, "model_type": "gpt2"}, tensors)
    with pytest.raises(UnsupportedFormatError, match="model_type 'gpt2' is not supported"):
        load_local_reference(gpt2)
    del tensors["model.layers.1.mlp.up_proj.weight"]
    broken = write_tiny_model(tmp_path / "broken", config, tensors)
    with pytest.raises(UnsupportedFormatError, match=re.escape("model.layers.1.mlp.up_proj.weight")):
        load_local_reference(broken)
    small = {**config, "vocab_size": 10}  # fewer embedding rows than the tokenizer has tokens
    rows = {
        name: value[:10] if value.shape[0] == config["vocab_size"] else value
        for name, value in random_tensors(config, 1).items()
    }
    with pytest.raises(TokenizerError, match="vocab_size 10"):
        load_local_reference(write_tiny_model(tmp_path / "short", small, rows))
    wide = write_tiny_model(tmp_path / "wide", {**config, "hidden_size": 64}, random_tensors(config, 1))
    with pytest.raises(UnsupportedFormatError, match=r"config\.json implies"):
        load_local_reference(wide)


def test_reference_that_is_neither_url_nor_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="neither an http"):
        api.probe("http://127.0.0.1:9/v1", references=[str(tmp_path / "missing-model")])


@pytest.fixture(scope="module")
def base_and_tuned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A base checkpoint and a 'fine-tune' of it whose greedy answers differ on many prompts."""
    folder = tmp_path_factory.mktemp("local-models")
    config = tiny_config()
    tensors = random_tensors(config, seed=11)
    base = write_tiny_model(folder / "base", config, tensors)
    tuned = write_tiny_model(folder / "tuned", config, perturbed(tensors, scale=0.1, seed=12))
    return base, tuned


def test_endpoint_serving_the_local_weights_is_consistent_and_a_fine_tune_is_not(
    base_and_tuned: tuple[Path, Path],
) -> None:
    base, tuned = base_and_tuned
    prompts = list(BEHAVIOUR_PROMPTS[:40])
    base_answers = [load_local_reference(base).greedy_next_token(p) for p in prompts]
    tuned_answers = [load_local_reference(tuned).greedy_next_token(p) for p in prompts]
    disagreements = sum(a != b for a, b in zip(base_answers, tuned_answers, strict=True))
    assert disagreements >= 10  # precondition: the fine-tune really answers differently

    with FakeEndpoint(FakeConfig(family="qwen3", local_model=base)) as target:
        report = api.probe(target.url, references=[str(base), str(tuned)], **FAST)
    behaviour = report.behaviour
    assert behaviour is not None
    rows = {r.name: r for r in behaviour.references}
    same, other = rows[str(base.resolve())], rows[str(tuned.resolve())]
    assert (same.agreements, same.compared) == (40, 40)
    assert same.verdict(behaviour.alpha) == "consistent-with-same-checkpoint"
    assert (other.agreements, other.compared) == (40 - disagreements, 40)
    assert other.verdict(behaviour.alpha) == "different-checkpoint"
    assert other.p_different_holm < behaviour.alpha
    assert behaviour.closest == str(base.resolve())
    # Local references cost no requests; only the target is asked.
    assert set(report.requests_by_endpoint) == {target.url.rstrip("/")}


def test_cli_probe_with_local_references(
    base_and_tuned: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, tuned = base_and_tuned
    with (
        FakeEndpoint(FakeConfig(family="qwen3", local_model=tuned)) as target,
        pytest.raises(SystemExit) as exit_info,
    ):
        main(["probe", target.url, "--reference", str(base), "--reference", str(tuned), "--json",
              "--timeout", "2"])  # fmt: skip
    assert exit_info.value.code in (0, None)
    data = json.loads(capsys.readouterr().out)
    rows = {row["reference"]: row for row in data["behaviour"]["references"]}
    assert rows[str(tuned.resolve())]["verdict"] == "consistent-with-same-checkpoint"
    assert rows[str(tuned.resolve())]["prompt_format"] == PROMPT_FORMAT_RAW
    assert rows[str(base.resolve())]["verdict"] == "different-checkpoint"
    assert rows[str(base.resolve())]["p_different_holm"] < 0.05


@pytest.mark.parametrize(
    ("name", "parameters"),
    [
        # Totals from each checkpoint's safetensors index / model card.
        ("llama-3.1-8b", 8_030_261_248),
        ("qwen3-8b", 8_190_735_360),
        ("mixtral-8x22b-v0.1", 140_620_634_112),
    ],
)
def test_real_configs_imply_the_published_parameter_counts(
    data_dir: Path, name: str, parameters: int
) -> None:
    from modeltrace.probe.decoder import parse_config, tensor_shapes

    config = parse_config(json.loads((data_dir / "configs" / f"{name}.json").read_text()))
    required, _ = tensor_shapes(config)
    assert sum(int(np.prod(shape)) for shape in required.values()) == parameters


def test_chatml_template_with_whitespace_control_and_errors(tmp_path: Path) -> None:
    from modeltrace.errors import TokenizerError
    from modeltrace.probe.local_model import _chat_template_renderer

    chatml = (
        "{%- if messages[0]['role'] == 'system' %}{{ raise_exception('no system') }}{% endif %}\n"
        "{%- for message in messages %}\n"
        "    {{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}\n"
        "{%- endfor %}\n"
        "{%- if add_generation_prompt %}\n    {{- '<|im_start|>assistant\\n' }}\n{%- endif %}\n"
    )
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": chatml}))
    render = _chat_template_renderer(tmp_path)
    assert render is not None
    assert render("Roses are red") == "<|im_start|>user\nRoses are red<|im_end|>\n<|im_start|>assistant\n"
    (tmp_path / "tokenizer_config.json").write_text(
        json.dumps({"chat_template": "{{ raise_exception('x') }}"})
    )
    with pytest.raises(TokenizerError, match="failed to render: x"):
        _chat_template_renderer(tmp_path)("hi")  # type: ignore[misc]
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{% for %}"}))
    with pytest.raises(TokenizerError, match="does not compile"):
        _chat_template_renderer(tmp_path)
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"bos_token": "<s>"}))
    assert _chat_template_renderer(tmp_path) is None
