"""What a fingerprint's row reads cost on quantised weights: 128 seeded rows of one
projection (2048 x 2048) in each format modeltrace dequantises, bytes read vs the weight's bytes, and time.

Run: ``PYTHONPATH=src python benchmarks/quantised_rows.py``. Prints a table; not a test. The files
are written by the spec encoders of tests/lineage/quant_encoders.py (checked against the libraries).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: tests/ is a package
import tests.lineage.quant_encoders as enc

from modeltrace.formats.safetensors import SafetensorsReader

SIZE, ROWS = 2048, 128


def main() -> None:
    weight = (np.random.default_rng(0).standard_normal((SIZE, SIZE)) * 0.02).astype(np.float32)
    nf4 = np.array([-1.0, -0.6962, -0.5251, -0.3949, -0.2844, -0.1848, -0.0911, 0.0, 0.0796, 0.1609,
                    0.2461, 0.3379, 0.4407, 0.5626, 0.7230, 1.0], dtype=np.float32)  # fmt: skip
    nested = np.linspace(-1, 1, 256, dtype=np.float32)
    encoders = {
        "compressed-tensors int4 group 32": lambda w: enc.ct_pack(w, 4, 32),
        "compressed-tensors fp8 block 128": lambda w: enc.ct_fp8(w, 128),
        "compressed-tensors nvfp4": enc.ct_nvfp4,
        "gptq int4 group 128 act-order": lambda w: enc.gptq(w, 4, 128, act_order=True),
        "awq int4 group 128": lambda w: enc.awq(w, 128),
        "bitsandbytes nf4 double": lambda w: enc.bnb_4bit(w, nf4, "nf4", True, 64, nested),
        "bitsandbytes int8": enc.bnb_int8,
    }
    rows = np.sort(np.random.default_rng(1).choice(SIZE, ROWS, replace=False))
    print(f"{'format':36} {'weight bytes':>13} {'bytes read':>11} {'share':>6} {'ms':>7}")
    with tempfile.TemporaryDirectory() as folder:
        for label, encode in encoders.items():
            path = Path(folder) / "w.safetensors"
            enc.write_safetensors(path, {f"x.{k}": v for k, v in encode(weight).items()})
            with SafetensorsReader(path) as reader:
                (name,) = reader.tensors()
                before = reader.bytes_read
                start = time.perf_counter()
                values = reader.read_rows(name, rows)
                elapsed = time.perf_counter() - start
                read = reader.bytes_read - before
                size = reader.tensors()[name].nbytes
            error = np.abs(values - weight[rows]).max() / np.abs(weight).max()
            assert error < 0.2, (label, error)
            print(f"{label:36} {size:>13,} {read:>11,} {read / size:>6.1%} {elapsed * 1000:>7.1f}")


if __name__ == "__main__":
    main()
