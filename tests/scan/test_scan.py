"""``modeltrace scan``: local and Ray workers, rescans that add nothing, failures, lists, globs, URLs."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from modeltrace import api
from modeltrace.cli import main
from tests.formats.range_server import serve_folder
from tests.scan.detect_helpers import detections, register_serially, write_family
from tests.scan.scan_helpers import COMMIT, serve_hub, write_models


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    captured = capsys.readouterr()
    return int(exit_info.value.code or 0), captured.out, captured.err


def _statuses(result: dict) -> dict[str, str]:
    return {Path(row["source"]).name: row["status"] for row in result["results"]}


def _graph_state(db: str) -> tuple[list[tuple[int, str]], list[tuple[int, int, int]]]:
    models = api.registry_list(db=db)["models"]
    edges = api.registry_graph(db=db)["edges"]
    return [(m["id"], m["digest"]) for m in models], [(e["id"], e["suspect_id"], e["base_id"]) for e in edges]


def test_local_scan_registers_a_folder_and_a_rescan_adds_nothing(
    models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    collection = models["base"].parent
    (collection / "notes.md").write_text("not a model")
    db = str(tmp_path / "registry.sqlite")
    code, out, _ = _cli(capsys, "scan", str(collection), "--workers", "2", "--db", db, "--json")
    result = json.loads(out)
    assert code == 0 and result["exit_code"] == 0
    assert _statuses(result) == {"base": "registered", "child": "registered", "stranger": "registered"}
    assert result["totals"]["registered"] == 3 and result["totals"]["executor"] == "local"
    # base-child and stranger with both, compared in the workers reading the registry.
    assert result["totals"]["comparisons"] == 3 and result["totals"]["fingerprints_from"] == "registry"
    assert result["totals"]["worker_cpu_s"] > 0
    assert all(row["bytes"] > 0 and row["digest"] for row in result["results"])
    assert {Path(item["path"]).name for item in result["ignored"]} == {"notes.md"}
    before = _graph_state(db)
    # Registered in the order given, whatever order the workers finished in.
    assert [name for name in (Path(r["source"]).name for r in result["results"])] == [
        "base",
        "child",
        "stranger",
    ]
    assert [(e["suspect"], e["base"]) for e in api.registry_graph(db=db)["edges"]] == [("child", "base")]

    code, out, _ = _cli(capsys, "scan", str(collection), "--workers", "2", "--db", db, "--json")
    again = json.loads(out)
    assert code == 0
    assert set(_statuses(again).values()) == {"skipped"}
    assert all(row["bytes"] == 0 and "already registered" in row["reason"] for row in again["results"])
    assert _graph_state(db) == before


def test_ray_scan_on_a_local_instance(models: dict[str, Path], tmp_path: Path, ray_instance: None) -> None:
    db = str(tmp_path / "registry.sqlite")
    sources = [str(path) for path in models.values()]
    result = api.scan(sources, executor="ray", workers=2, db=db)
    assert result["exit_code"] == 0 and result["totals"]["executor"] == "ray"
    assert _statuses(result) == {"base": "registered", "child": "registered", "stranger": "registered"}
    assert [(e["suspect"], e["base"]) for e in api.registry_graph(db=db)["edges"]] == [("child", "base")]
    before = _graph_state(db)
    again = api.scan(sources, executor="ray", workers=2, db=db)
    assert set(_statuses(again).values()) == {"skipped"} and again["exit_code"] == 0
    assert _graph_state(db) == before


def test_ray_tasks_detect_what_registry_add_detects(tmp_path: Path, ray_instance: None) -> None:
    """Comparisons in Ray tasks, the fingerprints shared through Ray's object store (as for workers
    on a cluster, which cannot open this machine's SQLite file): the graph of registry add."""
    family = write_family(tmp_path / "family")
    serial_db, ray_db = str(tmp_path / "serial.sqlite"), str(tmp_path / "ray.sqlite")
    register_serially(family, serial_db)
    result = api.scan(
        [str(p) for p in family], executor="ray", workers=2, db=ray_db, fingerprints_from="shared"
    )
    assert result["exit_code"] == 0, result
    assert detections(ray_db) == detections(serial_db) != []


def test_a_scan_into_postgresql_resumes_too(models: dict[str, Path], pg_database: str) -> None:
    sources = [str(models["base"]), str(models["child"])]
    result = api.scan(sources, workers=2, db=pg_database)
    assert result["exit_code"] == 0 and _statuses(result) == {"base": "registered", "child": "registered"}
    before = _graph_state(pg_database)
    assert [(e["suspect"], e["base"]) for e in api.registry_graph(db=pg_database)["edges"]] == [
        ("child", "base")
    ]
    again = api.scan(sources, workers=2, db=pg_database)
    assert set(_statuses(again).values()) == {"skipped"} and _graph_state(pg_database) == before


def test_failing_sources_get_a_summary_and_a_nonzero_exit(
    models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\xff" * 8 + b"{not json")
    db = str(tmp_path / "registry.sqlite")
    args = ("scan", str(models["base"]), str(broken), str(tmp_path / "missing"), "--workers", "1", "--db", db)
    code, out, _ = _cli(capsys, *args, "--json")
    result = json.loads(out)
    assert code == 3 == result["exit_code"]
    rows = {Path(row["source"]).name: row for row in result["results"]}
    assert rows["base"]["status"] == "registered"
    assert (
        rows["broken.safetensors"]["status"] == "failed"
        and "broken.safetensors" in rows["broken.safetensors"]["reason"]
    )
    assert rows["broken.safetensors"]["attempts"] == 1  # a format error is not retried
    assert rows["missing"]["status"] == "failed" and rows["missing"]["reason"] == "no such file or folder"
    code, out, err = _cli(capsys, *args)
    assert code == 3
    assert "1 skipped, 2 failed" in out
    assert "2 failed:" in err and "broken.safetensors" in err and "no such file or folder" in err


def test_a_list_of_sources_and_a_glob(models: dict[str, Path], tmp_path: Path) -> None:
    listing = tmp_path / "sources.txt"
    listing.write_text(
        f"# models to scan\n\n{models['child']}  # the fine-tune\n{models['child']}\n", encoding="utf-8"
    )
    db = str(tmp_path / "registry.sqlite")
    pattern = str(models["base"].parent / "ba*")
    events: list[dict] = []
    result = api.scan([f"@{listing}", pattern], workers=2, db=db, progress=events.append)
    assert result["exit_code"] == 0
    assert events[0]["done"] == 0 and events[-1]["done"] == events[-1]["total"] == 2
    assert events[-1]["registered"] == 2 and events[-1]["bytes"] == result["totals"]["bytes"] > 0
    assert _statuses(result) == {"child": "registered", "base": "registered"}  # the duplicate counts once
    nothing = api.scan([str(tmp_path / "nothing-*")], workers=1, db=db)
    assert nothing["exit_code"] == 3 and nothing["results"][0]["reason"] == "the pattern matches nothing"


def test_an_http_source_is_read_by_ranges_and_detected_against_a_local_one(
    tmp_path: Path, models: dict[str, Path]
) -> None:
    served = write_models(tmp_path / "served")
    db = str(tmp_path / "registry.sqlite")
    with serve_folder(tmp_path / "served") as (url, faults):
        result = api.scan([str(models["base"]), f"{url}/child"], workers=2, db=db)
        assert result["exit_code"] == 0, result
        remote = next(row for row in result["results"] if row["source"].startswith("http"))
        assert remote["status"] == "registered" and remote["requests"] > 0
        assert remote["resolver_requests"] == 0  # a plain URL has no Hub resolver
        # Headers and sampled rows only, never the whole weight file.
        assert 0 < remote["bytes"] < (served["child"] / "model.safetensors").stat().st_size
        assert remote["digest"].startswith("remote:") and remote["detected"] == 1
        edges = api.registry_graph(db=db)["edges"]
        assert [(e["suspect"], e["base"], e["verdict"]) for e in edges] == [("child", "base", "related")]
        served_before = len(faults.requests)
        again = api.scan([f"{url}/child"], workers=1, db=db)
        assert again["results"][0]["status"] == "skipped" and len(faults.requests) == served_before


def test_hf_sources_are_pinned_to_their_commit(
    tmp_path: Path, models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = str(tmp_path / "registry.sqlite")
    with serve_hub(tmp_path / "hub", {"lab/child": models["child"]}) as (url, faults):
        monkeypatch.setenv("HF_ENDPOINT", url)
        result = api.scan(["hf://lab/child"], workers=1, db=db)
        row = result["results"][0]
        assert row["status"] == "registered", row
        assert row["pinned"] == f"hf://lab/child@{COMMIT}" and row["model"] == "lab/child"
        assert api.registry_show("lab/child", db=db)["source"] == f"hf://lab/child@{COMMIT}"
        assert all(f"/resolve/{COMMIT}/" in line for line in faults.requests[1:])  # read at that commit
        # The fake answers as the Hub does for its own client: huggingface_hub reads the same commit.
        from huggingface_hub import get_hf_file_metadata

        metadata = get_hf_file_metadata(f"{url}/lab/child/resolve/main/config.json")
        assert metadata.commit_hash == COMMIT
        again = api.scan(["hf://lab/child@main", f"hf://lab/child@{COMMIT}"], workers=1, db=db)
        assert [r["status"] for r in again["results"]] == ["skipped", "skipped"]
        assert [r["requests"] for r in again["results"]] == [1, 0]  # a commit needs no pin request
        assert COMMIT[:12] in again["results"][0]["reason"]


def test_an_unreachable_endpoint_is_retried_then_fails_with_exit_4(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = api.scan([f"http://127.0.0.1:{port}/model"], workers=1, retries=1, backoff_s=0.01,
                      db=str(tmp_path / "registry.sqlite"))  # fmt: skip
    row = result["results"][0]
    assert result["exit_code"] == 4 and row["status"] == "failed"
    assert row["attempts"] == 2 and "cannot connect" in row["reason"] and row["retried_after"]


def test_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "registry.sqlite")
    code, _, err = _cli(capsys, "scan", str(tmp_path), "--executor", "spark", "--db", db)
    assert code == 2 and "--executor" in err
    code, _, err = _cli(capsys, "scan", str(tmp_path), "--ray-address", "ray://x:1", "--db", db)
    assert code == 2 and "--executor ray" in err
    code, _, err = _cli(capsys, "scan", str(tmp_path), "--fingerprints-from", "s3", "--db", db)
    assert code == 2 and "--fingerprints-from" in err


def test_importing_modeltrace_does_not_import_ray() -> None:
    code = (
        "import sys, modeltrace, modeltrace.api as api, modeltrace.scan.executors, modeltrace.api._scan\n"
        "api.scan; api.registry_graph\n"
        "print('ray' in sys.modules)"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "False"


def test_a_remote_model_scanned_twice_gives_the_same_fingerprint_bytes(
    tmp_path: Path, models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io
    import json
    import zipfile

    stored = []
    with serve_hub(tmp_path / "hub", {"lab/child": models["child"]}) as (url, _):
        monkeypatch.setenv("HF_ENDPOINT", url)
        for run in ("first", "second"):  # separate registries: the second scan cannot skip
            db = str(tmp_path / f"{run}.sqlite")
            assert api.scan(["hf://lab/child"], workers=1, db=db)["results"][0]["status"] == "registered"
            with api.open_registry(db) as registry:
                stored.append(registry.fingerprint(api.registry_show("lab/child", db=db)["fingerprint"]))
    assert stored[0] == stored[1]
    with zipfile.ZipFile(io.BytesIO(stored[0])) as archive:
        header = json.loads(archive.read("header.json"))
    assert header["model"]["path"] == f"hf://lab/child@{COMMIT}"  # the pinned source, not a temp mirror


def test_scan_rows_count_the_hubs_resolver_requests_apart(
    tmp_path: Path,
    models: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Behind a Hub that redirects to its CDN, a scan row says how many of its requests went to the
    rate-limited resolver (the pin and one per file), as the servers' own counters saw them."""
    from tests.formats.fake_hub import FakeHub
    from tests.formats.fake_hub import serve_hub as serve_redirecting_hub

    hub = FakeHub()
    hub.add("lab/child", {p.name: p.read_bytes() for p in models["child"].iterdir() if p.is_file()})
    with serve_redirecting_hub(hub) as (url, hub):
        monkeypatch.setenv("HF_ENDPOINT", url)
        result = api.scan(["hf://lab/child"], workers=1, db=str(tmp_path / "registry.sqlite"))
        resolves, cdn_reads = sum(hub.resolver_hits.values()), sum(hub.cdn_hits.values())
        code, out, _ = _cli(
            capsys, "scan", "hf://lab/child", "--workers", "1", "--db", str(tmp_path / "cli.sqlite")
        )
    assert code == 0 and "to the Hub's resolver" in out
    row = result["results"][0]
    assert row["status"] == "registered", row
    assert row["resolver_requests"] == resolves > 0
    assert row["requests"] == row["resolver_requests"] + cdn_reads
    assert row["resolver_requests"] < row["requests"]  # the ranges went to the CDN
    assert result["totals"]["resolver_requests"] == row["resolver_requests"]
