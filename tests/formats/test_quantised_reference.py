"""Quantised weights read by modeltrace equal the reference libraries' own dequantisation.

The fixtures under tests/data/quantised/ were written by compressed-tensors 0.20, bitsandbytes 0.50
and transformers 5.23 (gpt-oss MXFP4) with ``make_fixtures.py`` there; each ``NAME.expected`` file
holds what the library's decompressor returned (bf16 for most, so equality is up to bf16 rounding
of the same product). The GPTQ file is AutoAWQ 0.2.9's conversion of its AWQ file to the classic
GPTQ/exllama layout (zeros stored minus one).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modeltrace.formats.safetensors import SafetensorsReader

DATA = Path(__file__).resolve().parents[1] / "data" / "quantised"
CASES = sorted(
    path.name[: -len(".safetensors")] for path in DATA.glob("*.safetensors") if ".expected." not in path.name
)
#: Where the library rounds its product to bf16 (8 significant bits) and modeltrace keeps float32.
BF16_RTOL = 2.0**-8


def _expected(case: str) -> tuple[str, np.ndarray]:
    with SafetensorsReader(DATA / f"{case}.expected.safetensors") as reader:
        (name,) = reader.tensors()
        return name, np.asarray(reader.read(name), dtype=np.float32)


def test_every_library_case_is_present() -> None:
    assert len(CASES) >= 18, CASES  # 12 compressed-tensors, 5 bitsandbytes, gpt-oss: a lost file is a failure


@pytest.mark.parametrize("case", CASES)
def test_rows_equal_the_library_dequantisation(case: str) -> None:
    name, expected = _expected(case)
    with SafetensorsReader(DATA / f"{case}.safetensors") as reader:
        listed = reader.tensors()
        assert list(listed) == [name], "the parts fold into one logical weight"
        assert listed[name].shape == expected.shape
        assert len(reader.stored_tensors()) > 1
        whole = reader.read(name)
        np.testing.assert_allclose(whole, expected, rtol=BF16_RTOL, atol=1e-30)
        last = expected.shape[0] - 1
        rows = [min(5, last), 0, last, min(5, last)]
        np.testing.assert_allclose(reader.read_rows(name, rows), expected[rows], rtol=BF16_RTOL, atol=1e-30)
        assert np.count_nonzero(whole) > 0.3 * whole.size  # not a reader returning zeros


#: GPTQ and AWQ store [in, out]: a logical row is a column of the words, so they are read whole.
ROW_LOCAL = [c for c in CASES if not c.startswith(("gpt_oss", "gptq", "awq"))]


@pytest.mark.parametrize("case", ROW_LOCAL)
def test_row_reads_touch_only_their_rows(case: str) -> None:
    """Row-local layouts read a fraction of the file for one row."""
    with SafetensorsReader(DATA / f"{case}.safetensors") as reader:
        (name,) = reader.tensors()
        header = reader.bytes_read
        reader.read_rows(name, [7])
        assert reader.bytes_read - header < 0.25 * reader.total_bytes


def test_gpt_oss_flat_rows_read_one_expert() -> None:
    name, expected = _expected("gpt_oss_mxfp4")
    with SafetensorsReader(DATA / "gpt_oss_mxfp4.safetensors") as reader:
        rows = expected.shape[1]
        flat = reader.read_flat_rows(name, [rows + 3, 2 * rows])  # expert 1 row 3, expert 2 row 0
        np.testing.assert_array_equal(flat, np.stack([expected[1, 3], expected[2, 0]]))
        np.testing.assert_array_equal(reader.read_rows(name, [2])[0], expected[2])
