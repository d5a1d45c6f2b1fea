"""hf:// models through a Hub that redirects to a CDN, as huggingface.co does: each file is resolved
once (however many ranges are read), the token never reaches the CDN, an expired signed URL is
resolved again, and ``main`` is pinned to one commit for the whole model."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import time
from pathlib import Path

import numpy as np
import pytest

from modeltrace import api
from modeltrace.errors import RemoteError
from modeltrace.formats import open_model
from modeltrace.formats.base import STAND_INS
from modeltrace.formats.remote import RemoteFile, RemoteSession, RetryPolicy
from modeltrace.formats.remote_redirects import Resolution, signed_url_expiry
from tests.formats.fake_hub import FakeHub, serve_hub
from tests.formats.test_remote_model import same_fingerprint, shard
from tests.lineage.synthetic import make_params, write_model


def _files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """The same architecture with 2 and 6 layers: three times the ranges, the same files."""
    root = tmp_path_factory.mktemp("hub")
    return {
        layers: shard(write_model(root / f"m{layers}", make_params(7, layers=layers))) for layers in (2, 6)
    }


@pytest.fixture
def hub_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    return monkeypatch


def _blob(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def test_each_file_is_resolved_once_however_many_ranges_are_read(
    models: dict[int, Path], tmp_path: Path, hub_env: pytest.MonkeyPatch
) -> None:
    per_file: dict[int, dict[str, int]] = {}
    for layers, folder in models.items():
        hub = FakeHub()
        hub.add("acme/m", _files(folder))
        api.fingerprint(folder, tmp_path / f"local{layers}.mtfp")
        with serve_hub(hub) as (url, hub):
            hub_env.setenv("HF_ENDPOINT", url)
            summary = api.fingerprint("hf://acme/m", tmp_path / f"hub{layers}.mtfp")
        same_fingerprint(tmp_path / f"local{layers}.mtfp", tmp_path / f"hub{layers}.mtfp")
        transfer = summary["transfer"]
        shards = sorted(name for name in _files(folder) if name.endswith(".safetensors"))
        resolves = {name: hits for (_, name), hits in hub.resolver_hits.items()}
        # One resolve per weight file, and one per small file asked for (a 404 included).
        assert all(resolves[name] == 1 for name in shards), resolves
        assert max(resolves.values()) == 1
        assert transfer["resolver_requests"] == sum(hub.resolver_hits.values())
        assert transfer["data_requests"] == sum(hub.cdn_hits.values())
        assert transfer["requests"] == transfer["resolver_requests"] + transfer["data_requests"]
        assert transfer["re_resolves"] == 0 and not hub.leaked
        assert transfer["commit"] == hub.repos["acme/m"].refs["main"]
        per_file[layers] = {name: hub.cdn_hits[_blob((folder / name).read_bytes())] for name in shards}
    # Three times the layers: more range reads from the CDN, still one resolve per file (O(1)).
    assert sum(per_file[6].values()) > sum(per_file[2].values()) > len(per_file[2])


def test_the_token_goes_to_the_hub_never_to_the_cdn(
    models: dict[int, Path], hub_env: pytest.MonkeyPatch
) -> None:
    hub = FakeHub(token="hf_secret")
    hub.add("acme/gated", _files(models[2]), gated=True)
    hub.renamed["acme/old-name"] = "acme/gated"  # a relative redirect on the Hub keeps the token
    with serve_hub(hub) as (url, hub):
        hub_env.setenv("HF_ENDPOINT", url)
        with pytest.raises(RemoteError, match="HF_TOKEN"):
            open_model("hf://acme/gated")
        hub_env.setenv("HF_TOKEN", "hf_secret")
        for location in ("hf://acme/gated", "hf://acme/old-name"):
            with open_model(location) as source:
                assert source.weights is not None
                name = "model.layers.1.mlp.up_proj.weight"
                rows = source.weights.read_rows(name, [0, 5])
                assert rows.shape[0] == 2
    assert sum(hub.cdn_hits.values()) > 0 and hub.leaked == []
    assert not STAND_INS


def test_an_expired_signed_url_is_resolved_again_once(models: dict[int, Path], tmp_path: Path) -> None:
    content = (models[6] / "model-00001-of-00002.safetensors").read_bytes()
    hub = FakeHub(uses_per_url=3)  # each signed URL serves three requests, then is refused
    hub.add("acme/m", {"model.safetensors": content})
    with serve_hub(hub) as (url, hub):
        remote = RemoteSession(hf_endpoint=url, retry=RetryPolicy(attempts=2, sleep=lambda _: None))
        handle = RemoteFile(f"{url}/acme/m/resolve/main/model.safetensors", remote)
        step = len(content) // 10
        for index in range(10):
            assert handle.read(index * step, 64) == content[index * step : index * step + 64]
    stats = remote.stats
    # 11 reads (the size probe included) at 3 per signed URL: refused 3 times, resolved 1 + 3 times.
    assert (stats.re_resolves, hub.refused) == (3, 3)
    assert (
        hub.resolver_hits[("acme/m", "model.safetensors")] == 1 + stats.re_resolves == stats.resolver_requests
    )
    assert stats.data_requests == 11 + hub.refused
    assert handle.bytes_read == 640


def test_a_signed_url_about_to_expire_is_renewed_before_use(models: dict[int, Path]) -> None:
    content = (models[2] / "model-00001-of-00002.safetensors").read_bytes()
    hub = FakeHub()
    hub.add("acme/m", {"model.safetensors": content})
    with serve_hub(hub) as (url, hub):
        remote = RemoteSession(hf_endpoint=url)
        resolve = f"{url}/acme/m/resolve/main/model.safetensors"
        handle = RemoteFile(resolve, remote)
        known = remote.resolution(resolve)
        assert known is not None and known.expires_at is not None  # read from the signed URL's Expires
        # The same signed URL, as if its hour had almost run out.
        remote._resolved[resolve] = dataclasses.replace(known, expires_at=time.time() + 5)
        assert handle.read(100, 10) == content[100:110]
    assert (remote.stats.re_resolves, hub.refused) == (1, 0)  # renewed ahead, never refused
    assert hub.resolver_hits[("acme/m", "model.safetensors")] == 2


def test_a_cdn_that_keeps_refusing_is_an_error_not_a_loop(models: dict[int, Path]) -> None:
    hub = FakeHub()
    hub.add("acme/m", {"model.safetensors": (models[2] / "model-00001-of-00002.safetensors").read_bytes()})
    with serve_hub(hub) as (url, hub):
        remote = RemoteSession(hf_endpoint=url, retry=RetryPolicy(attempts=3, sleep=lambda _: None))
        handle = RemoteFile(f"{url}/acme/m/resolve/main/model.safetensors", remote)
        hub.uses_per_url = 0  # from now on every signed URL is refused
        with pytest.raises(RemoteError, match="403"):
            handle.read(100, 10)
    assert remote.stats.re_resolves == 1  # resolved again once, then the refusal is the answer
    assert hub.resolver_hits[("acme/m", "model.safetensors")] == 2


def test_main_is_pinned_to_one_commit_while_the_branch_moves(
    models: dict[int, Path], hub_env: pytest.MonkeyPatch
) -> None:
    hub = FakeHub(uses_per_url=2)  # signed URLs run out, so files are resolved again after the move
    first = hub.add("acme/m", _files(models[2]))
    changed = {name: data if not name.endswith(".safetensors") else data[:-8] + b"        "
               for name, data in _files(models[2]).items()}  # fmt: skip
    with serve_hub(hub) as (url, hub):
        hub_env.setenv("HF_ENDPOINT", url)
        with open_model("hf://acme/m") as source:
            assert source.weights is not None
            before = source.weights.read_rows("model.layers.0.mlp.up_proj.weight", [0, 1, 2])
            second = hub.add("acme/m", changed)  # main moves on while the model is being read
            for _ in range(3):
                again = source.weights.read_rows("model.layers.0.mlp.up_proj.weight", [0, 1, 2])
                np.testing.assert_array_equal(before, again)
            assert source.transfer.commit == first != second
        read_first = len(hub.revisions_asked)
        card = api.inspect("hf://acme/m")
    assert card["transfer"]["commit"] == second  # a new read follows the branch
    asked = hub.revisions_asked
    assert asked[0] == "main" and set(asked[1:read_first]) == {first}  # every later file at the commit
    assert asked[read_first] == "main" and set(asked[read_first + 1 :]) == {second}
    assert hub.refused > 0  # the signed URLs did run out after the move


def test_a_cdn_copy_of_another_size_than_announced_is_refused(models: dict[int, Path]) -> None:
    hub = FakeHub(linked_size_error=1)
    hub.add("acme/m", {"model.safetensors": (models[2] / "model-00001-of-00002.safetensors").read_bytes()})
    with serve_hub(hub) as (url, hub), pytest.raises(RemoteError, match="announced"):
        RemoteFile(f"{url}/acme/m/resolve/main/model.safetensors", RemoteSession(hf_endpoint=url))


def test_redirects_down_to_plain_http_or_off_http_are_refused() -> None:
    import httpx

    def handler(request: httpx.Request) -> httpx.Response:
        target = {"a.example": "http://cdn.example/x", "b.example": "file:///etc/passwd"}
        return httpx.Response(302, headers={"Location": target[request.url.host]})

    remote = RemoteSession(transport=httpx.MockTransport(handler))
    for host in ("a.example", "b.example"):
        with pytest.raises(RemoteError, match="refused a redirect"):
            RemoteFile(f"https://{host}/model.safetensors", remote)


def test_a_used_up_resolver_window_waits_for_the_ratelimit_reset(models: dict[int, Path]) -> None:
    """The Hub's 429 says when its 5-minute window resets in ``RateLimit: ...;t=SECONDS``."""
    hub = FakeHub(too_many=2)
    hub.add("acme/m", {"model.safetensors": (models[2] / "model-00001-of-00002.safetensors").read_bytes()})
    waits: list[float] = []
    with serve_hub(hub) as (url, hub):
        remote = RemoteSession(hf_endpoint=url, retry=RetryPolicy(attempts=4, sleep=waits.append))
        handle = RemoteFile(f"{url}/acme/m/resolve/main/model.safetensors", remote)
        handle.read(100, 10)
    assert waits == [7.0, 7.0]
    assert remote.stats.resolver_requests == 3 and remote.stats.retries == 2
    assert remote.stats.data_requests == 2  # the size probe and the read, both from the CDN


def test_signed_url_expiry_reads_cloudfront_and_s3_signatures() -> None:
    assert signed_url_expiry("https://cdn.example/x?Expires=1900000000&Signature=a") == 1_900_000_000
    s3 = "https://cas.example/x?X-Amz-Date=20261206T070000Z&X-Amz-Expires=3600&X-Amz-Signature=b"
    assert signed_url_expiry(s3) == pytest.approx(1796540400 + 3600)
    assert signed_url_expiry("https://cdn.example/x?Expires=soon") is None
    assert signed_url_expiry("https://plain.example/model.safetensors") is None
    now = time.time()
    assert Resolution("u", expires_at=now + 10).expiring(now)  # inside the safety margin
    assert not Resolution("u", expires_at=now + 3600).expiring(now)
    assert not Resolution("u").expiring(now)


@pytest.mark.skipif(
    importlib.util.find_spec("huggingface_hub") is None, reason="huggingface_hub not installed"
)
def test_the_fake_hub_speaks_as_huggingface_hub_expects(models: dict[int, Path], tmp_path: Path) -> None:
    """huggingface_hub's own client, against the fake: the headers it reads, the redirect it follows,
    the token it keeps from the CDN. What it gets is what modeltrace gets."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_download

    files = _files(models[2])
    hub = FakeHub(token="hf_peer")
    commit = hub.add("acme/m", files, gated=True)
    name = "model-00002-of-00002.safetensors"
    with serve_hub(hub) as (url, hub):
        resolve = f"{url}/acme/m/resolve/main/{name}"
        metadata = get_hf_file_metadata(resolve, token="hf_peer")
        downloaded = hf_hub_download(
            "acme/m", name, endpoint=url, token="hf_peer", cache_dir=tmp_path / "cache"
        )
        remote = RemoteSession(hf_endpoint=url, hf_token="hf_peer")
        handle = RemoteFile(resolve, remote)
        ours = remote.resolution(resolve)
    assert Path(downloaded).read_bytes() == files[name]
    assert (metadata.commit_hash, metadata.size, metadata.etag) == (
        commit,
        len(files[name]),
        _blob(files[name]),
    )
    assert ours is not None and (ours.commit, ours.size, ours.etag) == (
        metadata.commit_hash, metadata.size, metadata.etag
    )  # fmt: skip
    assert metadata.location.startswith(hub.cdn_url) and ours.target.startswith(hub.cdn_url)
    assert handle.size == len(files[name])
    assert hub.leaked == []


def test_the_cli_reports_resolver_requests_and_the_commit(
    models: dict[int, Path], tmp_path: Path, hub_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from modeltrace.cli import main

    hub = FakeHub()
    commit = hub.add("acme/m", _files(models[2]))
    with serve_hub(hub) as (url, hub):
        hub_env.setenv("HF_ENDPOINT", url)
        with pytest.raises(SystemExit) as done:
            main(["fingerprint", "hf://acme/m", "-o", str(tmp_path / "m.mtfp")])
        printed = capsys.readouterr().out
        with pytest.raises(SystemExit):
            main(["inspect", "hf://acme/m", "--json"])
        card = json.loads(capsys.readouterr().out)
    assert done.value.code in (0, None)
    resolves = sum(hub.resolver_hits.values())
    assert f"to the Hub's resolver, commit {commit[:12]}" in " ".join(printed.split())
    assert card["transfer"]["commit"] == commit and 0 < card["transfer"]["resolver_requests"] < resolves
