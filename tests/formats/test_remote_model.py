"""Models opened from URLs: the same fingerprint as from the local files, bytes and requests counted."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from modeltrace import api
from modeltrace.errors import CorruptFileError, RemoteError, UnsupportedFormatError
from modeltrace.fingerprint.model import load_fingerprint
from modeltrace.formats import open_model
from modeltrace.formats.base import STAND_INS
from tests.formats.range_server import Faults, serve_folder
from tests.lineage.synthetic import make_params, write_model


def shard(folder: Path) -> Path:
    """Split the model's tensors over two shards with an index, as Hugging Face does."""
    from safetensors.numpy import load_file

    tensors = load_file(str(folder / "model.safetensors"))
    names = sorted(tensors)
    halves = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    weight_map = {}
    for file_name, part in halves.items():
        save_file({name: tensors[name] for name in part}, str(folder / file_name))
        weight_map.update(dict.fromkeys(part, file_name))
    (folder / "model.safetensors").unlink()
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": weight_map})
    )
    return folder


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shard(write_model(tmp_path_factory.mktemp("remote") / "tiny-llama", make_params(3)))


def same_fingerprint(a: Path, b: Path) -> None:
    left, right = load_fingerprint(a), load_fingerprint(b)
    assert [block.digest for block in left.blocks] == [block.digest for block in right.blocks]
    assert [s.digest for s in left.attention] == [s.digest for s in right.attention]
    assert left.anchors == right.anchors
    np.testing.assert_array_equal(left.anchor_gram, right.anchor_gram)
    for x, y in zip(left.blocks, right.blocks, strict=True):
        np.testing.assert_array_equal(x.up, y.up)


def test_fingerprint_over_http_equals_the_local_one(model: Path, tmp_path: Path) -> None:
    local = api.fingerprint(model, tmp_path / "local.mtfp")
    with serve_folder(model.parent) as (url, faults):
        remote = api.fingerprint(f"{url}/tiny-llama", tmp_path / "remote.mtfp")
    same_fingerprint(tmp_path / "local.mtfp", tmp_path / "remote.mtfp")
    assert remote["bytes_read"] == local["bytes_read"]
    assert remote["total_bytes"] == local["total_bytes"]
    transfer = remote["transfer"]
    assert transfer["requests"] == len(faults.requests)
    assert transfer["bytes_transferred"] < local["total_bytes"] + 64 * 1024  # small files + ranges only
    assert remote["model"] == f"{url}/tiny-llama"
    assert "transfer" not in local
    assert not STAND_INS  # every stand-in was released


def test_hf_repositories_resolve_through_hf_endpoint(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = tmp_path / "hub" / "acme" / "tiny-llama" / "resolve" / "v1"
    shutil.copytree(model, hub)
    with serve_folder(tmp_path / "hub") as (url, faults):
        monkeypatch.setenv("HF_ENDPOINT", url)
        with open_model("hf://acme/tiny-llama@v1") as source:
            assert source.location == "hf://acme/tiny-llama@v1"
            assert source.name == "tiny-llama"
            assert source.config is not None and source.config["model_type"] == "llama"
            assert source.weights is not None and "model.embed_tokens.weight" in source.weights.tensors()
            mirror = source.path
        assert not mirror.exists()
        assert all("/acme/tiny-llama/resolve/v1/" in line for line in faults.requests)


def test_a_single_remote_weight_file(tmp_path: Path) -> None:
    folder = tmp_path / "files"
    folder.mkdir()
    save_file({"w": np.arange(12, dtype=np.float32).reshape(3, 4)}, str(folder / "weights.safetensors"))
    with serve_folder(folder) as (url, _), open_model(f"{url}/weights.safetensors") as source:
        assert source.format == "safetensors"
        assert source.weights is not None
        np.testing.assert_array_equal(source.weights.read_rows("w", [2, 0]), [[8, 9, 10, 11], [0, 1, 2, 3]])


def test_a_remote_folder_with_nothing_readable_says_what_it_looked_for(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with serve_folder(tmp_path) as (url, _), pytest.raises(UnsupportedFormatError, match=r"config\.json"):
        open_model(f"{url}/empty")
    assert not STAND_INS


def test_a_server_ignoring_range_stops_before_the_weights(model: Path) -> None:
    faults = Faults(ignore_range=True)
    with serve_folder(model.parent, faults) as (url, _), pytest.raises(RemoteError, match="ignores Range"):
        open_model(f"{url}/tiny-llama")
    assert not STAND_INS


def test_a_hostile_index_cannot_name_paths_outside_the_mirror(tmp_path: Path) -> None:
    folder = tmp_path / "evil"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    index = {"weight_map": {"w": "../../etc/passwd"}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    outside = pytest.raises(CorruptFileError, match="outside the model folder")
    with serve_folder(tmp_path) as (url, _), outside:
        open_model(f"{url}/evil")
    assert not STAND_INS


def test_the_cli_takes_urls(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from modeltrace.cli import main

    def run(argv: list[str]) -> tuple[int, str]:
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        return int(exit_info.value.code or 0), capsys.readouterr().out

    with serve_folder(model.parent) as (url, _):
        code, out = run(["inspect", f"{url}/tiny-llama", "--json"])
        card = json.loads(out)
        assert code == 0 and card["path"] == f"{url}/tiny-llama" and card["transfer"]["requests"] > 0
        code, out = run(["fingerprint", f"{url}/tiny-llama", "-o", str(tmp_path / "r.mtfp")])
        assert code == 0 and "requests" in out
        code, out = run(["compare", f"{url}/tiny-llama", str(model), "--json"])
        assert code == 0 and json.loads(out)["verdict"] == "same-weights"
    code, _ = run(["inspect", "http://127.0.0.1:9/none", "--json"])
    assert code == 4
