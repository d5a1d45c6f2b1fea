"""The REST API with FastAPI's TestClient, on SQLite and PostgreSQL: auth, uploads, lineage."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from modeltrace import api


@pytest.fixture(scope="session")
def fingerprints(
    lineage_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("fingerprints")
    out = {}
    for name, path in lineage_models.items():
        api.fingerprint(path, folder / f"{name}.mtfp")
        out[name] = (folder / f"{name}.mtfp").read_bytes()
    return out


@pytest.fixture
def client(db_url: str) -> Iterator[TestClient]:
    with TestClient(api.create_service(db_url, private_reads=False)) as test_client:
        yield test_client


def _token(client: TestClient, namespace: str) -> dict[str, str]:
    token = api.token_create(namespace, registry=client.app.state.registry)  # type: ignore[attr-defined]
    return {"Authorization": f"Bearer {token}"}


def _upload(
    client: TestClient, headers: dict[str, str], fp: bytes, name: str, namespace: str = "lab"
) -> dict:
    response = client.post("/api/models", headers=headers, data={"name": name, "namespace": namespace},
                           files={"fingerprint": (f"{name}.mtfp", fp, "application/zip")})  # fmt: skip
    assert response.status_code == 201, response.text
    return response.json()


def test_writes_need_a_token_of_the_namespace(client: TestClient, fingerprints: dict[str, bytes]) -> None:
    files = {"fingerprint": ("base.mtfp", fingerprints["base"], "application/zip")}
    assert client.post("/api/models", data={"namespace": "lab"}, files=files).status_code == 401
    bogus = {"Authorization": "Bearer mt_aaaaaaaaaaaaaaaa_" + "b" * 43}
    assert (
        client.post("/api/models", headers=bogus, data={"namespace": "lab"}, files=files).status_code == 401
    )
    other = _token(client, "other")
    response = client.post("/api/models", headers=other, data={"namespace": "lab"}, files=files)
    assert response.status_code == 403 and "other" in response.json()["detail"]
    assert client.get("/api/models").json()["models"] == []


def test_register_detect_lineage_identify(client: TestClient, fingerprints: dict[str, bytes]) -> None:
    headers = _token(client, "lab")
    base = _upload(client, headers, fingerprints["base"], "base")
    assert base["created"] and base["detected"] == []
    _upload(client, headers, fingerprints["stranger"], "stranger")
    child = _upload(client, headers, fingerprints["child"], "child")
    assert [(e["suspect"], e["base"]) for e in child["detected"]] == [("child", "base")]
    again = _upload(client, headers, fingerprints["child"], "child")
    assert not again["created"]
    page = client.get("/api/models", params={"q": "chi"}).json()
    assert [m["name"] for m in page["models"]] == ["child"] and page["total"] == 1
    paged = client.get("/api/models", params={"limit": 2, "offset": 2}).json()
    assert [m["name"] for m in paged["models"]] == ["child"] and paged["total"] == 3
    model_id = child["model"]["id"]
    assert client.get(f"/api/models/{model_id}").json()["name"] == "child"
    lineage = client.get(f"/api/models/{model_id}/lineage").json()
    assert lineage["conflicts"][0]["message"] == "undeclared base base"
    edge = client.get(f"/api/edges/{lineage['detected'][0]['id']}").json()
    assert edge["evidence"]["similarity_matrix"]["values"]
    # The base's page lists the child as derived, and says that the direction is an assumption.
    base_page = client.get(f"/models/{base['model']['id']}").text
    assert "Derived from this model" in base_page and "direction assumed" in base_page
    ranking = client.post(
        "/api/identify", files={"fingerprint": ("g.mtfp", fingerprints["grandchild"])}
    ).json()
    assert ranking["closest_ancestor"] in ("lab/child", "lab/base")
    assert [row["verdict"] for row in ranking["candidates"]][-1] == "unrelated"
    check = client.post("/api/license/check", json={"model": str(model_id), "use": "commercial", "mau": 3})
    assert check.status_code == 200 and check.json()["profile"]["mau"] == 3
    assert client.get("/api/models/999999").status_code == 404
    assert client.get("/api/models/999999/lineage").status_code == 404


def test_bad_uploads_are_client_errors(client: TestClient) -> None:
    headers = _token(client, "lab")
    junk = client.post("/api/models", headers=headers, data={"namespace": "lab"},
                       files={"fingerprint": ("x.mtfp", b"PK\x03\x04 not a zip")})  # fmt: skip
    assert junk.status_code == 422 and "fingerprint" in junk.json()["detail"].lower()
    label = client.post("/api/models", headers=headers, data={"namespace": "lab"},
                        files={"label": ("l.json", b"{\"model\": 1}")})  # fmt: skip
    assert label.status_code == 422
    empty = client.post("/api/models", headers=headers, data={"namespace": "lab"})
    assert empty.status_code == 422


def test_upload_size_limit(db_url: str) -> None:
    from modeltrace.service import Settings, create_app

    with TestClient(create_app(Settings(db=db_url, max_upload_bytes=1000))) as small:
        headers = _token(small, "lab")
        response = small.post("/api/models", headers=headers, data={"namespace": "lab"},
                              files={"fingerprint": ("big.mtfp", b"0" * 5000)})  # fmt: skip
        assert response.status_code == 413


def test_private_reads(db_url: str) -> None:
    with TestClient(api.create_service(db_url, private_reads=True)) as private:
        assert private.get("/api/models").status_code == 401
        assert private.get("/api/models", headers=_token(private, "lab")).status_code == 200
        assert private.get("/").status_code == 401


def test_tokens_and_hostile_names_in_json(client: TestClient, fingerprints: dict[str, bytes]) -> None:
    headers = _token(client, "lab")
    hostile = "<script>alert(1)</script>"
    model = _upload(client, headers, fingerprints["stranger"], hostile)["model"]
    assert client.get(f"/api/models/{model['id']}").json()["name"] == hostile
    assert client.get("/api/openapi.json").json()["paths"].keys() >= {
        "/api/models", "/api/models/{model_id}", "/api/models/{model_id}/lineage", "/api/identify",
        "/api/license/check",
    }  # fmt: skip


def test_pages_escape_hostile_names(client: TestClient, fingerprints: dict[str, bytes]) -> None:
    headers = _token(client, "lab")
    hostile = "<script>alert(1)</script>"
    _upload(client, headers, fingerprints["base"], "base")
    model = _upload(client, headers, fingerprints["child"], hostile)["model"]
    for page in (client.get("/"), client.get(f"/models/{model['id']}")):
        assert page.status_code == 200
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and hostile not in page.text
    assert client.get("/models/999999").status_code == 404
    assert "<svg" in client.get(f"/models/{model['id']}").text
