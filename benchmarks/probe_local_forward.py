"""Time the numpy forward pass of a local behavioural reference and print a table (not a test).

Random weights in the shape of a real model (default: Qwen2.5-0.5B, 494M parameters, about
2 GB as float32, just under the local-reference limit) held in memory, no files. Times the
greedy next token for prompts of a typical behavioural length.

Run: PYTHONPATH=src python benchmarks/probe_local_forward.py [--layers N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from modeltrace.probe.decoder import Decoder, parse_config, tensor_shapes

QWEN25_05B = {
    "model_type": "qwen2", "vocab_size": 151936, "hidden_size": 896, "intermediate_size": 4864,
    "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2,
    "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "tie_word_embeddings": True,
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--layers", type=int, default=24, help="fewer layers for a quick run")
    parser.add_argument("--prompts", type=int, default=40)
    parser.add_argument("--blas-threads", type=int, default=1, help="modeltrace pins 1 (see api/_probe.py)")
    args = parser.parse_args()
    config = parse_config({**QWEN25_05B, "num_hidden_layers": args.layers})
    required, optional = tensor_shapes(config)
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    tensors = {
        name: (rng.standard_normal(shape, dtype=np.float32) * 0.02) for name, shape in required.items()
    }
    tensors |= {
        name: np.zeros(shape, np.float32) for name, shape in optional.items() if name.endswith("_proj.bias")
    }
    built = time.perf_counter()
    decoder = Decoder(config, tensors)
    parameters = sum(value.size for value in tensors.values())
    timings = []
    with threadpool_limits(limits=args.blas_threads, user_api="blas"):
        for length in (8, 24, 64):
            ids = rng.integers(0, config.vocab_size, size=length).tolist()
            decoder.greedy_next_token(ids)  # warm up
            start = time.perf_counter()
            for _ in range(3):
                decoder.greedy_next_token(ids)
            timings.append((length, (time.perf_counter() - start) / 3))
    print(f"model: qwen2 shape, {args.layers} layers, {parameters / 1e6:.0f}M parameters, "
          f"{4 * parameters / 1e9:.2f} GB float32, {args.blas_threads} BLAS thread(s)")  # fmt: skip
    print(f"random weights built in {built - started:.1f} s")
    print(f"{'prompt tokens':<16}{'s / next token':>16}{f's / {args.prompts} prompts':>18}")
    for length, seconds in timings:
        print(f"{length:<16}{seconds:>16.3f}{seconds * args.prompts:>18.1f}")


if __name__ == "__main__":
    main()
