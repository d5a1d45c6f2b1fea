"""``modeltrace inspect`` and ``modeltrace demo`` end to end, and the demo zoo."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from modeltrace import api
from modeltrace.cli import main
from modeltrace.errors import UsageError

INTERFACE_KEYS = {
    "format", "total_params", "active_params", "activation_rate", "layers", "hidden_size", "vocab_size",
    "experts", "declared",
}  # fmt: skip


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    captured = capsys.readouterr()
    return int(exit_info.value.code or 0), captured.out, captured.err


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return api.build_demo_zoo(tmp_path_factory.mktemp("home"))


def test_zoo_members_all_inspect(zoo: Path) -> None:
    names = [path.name for path in api.demo_zoo_members(zoo)]
    assert {"tiny-llama", "tiny-llama-chat", "tiny-moe", "deepseek-v3.config.json"} <= set(names)
    for path in api.demo_zoo_members(zoo):
        card = api.inspect(path)
        assert set(card) >= INTERFACE_KEYS
        assert card["total_params"] > 0
        if card["format"] != "config":  # weights agree with their own config
            assert card["config_total_params"] in (None, card["total_params"])
    assert sum(f.stat().st_size for f in zoo.rglob("*") if f.is_file()) < 20_000_000


def test_zoo_safetensors_are_readable_by_the_reference_library(zoo: Path) -> None:
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    ours = api.inspect(zoo / "tiny-llama")
    loaded = safetensors_numpy.load_file(zoo / "tiny-llama" / "model.safetensors")
    assert sum(array.size for array in loaded.values()) == ours["total_params"]
    assert loaded["model.norm.weight"].dtype == np.float16


def test_zoo_cards(zoo: Path) -> None:
    moe = api.inspect(zoo / "tiny-moe")
    assert moe["experts"] == {
        "routed": 16,
        "shared": 0,
        "per_token": 2,
        "moe_layers": 3,
        "params_per_expert": 18432,
    }
    assert moe["active_params"] < moe["total_params"]
    chat = api.inspect(zoo / "tiny-llama-chat")
    assert chat["declared"]["base_model"] == ["demo-zoo/tiny-llama"]
    assert chat["declared"]["base_model_relation"] == "finetune"
    assert chat["declared"]["license"] == "apache-2.0"
    deepseek = api.inspect(zoo / "deepseek-v3.config.json")
    assert deepseek["total_params"] == pytest.approx(671e9, rel=0.02)
    assert deepseek["active_params"] == pytest.approx(37e9, rel=0.02)


def test_zoo_rebuild_is_deterministic(zoo: Path, tmp_path: Path) -> None:
    again = api.build_demo_zoo(tmp_path)
    for path in sorted(zoo.rglob("*")):
        if path.is_file():
            assert (again / path.relative_to(zoo)).read_bytes() == path.read_bytes(), path.name


def test_zoo_refuses_to_replace_a_folder_it_did_not_write(tmp_path: Path) -> None:
    (tmp_path / "demo-zoo").mkdir()
    (tmp_path / "demo-zoo" / "precious.txt").write_text("keep me")
    with pytest.raises(UsageError, match="not a demo zoo"):
        api.build_demo_zoo(tmp_path)
    assert (tmp_path / "demo-zoo" / "precious.txt").read_text() == "keep me"


def test_inspect_json_has_interface_keys(zoo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["inspect", str(zoo / "tiny-moe"), "--json"], capsys)
    assert code == 0
    card = json.loads(out)
    assert set(card) >= INTERFACE_KEYS
    assert card["format"] == "safetensors"
    assert card["activation_rate"] == pytest.approx(card["active_params"] / card["total_params"])
    assert "active_params" in card["conventions"]


def test_inspect_human_output(zoo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["inspect", str(zoo / "tiny-llama-chat")], capsys)
    assert code == 0
    assert "Total parameters" in out and "955,520" in out
    assert "demo-zoo/tiny-llama (finetune)" in out


def test_inspect_bare_config(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["inspect", str(data_dir / "configs" / "qwen3-235b-a22b.json"), "--json"], capsys)
    card = json.loads(out)
    assert (code, card["format"], card["layers"], card["hidden_size"], card["vocab_size"]) == (
        0, "config", 94, 4096, 151936,
    )  # fmt: skip
    assert card["experts"]["routed"] == 128 and card["experts"]["per_token"] == 8
    assert card["total_params"] == pytest.approx(235e9, rel=0.02)


def test_inspect_missing_path_is_an_input_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["inspect", str(tmp_path / "nope")], capsys)
    assert code == 3
    assert "no such" in " ".join(err.split())


def test_demo_command_prints_every_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], quick_zoo: Path
) -> None:
    # The demo reuses a lineage zoo already under the home folder instead of training one again.
    (tmp_path / "lineage-zoo").symlink_to(quick_zoo, target_is_directory=True)
    code, out, _ = run_cli(["demo", "--home", str(tmp_path)], capsys)
    assert code == 0
    for name in ("tiny-llama", "tiny-llama-chat", "tiny-moe", "deepseek-v3.config.json"):
        assert name in out
    assert "671.0B" in out
    assert "Lineage accuracy" in out and "PASS" in out  # part 2: the zoo's per-transform table
    relations = {pair["relation"] for pair in api.load_zoo_manifest(quick_zoo)["pairs"]}
    assert [name for name in relations if name not in out] == []  # whole in a pipe, not wrapped
    assert 'display "Kimi K2.5"' in " ".join(out.split())  # part 3: the licence obligation


def test_demo_without_lineage_skips_the_zoo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["demo", "--home", str(tmp_path), "--no-lineage"], capsys)
    assert code == 0
    assert "Lineage accuracy" not in out
    assert not (tmp_path / "lineage-zoo").exists()
    # Step 5, the seed case, needs no torch: it runs either way, under the home folder.
    assert "vendor-product vs kimi-base: related" in out and (tmp_path / "seed-case" / "kimi-base").is_dir()


def test_demo_uses_modeltrace_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MODELTRACE_HOME", str(tmp_path / "state"))
    assert api.build_demo_zoo() == tmp_path / "state" / "demo-zoo"


def test_gguf_zoo_member_when_the_reader_exists(zoo: Path) -> None:
    pytest.importorskip("modeltrace.formats.gguf_file")
    card = api.inspect(zoo / "tiny-llama.gguf")
    safetensors_card = api.inspect(zoo / "tiny-llama")
    assert card["format"] == "gguf"
    for key in ("total_params", "layers", "hidden_size", "vocab_size", "context_length", "kv_heads"):
        assert card[key] == safetensors_card[key], key
    assert card["declared"]["license"] == "apache-2.0"


def test_inspect_shows_the_makers_active_conventions(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(data_dir / "configs" / "gpt-oss-120b.json")
    code, out, _ = run_cli(["inspect", config, "--json"], capsys)
    card = json.loads(out)
    assert code == 0
    assert card["active_params_excluding_input_embedding"] == card["active_params"] - card["embedding_params"]
    assert card["active_params_excluding_embeddings"] == (
        card["active_params"] - card["embedding_params"] - card["head_params"]
    )
    assert set(card["conventions"]) >= {
        "active_params_excluding_input_embedding",
        "active_params_excluding_embeddings",
    }
    code, out, _ = run_cli(["inspect", config], capsys)
    rows = {line.split("  ")[1].strip(): line for line in out.splitlines() if line.startswith("  without")}
    assert "5.13B" in rows["without input embedding"] and "4.55B" in rows["without embedding and head"]
    _, dense, _ = run_cli(["inspect", str(data_dir / "configs" / "llama-3.1-8b.json")], capsys)
    assert "without input embedding" not in dense  # a dense model's makers quote its total
