"""Quantised children of a synthetic Llama compare `related` to their full-precision base (the relation
names the quantisation) and `unrelated` to an independent model trained on the same data; `inspect`
counts their unpacked parameters and names the scheme."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from modeltrace import api
from modeltrace.fingerprint.build import build_fingerprint
from modeltrace.fingerprint.model import Fingerprint
from modeltrace.formats.detect import open_model
from modeltrace.lineage.compare import compare_fingerprints
from tests.lineage.quant_encoders import SCHEMES, bnb_4bit, quantised_model
from tests.lineage.synthetic import make_params, write_model

DATA = Path(__file__).resolve().parents[1] / "data" / "quantised"


def _bnb_code_books() -> tuple[np.ndarray, np.ndarray]:
    """bitsandbytes' own NF4 map and nested 8-bit map, as it wrote them into the fixture."""
    stored = load_file(str(DATA / "bnb_nf4_double.safetensors"))
    nf4, nested = stored["layer.weight.quant_map"], stored["layer.weight.nested_quant_map"]
    assert nf4.shape == (16,) and nested.shape == (256,)
    return nf4, nested


def _all_schemes() -> dict:
    nf4, nested = _bnb_code_books()
    schemes = dict(SCHEMES)
    schemes["bnb-nf4-double"] = (
        lambda w, _: bnb_4bit(w, nf4, "nf4", True, 64, nested),
        {"quant_method": "bitsandbytes", "load_in_4bit": True, "bnb_4bit_quant_type": "nf4",
         "bnb_4bit_use_double_quant": True},
    )  # fmt: skip
    return schemes


SCHEMES_ALL = _all_schemes()


def _fp(folder: Path) -> Fingerprint:
    with open_model(folder) as source:
        return build_fingerprint(source)


@pytest.fixture(scope="module")
def family(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("quantised")
    return {
        "base": write_model(root / "base", make_params(1)),
        "independent": write_model(root / "independent", make_params(2)),
    }


@pytest.fixture(scope="module")
def fingerprints(family: dict[str, Path]) -> dict[str, Fingerprint]:
    return {name: _fp(path) for name, path in family.items()}


@pytest.mark.parametrize("scheme", sorted(SCHEMES_ALL))
def test_quantised_child_is_related_to_base_and_not_to_an_independent_model(
    scheme: str, family: dict[str, Path], fingerprints: dict[str, Fingerprint], tmp_path: Path
) -> None:
    encode, quant_config = SCHEMES_ALL[scheme]
    child = quantised_model(family["base"], tmp_path / scheme, encode, quant_config)
    child_fp = _fp(child)
    assert child_fp.header["mlp_blocks_total"] == 4, "every MLP found in the quantised child"
    related = compare_fingerprints(child_fp, fingerprints["base"])
    assert related.verdict == "related", related.verdict
    assert related.layer_map == {"0": 0, "1": 1, "2": 2, "3": 3}
    assert related.relation.startswith("quantized"), related.relation
    assert quant_config["quant_method"] in related.relation
    unrelated = compare_fingerprints(child_fp, fingerprints["independent"])
    assert unrelated.verdict == "unrelated", unrelated


@pytest.mark.parametrize("scheme", sorted(SCHEMES_ALL))
def test_inspect_counts_unpacked_parameters_and_names_the_scheme(
    scheme: str, family: dict[str, Path], tmp_path: Path
) -> None:
    encode, quant_config = SCHEMES_ALL[scheme]
    child = quantised_model(family["base"], tmp_path / scheme, encode, quant_config)
    card, base_card = api.inspect(child), api.inspect(family["base"])
    assert card["total_params"] == base_card["total_params"]
    assert card["quantization"]["method"] == quant_config["quant_method"]
    assert card["quantization"]["quantised_tensors"] == 4 * 7  # q, k, v, o, gate, up, down per layer
    assert card["quantization"]["declared"]["quant_method"] == quant_config["quant_method"]
    assert card["total_bytes"] < base_card["total_bytes"]


@pytest.mark.parametrize(
    ("name", "method"), [("ct_w4a16", "compressed-tensors"), ("bnb_nf4", "bitsandbytes")]
)
def test_children_quantised_by_the_reference_libraries(
    name: str, method: str, family: dict[str, Path], fingerprints: dict[str, Fingerprint], tmp_path: Path
) -> None:
    """The same base quantised by compressed-tensors 0.20 (W4A16) and bitsandbytes 0.50 (NF4, double
    quantisation) themselves: tests/data/quantised/make_fixtures.py."""
    child = tmp_path / name
    shutil.copytree(DATA / f"model_{name}", child)
    shutil.copy(family["base"] / "tokenizer.json", child / "tokenizer.json")
    child_fp = _fp(child)
    related = compare_fingerprints(child_fp, fingerprints["base"])
    assert related.verdict == "related" and related.relation.startswith(f"quantized ({method}")
    assert related.layer_map == {"0": 0, "1": 1, "2": 2, "3": 3}
    assert compare_fingerprints(child_fp, fingerprints["independent"]).verdict == "unrelated"
    card = api.inspect(child)
    assert card["total_params"] == api.inspect(family["base"])["total_params"]
    assert card["quantization"]["method"] == method and card["quantization"]["quantised_tensors"] == 28
