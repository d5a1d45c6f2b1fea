"""The seed case end to end (issue 12, item 4): a Kimi-shaped block-FP8 base, a vendor product made from
it (fine-tuned, routed experts pruned, re-quantised to compressed-tensors INT4) that must come out
related with the right layer map, and an independent model of the same architecture that must not."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from modeltrace import api
from modeltrace.cli.cmd_demo import seed_case_step
from modeltrace.formats.detect import open_model
from modeltrace.zoo import seed_case
from modeltrace.zoo.compressed_tensors import pack_int4_groups
from tests.lineage.quant_encoders import ct_pack


@pytest.fixture(scope="module")
def family(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return api.build_seed_case(tmp_path_factory.mktemp("seed-case"))


def test_vendor_product_is_related_to_the_base_with_the_identity_layer_map(family: dict[str, Path]) -> None:
    result = api.compare(family[seed_case.CHILD], family[seed_case.BASE])
    assert result.verdict == "related"
    assert result.layer_map == {str(layer): layer for layer in range(seed_case.SHAPE.layers)}
    assert "compressed-tensors int4" in result.relation and "fp8" in result.relation


def test_same_architecture_from_an_independent_seed_is_unrelated(family: dict[str, Path]) -> None:
    result = api.compare(family[seed_case.INDEPENDENT], family[seed_case.BASE])
    assert result.verdict == "unrelated"


def test_inspect_names_each_release_format_and_the_pruned_experts(family: dict[str, Path]) -> None:
    child = api.inspect(family[seed_case.CHILD])
    assert child["quantization"]["scheme"] == "compressed-tensors int4 group 32 symmetric"
    assert child["experts"]["routed"] == len(seed_case.KEPT_EXPERTS) < seed_case.SHAPE.experts
    pruned = seed_case.prune_experts(seed_case.make_params(0), seed_case.KEPT_EXPERTS)
    assert child["total_params"] == sum(value.size for value in pruned.values())  # unpacked, not words
    base = api.inspect(family[seed_case.BASE])
    assert base["quantization"]["scheme"] == "fp8 e4m3 block 128x128 (weight_scale_inv)"
    assert base["experts"]["routed"] == seed_case.SHAPE.experts
    config = json.loads((family[seed_case.CHILD] / "config.json").read_text())
    assert "base_model" not in config and config["n_routed_experts"] == len(seed_case.KEPT_EXPERTS)


def test_int4_writer_matches_the_spec_encoder_and_reads_back() -> None:
    weight = np.random.default_rng(3).standard_normal((12, 64)).astype(np.float32)
    ours, spec = pack_int4_groups(weight, 32), ct_pack(weight, 4, 32)
    for part in ("weight_packed", "weight_scale", "weight_shape"):
        assert np.array_equal(ours[part], spec[part][1]), part


def test_files_hold_the_weights_they_claim(family: dict[str, Path]) -> None:
    """The reader's dequantisation of both files is the generator's weights to the format's precision."""
    base = seed_case.make_params(0)
    child = seed_case.prune_experts(seed_case.fine_tune(base, 1000), seed_case.KEPT_EXPERTS)
    name = "model.layers.1.mlp.experts.3.up_proj.weight"  # base expert 4: pruning renumbered it
    for folder, params, tolerance in (
        (family[seed_case.BASE], base, 0.07),
        (family[seed_case.CHILD], child, 0.2),
    ):
        with open_model(folder) as source:
            assert source.weights is not None
            read = np.asarray(source.weights.read(name), dtype=np.float32)
        relative = np.linalg.norm(read - params[name]) / np.linalg.norm(params[name])
        assert relative < tolerance, (folder.name, relative)


def test_demo_step_prints_both_verdicts_and_the_kimi_display_obligation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed_case_step(tmp_path / "seed-case")
    out = capsys.readouterr().out
    lines = out.splitlines()
    related = next(line for line in lines if line.startswith("vendor-product vs kimi-base: "))
    assert "related" in related and "layer map 0->0, 1->1, 2->2" in related
    assert any(line.startswith("independent vs kimi-base: unrelated") for line in lines)
    assert 'display "Kimi K2.5"' in " ".join(out.split()) and "200,000,000" in out
    lineage = (tmp_path / "seed-case" / "vendor-product.lineage.yaml").read_text()
    assert "kimi-base" in lineage and "kimi-k2.5" in lineage
