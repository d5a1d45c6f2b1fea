"""Write the quantised-weight fixtures of tests/formats/test_quantised_reference.py WITH the reference
libraries, each next to the library's own dequantisation of it.

Run from the repository root in an environment holding the libraries (CPU wheels; they are not
dependencies of modeltrace):

    pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
    pip install compressed-tensors==0.20.0 transformers==5.23.0 bitsandbytes==0.50.2 loguru psutil
    pip install --no-deps autoawq==0.2.9 accelerate==1.15.0
    python tests/data/quantised/make_fixtures.py

For each case ``NAME`` it writes ``NAME.safetensors`` (the tensors exactly as the library stores
them for one linear layer ``layer.weight`` of shape [32, 256], or gpt-oss experts) and
``NAME.expected.safetensors`` (``layer.weight``: what the library's own decompressor returns).
The weights are a seeded normal draw, so the files are reproducible.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

HERE = Path(__file__).parent
ROWS, COLS = 32, 256


def weight(seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(ROWS, COLS, generator=generator) * 0.05).to(torch.bfloat16)


def write(name: str, stored: dict[str, torch.Tensor], expected: torch.Tensor, prefix: str = "layer.") -> None:
    save_file(
        {prefix + key: value.contiguous() for key, value in stored.items()}, HERE / f"{name}.safetensors"
    )
    # in the dtype the library returns (bf16 for these), so the comparison is at its rounding
    save_file({prefix + "weight": expected.contiguous()}, HERE / f"{name}.expected.safetensors")


# -- compressed-tensors ---------------------------------------------------------------------------


def compressed_tensors_cases() -> None:
    from compressed_tensors.compressors import BaseCompressor
    from compressed_tensors.quantization import QuantizationArgs, QuantizationScheme
    from compressed_tensors.quantization.utils.helpers import (
        calculate_qparams,
        compute_dynamic_scales_and_zp,
        generate_gparam,
    )

    linear = torch.nn.Linear(COLS, ROWS, bias=False)
    fp8, fp4 = {"num_bits": 8, "type": "float"}, {"num_bits": 4, "type": "float"}
    cases = {
        "ct_int4_group128_sym": ("pack-quantized", {"num_bits": 4, "strategy": "group", "group_size": 128}),
        "ct_int4_group64_asym": (
            "pack-quantized", {"num_bits": 4, "strategy": "group", "group_size": 64, "symmetric": False}),
        "ct_int8_channel_asym_packed": (
            "pack-quantized", {"num_bits": 8, "strategy": "channel", "symmetric": False}),
        "ct_int3_channel_sym": ("pack-quantized", {"num_bits": 3, "strategy": "channel"}),
        "ct_int2_group32_asym": (
            "pack-quantized", {"num_bits": 2, "strategy": "group", "group_size": 32, "symmetric": False}),
        "ct_int8_channel_sym": ("int-quantized", {"num_bits": 8, "strategy": "channel"}),
        "ct_int8_tensor_asym": ("int-quantized", {"num_bits": 8, "strategy": "tensor", "symmetric": False}),
        "ct_fp8_tensor": ("float-quantized", {"num_bits": 8, "type": "float", "strategy": "tensor"}),
        "ct_fp8_channel": ("float-quantized", {"num_bits": 8, "type": "float", "strategy": "channel"}),
        "ct_fp8_block16x128": (
            "float-quantized", {**fp8, "strategy": "block", "block_structure": [16, 128]}),
        "ct_nvfp4": (
            "nvfp4-pack-quantized", {**fp4, "strategy": "tensor_group", "group_size": 16}),
        "ct_mxfp4": (
            "mxfp4-pack-quantized",
            {**fp4, "strategy": "group", "group_size": 32, "scale_dtype": torch.uint8}),
    }  # fmt: skip
    for seed, (name, (fmt, settings)) in enumerate(cases.items()):
        args = QuantizationArgs(**{"type": "int", "symmetric": True, **settings})
        scheme = QuantizationScheme(targets=["Linear"], weights=args)
        w = weight(seed)
        state: dict[str, torch.Tensor] = {"weight": w}
        global_scale = None
        if fmt == "nvfp4-pack-quantized":
            global_scale = generate_gparam(w.min(), w.max()).to(torch.float32)
            state["weight_global_scale"] = global_scale
        if args.strategy in ("channel", "block", "tensor") and fmt != "nvfp4-pack-quantized":
            if args.strategy == "channel":
                low, high = w.amin(dim=1, keepdim=True), w.amax(dim=1, keepdim=True)
            elif args.strategy == "tensor":
                low, high = w.amin().reshape(1), w.amax().reshape(1)
            else:
                block_rows, block_cols = args.block_structure
                blocks = w.reshape(ROWS // block_rows, block_rows, COLS // block_cols, block_cols).transpose(
                    1, 2
                )
                low, high = blocks.amin(dim=(2, 3)), blocks.amax(dim=(2, 3))
            scale, zero_point = calculate_qparams(low, high, args)
        else:
            scale, zero_point = compute_dynamic_scales_and_zp(
                value=w, args=args, module=linear, global_scale=global_scale
            )
        state["weight_scale"] = scale
        if zero_point is not None and not args.symmetric:
            state["weight_zero_point"] = zero_point
        compressor = BaseCompressor.get_value_from_registry(fmt)
        compressed = compressor.compress(dict(state), scheme)
        expected = compressor.decompress(dict(compressed), scheme)["weight"]
        write(name, compressed, expected)


# -- bitsandbytes -------------------------------------------------------------------------------


def bitsandbytes_cases() -> None:
    import bitsandbytes.functional as bnb_functional

    for seed, (quant_type, double) in enumerate(
        (("nf4", False), ("nf4", True), ("fp4", False), ("fp4", True)), start=100
    ):
        w = weight(seed)
        packed, state = bnb_functional.quantize_4bit(
            w, quant_type=quant_type, compress_statistics=double, blocksize=64
        )
        expected = bnb_functional.dequantize_4bit(packed, state)
        # transformers' Params4bit serialisation: X.weight plus X.weight.<quant-state key>
        stored = {
            "weight": packed,
            **{f"weight.{key}": value for key, value in state.as_dict(packed=True).items()},
        }
        write(f"bnb_{quant_type}{'_double' if double else ''}", stored, expected)
    w = weight(110)
    codes, row_absmax, _ = bnb_functional.int8_vectorwise_quant(w.half())
    expected = bnb_functional.int8_vectorwise_dequant(codes, row_absmax)
    write("bnb_int8", {"weight": codes, "SCB": row_absmax}, expected)


# -- AutoAWQ (GEMM) and the GPTQ layout AutoAWQ converts it to ------------------------------------


def _import_autoawq_modules() -> None:
    """Import AutoAWQ's linear modules without ``awq/__init__`` (which pulls datasets and models)."""
    import importlib.util
    import sys
    import types

    spec = importlib.util.find_spec("awq")
    assert spec is not None and spec.submodule_search_locations is not None, "pip install --no-deps autoawq"
    package = types.ModuleType("awq")
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules.setdefault("awq", package)


def awq_and_gptq_cases() -> None:
    _import_autoawq_modules()
    from awq.modules.linear.gemm import WQLinear_GEMM
    from awq.utils.packing_utils import dequantize_gemm, unpack_reorder_pack

    group = 64
    w = weight(300).float()
    linear = torch.nn.Linear(COLS, ROWS, bias=False)
    linear.weight.data = w.clone()
    # AWQ's asymmetric min/max quantiser (awq.quantize.quantizer.pseudo_quantize_tensor), per group
    grouped = w.reshape(-1, group)
    high, low = grouped.amax(dim=1, keepdim=True), grouped.amin(dim=1, keepdim=True)
    scales = ((high - low).clamp(min=1e-5) / 15).reshape(ROWS, -1)
    zeros = (-torch.round(low.reshape(ROWS, -1) / scales)).clamp(0, 15)
    packed = WQLinear_GEMM.from_linear(
        linear, 4, group, scales=scales.t().contiguous(), zeros=zeros.t().contiguous()
    )
    expected = dequantize_gemm(packed.qweight, packed.qzeros, packed.scales, 4, group).t()
    write(
        "awq_gemm_int4",
        {"qweight": packed.qweight, "qzeros": packed.qzeros, "scales": packed.scales},
        expected,
    )
    # AutoAWQ's exllama conversion writes the classic GPTQ layout (zeros stored minus one)
    qweight, qzeros = unpack_reorder_pack(packed.qweight, packed.qzeros, 4)
    write("gptq_int4_from_awq", {"qweight": qweight, "qzeros": qzeros, "scales": packed.scales}, expected)


# -- gpt-oss MXFP4 experts ------------------------------------------------------------------------


def gpt_oss_case() -> None:
    from transformers.integrations.mxfp4 import convert_moe_packed_tensors

    experts, rows, hidden = 3, 16, 64
    generator = torch.Generator().manual_seed(200)
    blocks = torch.randint(0, 256, (experts, rows, hidden // 32, 16), dtype=torch.uint8, generator=generator)
    scales = torch.randint(118, 130, (experts, rows, hidden // 32), dtype=torch.uint8, generator=generator)
    # transformers returns the [experts, hidden, rows] parameter; the logical tensor is its transpose
    dense = convert_moe_packed_tensors(blocks, scales, dtype=torch.float32).transpose(1, 2)
    prefix = "model.layers.0.mlp.experts."
    save_file({prefix + "gate_up_proj_blocks": blocks, prefix + "gate_up_proj_scales": scales},
              HERE / "gpt_oss_mxfp4.safetensors")  # fmt: skip
    save_file({prefix + "gate_up_proj": dense.contiguous()}, HERE / "gpt_oss_mxfp4.expected.safetensors")


# -- whole synthetic models quantised by the libraries (compare end to end) ----------------------------


def library_models() -> None:
    """The synthetic Llama ``make_params(1)`` of tests/lineage/synthetic.py with every projection
    quantised by compressed-tensors (W4A16 symmetric, Kimi K2.5's release format, in groups of 16: the
    synthetic hidden size 48 is no multiple of Kimi's 32) and by
    bitsandbytes (NF4, double quantisation); embeddings and head stored bf16, norms F32."""
    import sys

    import bitsandbytes.functional as bnb_functional
    from compressed_tensors.compressors import BaseCompressor
    from compressed_tensors.quantization import QuantizationArgs, QuantizationScheme
    from compressed_tensors.quantization.utils.helpers import compute_dynamic_scales_and_zp

    sys.path.insert(0, str(HERE.parents[2]))  # the repository root: tests/ is a package
    from tests.lineage.synthetic import make_params, write_model

    params = make_params(1)
    args = QuantizationArgs(num_bits=4, type="int", symmetric=True, strategy="group", group_size=16)
    scheme = QuantizationScheme(targets=["Linear"], weights=args)
    compressor = BaseCompressor.get_value_from_registry("pack-quantized")
    linear = torch.nn.Linear(1, 1, bias=False)
    group_0 = {"targets": ["Linear"], "weights": args.model_dump(mode="json")}
    quant_configs = {
        "ct_w4a16": {"quant_method": "compressed-tensors", "format": "pack-quantized", "ignore": ["lm_head"],
                     "config_groups": {"group_0": group_0}},
        "bnb_nf4": {"quant_method": "bitsandbytes", "load_in_4bit": True, "bnb_4bit_quant_type": "nf4",
                    "bnb_4bit_use_double_quant": True, "bnb_4bit_compute_dtype": "bfloat16"},
    }  # fmt: skip
    for name, quant_config in quant_configs.items():
        folder = HERE / f"model_{name}"
        write_model(folder, {k: v[:1] for k, v in params.items()})  # config.json and tokenizer.json only
        config = json.loads((folder / "config.json").read_text())
        config.update(intermediate_size=params["model.layers.0.mlp.up_proj.weight"].shape[0])
        config["quantization_config"] = quant_config
        (folder / "config.json").write_text(json.dumps(config, indent=1))
        (folder / "tokenizer.json").unlink()  # the tests write the synthetic vocabulary themselves
        stored: dict[str, torch.Tensor] = {}
        for key, value in params.items():
            tensor = torch.from_numpy(value)
            prefix = key[: -len("weight")]
            if not (key.endswith("_proj.weight") and ".layers." in key):
                stored[key] = tensor if value.ndim == 1 else tensor.to(torch.bfloat16)
            elif name == "ct_w4a16":
                w = tensor.to(torch.bfloat16)
                scale, _ = compute_dynamic_scales_and_zp(value=w, args=args, module=linear)
                compressed = compressor.compress({"weight": w, "weight_scale": scale}, scheme)
                stored.update({prefix + part: value for part, value in compressed.items()})
            else:
                packed, state = bnb_functional.quantize_4bit(
                    tensor.to(torch.bfloat16), quant_type="nf4", compress_statistics=True, blocksize=64
                )
                stored[key] = packed
                stored.update({f"{key}.{part}": value for part, value in state.as_dict(packed=True).items()})
        save_file({k: v.contiguous() for k, v in stored.items()}, folder / "model.safetensors")


def main() -> None:
    compressed_tensors_cases()
    bitsandbytes_cases()
    awq_and_gptq_cases()
    gpt_oss_case()
    library_models()
    (HERE / "versions.json").write_text(json.dumps(_versions(), indent=2) + "\n")


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    names = ("torch", "compressed-tensors", "bitsandbytes", "transformers", "autoawq")
    return {name: version(name) for name in names}


if __name__ == "__main__":
    main()
