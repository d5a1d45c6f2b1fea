"""Hostile inputs that used to end in a traceback (exit 1) or were read silently (issue 19, issue 12
item 5): run in-process through the CLI entry point, each must give exit 0 or 3 and, where the
issue asks, say what it found (polyglot warnings, the symlink rule)."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import tempfile
from pathlib import Path

import pytest

import tests.formats.hostile_models as models
import tests.formats.hostile_pickles as pickles
from modeltrace.errors import ResourceLimitError
from modeltrace.formats import open_model
from modeltrace.formats.hf_folder import parse_front_matter
from modeltrace.formats.onnx_file import ONNXReader
from modeltrace.formats.symlinks import hf_cache_repository, symlink_allowed, symlink_policy
from tests.formats.hostile_driver import COMMANDS, run


def _all_commands(path: Path, workdir: Path, *extra: str) -> dict[str, dict]:
    results = {command: run(command, str(path), str(workdir)) for command in COMMANDS}
    for command, result in results.items():
        assert result["traceback"] is None, f"{command}: {result['traceback']}"
        assert result["exit"] in (0, 3), f"{command}: exit {result['exit']} {result['stderr']}"
    return results


def _write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


# -- numbers, shapes and graphs ---------------------------------------------------------------------


def test_5000_digit_integer_in_a_header_is_a_format_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "model.safetensors", models.huge_integer_header())
    results = _all_commands(path, tmp_path)
    assert {result["exit"] for result in results.values()} == {3}
    assert "5,000 characters" in results["inspect"]["stderr"]


def _torch_empty(shape: tuple[int, ...]) -> bytes:
    root = pickles.Pickle().raw(b"}").text("model.embed_tokens.weight").tensor("0", 0, shape).raw(b"s")
    return pickles.zip_checkpoint(root.stop(), {"0": b""})


EMPTY_WITH_HUGE_DIM = {
    "safetensors [0, 2^40]": ("model.safetensors", lambda: models.empty_with_huge_dim([0, 1 << 40])),
    "safetensors [2^40, 0] q_proj": ("model.safetensors", lambda: models.empty_with_huge_dim([1 << 40, 0])),
    "safetensors [0, 2^40] embedding": (
        "model.safetensors",
        lambda: models.empty_with_huge_dim([0, 1 << 40], "model.embed_tokens.weight"),
    ),
    "onnx [0, 2^40]": ("model.onnx", lambda: models.onnx_empty_with_huge_dim([0, 1 << 40])),
    "onnx [2^40, 0]": ("model.onnx", lambda: models.onnx_empty_with_huge_dim([1 << 40, 0])),
    "gguf [2^40, 0]": ("model.gguf", lambda: models.gguf_empty_with_huge_dim([1 << 40, 0])),
    "gguf [0, 2^40]": ("model.gguf", lambda: models.gguf_empty_with_huge_dim([0, 1 << 40])),
    "torch [2^40, 0] embedding": ("model.pt", lambda: _torch_empty((1 << 40, 0))),
    "torch [0, 2^40] embedding": ("model.pt", lambda: _torch_empty((0, 1 << 40))),
}


@pytest.mark.parametrize("case", list(EMPTY_WITH_HUGE_DIM))
def test_empty_tensor_with_a_huge_dimension_ends_cleanly(tmp_path: Path, case: str) -> None:
    name, build = EMPTY_WITH_HUGE_DIM[case]
    _all_commands(_write(tmp_path, name, build()), tmp_path)


@pytest.mark.parametrize("op_type", ["MatMul", "Softmax"])
def test_onnx_node_without_output(tmp_path: Path, op_type: str) -> None:
    path = _write(tmp_path, "model.onnx", models.onnx_without_output(op_type))
    with ONNXReader(path) as reader:
        graph = reader.graph()
        assert [weight.weight for weight in graph.matmul_weights()] == ["w"] * (
            2 if op_type != "MatMul" else 1
        )
        graph.attention_value_weights()  # must not raise IndexError
    _all_commands(path, tmp_path)


def test_softmax_walk_is_linear_and_finds_the_same_values(tmp_path: Path) -> None:
    """The multi-source walk finds the products within four hops of any softmax, once each."""
    path = _write(tmp_path, "model.onnx", models.onnx_softmax_fanout(width=200))
    with ONNXReader(path) as reader:
        graph = reader.graph()
        assert len(graph.consumers("s")) == 400  # 200 MatMuls and 200 Casts read the softmax
        values = graph.attention_value_weights()
    assert values == []  # the scores multiply a weight directly: no value projection behind it


# -- folders ----------------------------------------------------------------------------------------


def test_digest_of_a_folder_1100_deep(tmp_path: Path) -> None:
    # Outside pytest's tmp_path: its clean-up (shutil.rmtree) recurses once per level and would
    # fail on this tree in every later session; rm removes it without recursion.
    scratch = Path(tempfile.mkdtemp(prefix="modeltrace-deep-"))
    try:
        folder = models.deep_folder(scratch / "model")
        result = run("digest", str(folder), str(tmp_path))
    finally:
        subprocess.run(["rm", "-rf", str(scratch)], check=True)
    assert result["exit"] == 0, result["traceback"] or result["stderr"]
    assert json.loads(result["stdout"])["files"] == 2


@pytest.mark.parametrize("case", list(models.BAD_FRONT_MATTER))
def test_bad_card_front_matter_is_a_format_error(tmp_path: Path, case: str) -> None:
    folder = models.card_folder(tmp_path / "model", models.BAD_FRONT_MATTER[case])
    results = _all_commands(folder, tmp_path)
    if case in ("bad-date", "bad-timestamp"):
        assert results["inspect"]["exit"] == 0  # dates stay strings: nothing to construct
        assert json.loads(results["inspect"]["stdout"])["declared"]["license"] == "mit"
    else:
        assert {result["exit"] for result in results.values()} == {3}, case
        assert "front-matter" in results["inspect"]["stderr"]
    assert not Path("/tmp/pwned").exists()


def test_card_loader_builds_plain_values_only() -> None:
    text = "---\nlicense: mit\ndate: 2024-01-02\nn: 3\nf: 1.5\nb: true\nz: null\nl: [a, 1]\n---\n"
    assert parse_front_matter(text, Path("README.md")) == {
        "license": "mit", "date": "2024-01-02", "n": 3, "f": 1.5, "b": True, "z": None, "l": ["a", 1],
    }  # fmt: skip


# -- pickle nesting ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("depth", "ok"), [(50, True), (70, False)])
def test_pickle_nesting_is_bounded_before_unpickling(tmp_path: Path, depth: int, ok: bool) -> None:
    """Depth counts containers however they are built (TUPLE1 here: no MARK to count)."""
    nested = pickles.Pickle().raw(b"}").text("weight").tensor("0", 4, (2, 2)).raw(b"s")
    nested.raw(b"\x85" * depth)  # wrap the state dict in `depth` one-tuples
    path = _write(tmp_path, "m.pt", pickles.zip_checkpoint(nested.stop(), {"0": bytes(16)}))
    if ok:
        with open_model(path) as source:
            assert source.weights is not None
            assert list(source.weights.tensors()) == ["0" + ".0" * (depth - 1) + ".weight"]
    else:
        with pytest.raises(ResourceLimitError, match="nests objects deeper"):
            open_model(path)


def test_pickle_nesting_built_in_place_is_bounded(tmp_path: Path) -> None:
    """A list deepened through a memo reference after it was memoized: the other reference sees it."""
    code = pickles.Pickle().raw(b"]")
    code.get(code.put())  # the list, and the same list again from the memo
    code.raw(b"]" * 40 + b"a" * 39 + b"a")  # a 40-deep chain appended through the memo reference
    code.raw(b"0" + b"\x85" * 30)  # POP that reference; wrap the first one in 30 tuples: 71 deep
    path = _write(tmp_path, "m.pt", pickles.zip_checkpoint(code.stop()))
    with pytest.raises(ResourceLimitError, match="nests objects deeper"):
        open_model(path)


# -- polyglots --------------------------------------------------------------------------------------


POLYGLOT_FINDING = {
    "legacy-first": "after the legacy checkpoint end in a zip archive",
    "zip-first": "after the zip archive hold a pickle",
    "nested": "zip member 'archive/extra/payload.pt' holds a pickle",
}


@pytest.mark.parametrize("order", list(POLYGLOT_FINDING))
def test_polyglot_checkpoint_is_flagged(tmp_path: Path, order: str) -> None:
    path = _write(tmp_path, "model.pt", pickles.polyglot(order))
    for command in ("inspect", "digest"):
        result = run(command, str(path), str(tmp_path))
        assert result["exit"] == 0, result["stderr"]
        payload = json.loads(result["stdout"])
        assert payload["unsafe_pickle"] is True
        assert len(payload["warnings"]) == 1 and POLYGLOT_FINDING[order] in payload["warnings"][0]
        assert "unsafe_pickle: true" in result["stderr"]


@pytest.mark.parametrize("layout", ["zip", "legacy"])
def test_plain_checkpoints_are_not_flagged(tmp_path: Path, layout: str) -> None:
    torch = pytest.importorskip("torch")
    path = tmp_path / "model.pt"
    torch.save(
        {"w": torch.ones(2, 3), "n": {"b": torch.zeros(2)}},
        path,
        _use_new_zipfile_serialization=layout == "zip",
    )
    for data in (path.read_bytes(), pickles.benign_zip() if layout == "zip" else pickles.benign_legacy()):
        path.write_bytes(data)
        result = run("inspect", str(path), str(tmp_path))
        payload = json.loads(result["stdout"])
        assert (payload["unsafe_pickle"], payload["warnings"]) == (False, [])
        assert "warning" not in result["stderr"]


# -- symlinks ---------------------------------------------------------------------------------------


def _hf_cache(root: Path) -> Path:
    """``models--org--name/snapshots/rev/`` whose files link to ``../../blobs/``, as the hub writes."""
    from safetensors.numpy import save

    repository = root / "hub" / "models--org--name"
    blobs, snapshot = repository / "blobs", repository / "snapshots" / "0123abcd"
    blobs.mkdir(parents=True)
    snapshot.mkdir(parents=True)
    files = {
        "config.json": json.dumps(models.LLAMA_CONFIG).encode(),
        "model.safetensors": save(models.tiny_llama_tensors()),
    }
    for index, (name, content) in enumerate(files.items()):
        (blobs / f"sha{index}").write_bytes(content)
        (snapshot / name).symlink_to(Path("../../blobs") / f"sha{index}")
    return snapshot


def test_symlink_rule_as_a_function(tmp_path: Path) -> None:
    snapshot = _hf_cache(tmp_path)
    outside = tmp_path / "secret.json"
    outside.write_text("{}")
    (snapshot / "tokenizer.json").symlink_to(outside)
    assert hf_cache_repository(snapshot) == tmp_path / "hub" / "models--org--name"
    assert hf_cache_repository(tmp_path) is None
    config, leak = snapshot / "config.json", snapshot / "tokenizer.json"
    assert symlink_allowed(config, snapshot, "hf-cache") and symlink_allowed(config, snapshot, "always")
    assert not symlink_allowed(config, snapshot, "never")  # the service follows nothing out
    assert not symlink_allowed(leak, snapshot, "hf-cache") and not symlink_allowed(leak, snapshot, "never")
    assert symlink_allowed(leak, snapshot, "always")
    inside = snapshot / "copy.json"
    inside.symlink_to("config.json")  # a link within the folder is fine under every policy
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "a.json").write_text("{}")
    (plain / "b.json").symlink_to("a.json")
    assert symlink_allowed(plain / "b.json", plain, "never")


def test_hf_cache_snapshot_reads_without_a_flag(tmp_path: Path) -> None:
    snapshot = _hf_cache(tmp_path)
    for command in ("inspect", "digest"):
        result = run(command, str(snapshot), str(tmp_path))
        assert result["exit"] == 0, result["stderr"]
    with symlink_policy("never"), pytest.raises(Exception, match="outside the model folder"):
        open_model(snapshot)


@pytest.mark.parametrize("leaking", ["config.json", "model.safetensors", "tokenizer.json", "README.md"])
def test_symlink_out_of_the_folder_needs_the_flag(tmp_path: Path, leaking: str) -> None:
    from safetensors.numpy import save

    folder = tmp_path / "model"
    folder.mkdir()
    files = {
        "config.json": json.dumps(models.LLAMA_CONFIG).encode(),
        "model.safetensors": save(models.tiny_llama_tensors()),
        "tokenizer.json": b'{"model": {"vocab": {"a": 0}}}',
        "README.md": b"---\nlicense: mit\n---\n",
    }
    for name, content in files.items():
        target = tmp_path / ("outside-" + name) if name == leaking else folder / name
        target.write_bytes(content)
    (folder / leaking).symlink_to(tmp_path / ("outside-" + leaking))
    for command in COMMANDS:
        refused = run(command, str(folder), str(tmp_path))
        assert refused["exit"] == 3 and "--follow-symlinks" in refused["stderr"], (command, refused["stderr"])
        followed = _run_with_flag(command, folder, tmp_path)
        assert followed["exit"] == 0, (command, followed)


def _run_with_flag(command: str, folder: Path, workdir: Path) -> dict:
    from typer.testing import CliRunner

    from modeltrace.cli import app

    arguments = {
        "fingerprint": ["fingerprint", str(folder), "-o", str(workdir / "out.mtfp")],
        "compare": ["compare", str(folder), str(folder)],
    }.get(command, [command, str(folder)])
    result = CliRunner().invoke(app, [*arguments, "--json", "--follow-symlinks"])
    return {"exit": result.exit_code, "output": result.output[-500:], "exception": repr(result.exception)}


def test_index_shard_symlink_leaving_the_folder(tmp_path: Path) -> None:
    from safetensors.numpy import save

    folder = tmp_path / "model"
    folder.mkdir()
    (tmp_path / "shard.safetensors").write_bytes(
        save({"w": models.tiny_llama_tensors()["model.norm.weight"]})
    )
    (folder / "a.safetensors").symlink_to(tmp_path / "shard.safetensors")
    index = {"weight_map": {"w": "a.safetensors"}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(Exception, match="outside the model folder"):
        open_model(folder / "model.safetensors.index.json")
    with symlink_policy("always"), open_model(folder / "model.safetensors.index.json") as source:
        assert source.weights is not None and list(source.weights.tensors()) == ["w"]
    assert os.path.islink(folder / "a.safetensors") and struct.calcsize("<Q") == 8
