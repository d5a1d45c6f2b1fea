"""Row reads vs full reads on a large safetensors file: bytes touched, time and peak memory.

Writes a synthetic BF16 checkpoint (4096 x 4096 matrices, ~2 GB by default) in chunks, then
reads 1 % of the rows of every tensor with ``read_rows`` and, for comparison, every tensor whole
with ``read``. The file's pages are dropped from the page cache (``posix_fadvise DONTNEED``)
before each phase so both start cold. Prints a table:

    PYTHONPATH=src python benchmarks/read_rows.py [--size-gb 2] [--dir DIR] [--fraction 0.01]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import struct
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np

from modeltrace.formats.safetensors import SafetensorsReader

ROWS, COLS = 4096, 4096
CHUNK_ELEMENTS = 1 << 22  # 8 MiB of BF16 per write: the writer never holds a whole tensor


def write_checkpoint(path: Path, size_bytes: int, seed: int = 0) -> int:
    """A safetensors file of BF16 [ROWS, COLS] tensors totalling about ``size_bytes``."""
    tensor_bytes = ROWS * COLS * 2
    count = max(1, round(size_bytes / tensor_bytes))
    header = {
        f"model.layers.{index}.weight": {
            "dtype": "BF16",
            "shape": [ROWS, COLS],
            "data_offsets": [index * tensor_bytes, (index + 1) * tensor_bytes],
        }
        for index in range(count)
    }
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)  # keep the data buffer 8-byte aligned
    rng = np.random.default_rng(seed)
    with path.open("wb") as handle:
        handle.write(struct.pack("<Q", len(encoded)) + encoded)
        for _ in range(count * ROWS * COLS // CHUNK_ELEMENTS):
            # Random BF16 bit patterns with the exponent's top bit cleared: finite values below 2.
            bits = rng.integers(0, 1 << 16, CHUNK_ELEMENTS, dtype=np.uint16) & 0xBFFF
            handle.write(bits.tobytes())
        handle.flush()
        os.fsync(handle.fileno())
    return count


def drop_from_page_cache(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(descriptor)


def _proc_status_bytes(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def start_rss_window() -> int:
    """Reset the RSS high-water mark where Linux allows it (so a phase's peak is its own) and
    return the baseline to subtract: current RSS, or the old high-water mark without a reset."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        current = _proc_status_bytes("VmRSS")
        if current is not None:
            return current
    except OSError:
        pass
    return peak_rss_bytes()


def peak_rss_bytes() -> int:
    high_water = _proc_status_bytes("VmHWM")
    if high_water is not None:
        return high_water
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is KiB on Linux, bytes on macOS
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def measure(path: Path, work: Callable[[SafetensorsReader], int]) -> dict[str, float]:
    """Run ``work`` on a fresh reader from a cold cache; returns bytes, time and memory figures."""
    drop_from_page_cache(path)
    rss_before = start_rss_window()
    tracemalloc.start()
    start = time.perf_counter()
    with SafetensorsReader(path) as reader:
        largest_result = work(reader)
        requested = reader.bytes_read
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {
        "requested": requested,
        "seconds": seconds,
        "peak": peak,
        "rss_delta": peak_rss_bytes() - rss_before,
        "largest_result": largest_result,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-gb", type=float, default=2.0, help="file size in GB (default 2)")
    parser.add_argument(
        "--dir", type=Path, default=None, help="where to write the file (default: a temp dir)"
    )
    parser.add_argument(
        "--fraction", type=float, default=0.01, help="fraction of rows to read (default 0.01)"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        path = Path(folder) / "bench.safetensors"
        started = time.perf_counter()
        count = write_checkpoint(path, int(args.size_gb * 1e9))
        file_bytes = path.stat().st_size
        elapsed = time.perf_counter() - started
        print(f"wrote {file_bytes:,} bytes ({count} BF16 tensors of {ROWS}x{COLS}) in {elapsed:.1f} s")
        rng = np.random.default_rng(1)
        picked = max(1, round(ROWS * args.fraction))

        def read_some_rows(reader: SafetensorsReader) -> int:
            largest = 0
            for name in reader.tensors():
                rows = rng.choice(ROWS, size=picked, replace=False)
                largest = max(largest, reader.read_rows(name, rows).nbytes)
            return largest

        def read_everything(reader: SafetensorsReader) -> int:
            return max(reader.read(name).nbytes for name in reader.tensors())

        # Row reads first: without a high-water reset (non-Linux) the smaller phase must come first.
        results = {
            f"read_rows {args.fraction:.0%} of rows": measure(path, read_some_rows),
            "read (full tensors)": measure(path, read_everything),
        }

    print(f"file: {file_bytes:,} bytes, {count} tensors, {picked} of {ROWS} rows each for read_rows\n")
    header = (
        "mode",
        "bytes requested",
        "of file",
        "wall s",
        "peak alloc",
        "peak RSS over start",
        "largest result",
    )
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for mode, figures in results.items():
        print(
            f"{mode} | {figures['requested']:,.0f} | {figures['requested'] / file_bytes:.2%} | "
            f"{figures['seconds']:.2f} | {figures['peak'] / 2**20:,.1f} MiB | "
            f"{figures['rss_delta'] / 2**20:,.1f} MiB | {figures['largest_result'] / 2**20:,.1f} MiB"
        )


if __name__ == "__main__":
    main()
