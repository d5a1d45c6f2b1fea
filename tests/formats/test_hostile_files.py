"""Hostile files from outside (issue 19): crashes, hangs and bombs, seen from outside the process.

Each case builds its input in the test (a few KB to a few tens of MB on disk), then runs
``inspect``, ``digest``, ``fingerprint`` and ``compare`` on it in one child process (see
``hostile_run``) with a wall-clock limit and an address-space cap. Every command must exit 0 or 3
with no traceback; the child must not die of a signal (a segfault is exit -11 here, 139 in a
shell) nor run out of time; its peak resident memory must stay under the 1 GB that
docs/formats.md promises. The time limit is the attacker's 60 s, not the documented 10 s: CI
boxes are loaded; ``benchmarks/hostile_files.py`` measures the real figures.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

import tests.formats.hostile_models as models
import tests.formats.hostile_pickles as pickles
from tests.formats.hostile_run import run_commands


def _file(name: str, build: Callable[[], bytes]) -> Callable[[Path], Path]:
    def write(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(build())
        return path

    return write


def _name_bomb_zip() -> bytes:
    return pickles.zip_checkpoint(*pickles.name_bomb())


def _name_bomb_legacy() -> bytes:
    return pickles.legacy_checkpoint(*pickles.name_bomb(legacy=True))


#: case -> builder of the path to give the commands (in the folder it is given)
CASES: dict[str, Callable[[Path], Path]] = {
    # Segfaults: a 400,000-deep tuple hashed as a dict key / set element (C recursion).
    "deep tuple as dict key, zip": _file("m.pt", lambda: pickles.zip_checkpoint(pickles.deep_pickle("key"))),
    "deep tuple in a set, zip": _file("m.pt", lambda: pickles.zip_checkpoint(pickles.deep_pickle("set"))),
    "deep tuple in a frozenset, zip": _file(
        "m.pt", lambda: pickles.zip_checkpoint(pickles.deep_pickle("frozenset"))
    ),
    "deep tuple as dict key, legacy": _file(
        "m.pt", lambda: pickles.legacy_checkpoint(pickles.deep_pickle("key"))
    ),
    "deep tuple in a frozenset, legacy": _file(
        "m.pt", lambda: pickles.legacy_checkpoint(pickles.deep_pickle("frozenset"))
    ),
    # Decompression bombs: data.pkl of 3 GiB (bz2, 2 KB on disk) or 64 MB (lzma), declared 1,000 B.
    "bz2 data.pkl bomb": _file("m.pt", lambda: pickles.compressed_pickle_bomb(zipfile.ZIP_BZIP2)),
    "lzma data.pkl bomb": _file("m.pt", lambda: pickles.compressed_pickle_bomb(zipfile.ZIP_LZMA)),
    "bz2 byteorder bomb": _file(
        "m.pt", lambda: pickles.compressed_pickle_bomb(zipfile.ZIP_BZIP2, member="byteorder")
    ),
    # Name bombs: one 1 MB key above 50,000 entries of one memoized tensor (50 GB of names).
    "name bomb, zip": _file("m.pt", _name_bomb_zip),
    "name bomb, legacy": _file("m.pt", _name_bomb_legacy),
    "24 MB text line, legacy": _file("m.pt", lambda: pickles.legacy_checkpoint(pickles.text_line_pickle())),
    # Hangs: a FIFO as weight file (folder and direct), 30,000-way softmax fan-out, 2^40 experts.
    "FIFO weight file in a folder": models.fifo_folder,
    "FIFO given directly": lambda folder: models.fifo_folder(folder) / "model.safetensors",
    "ONNX softmax fan-out of 30,000": _file("model.onnx", models.onnx_softmax_fanout),
    "2^40 stacked experts, safetensors": _file("model.safetensors", models.stacked_experts),
    "2^40 stacked experts, ONNX": _file("model.onnx", models.onnx_stacked_experts),
    "empty embedding of 2^40 rows": _file(
        "model.safetensors", lambda: models.empty_with_huge_dim([1 << 40, 0], "model.embed_tokens.weight")
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_file_ends_cleanly(tmp_path: Path, case: str) -> None:
    model = tmp_path / "model"
    model.mkdir()
    path = CASES[case](model)
    outcome = run_commands(path, tmp_path)
    assert not outcome.problems(), f"{case}: " + "\n".join(outcome.problems())
    assert set(outcome.exits()) == {"inspect", "digest", "fingerprint", "compare"}
