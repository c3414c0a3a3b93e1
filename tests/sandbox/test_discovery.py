"""Emulator discovery and health: what a client reads before it calls the resource."""

from __future__ import annotations

from tests.support.backends import EmulatorBackend


async def test_health_and_version_need_no_token(emu: EmulatorBackend) -> None:
    for path in ("/healthz", "/readyz", "/livez"):
        status, _, body = await emu.request("GET", path, token=None)
        assert (status, body) == (200, "ok")
    status, _, body = await emu.request("GET", "/version", token=None)
    assert status == 200
    assert body["major"] == "1"


async def test_discovery_lists_upgrades(emu: EmulatorBackend) -> None:
    status, _, groups = await emu.request("GET", "/apis")
    assert status == 200
    assert "harvesterhci.io" in [g["name"] for g in groups["groups"]]
    status, _, group = await emu.request("GET", "/apis/harvesterhci.io")
    assert group["preferredVersion"]["groupVersion"] == "harvesterhci.io/v1beta1"
    status, _, resources = await emu.request("GET", "/apis/harvesterhci.io/v1beta1")
    (upgrades,) = resources["resources"]
    assert upgrades["name"] == "upgrades"
    assert upgrades["namespaced"] is True
    assert upgrades["kind"] == "Upgrade"
    assert {"get", "list", "watch", "patch", "update", "create", "delete"} <= set(upgrades["verbs"])


async def test_namespaces_exist_read_only(emu: EmulatorBackend) -> None:
    status, _, body = await emu.request("GET", "/api/v1/namespaces/harvester-system")
    assert status == 200
    assert body["metadata"]["labels"] == {"kubernetes.io/metadata.name": "harvester-system"}
    assert body["status"] == {"phase": "Active"}
    status, _, body = await emu.request("GET", "/api/v1/namespaces/no-such-namespace")
    assert (status, body["message"]) == (404, 'namespaces "no-such-namespace" not found')
    assert body["details"] == {"name": "no-such-namespace", "kind": "namespaces"}
    status, _, _ = await emu.request("DELETE", "/api/v1/namespaces/harvester-system")
    assert status == 405


async def test_openapi_v3_serves_the_crd_schema_under_its_hash(emu: EmulatorBackend) -> None:
    from bff.sandbox.schema import SCHEMA

    status, _, index = await emu.request("GET", "/openapi/v3")
    assert status == 200
    url = index["paths"]["apis/harvesterhci.io/v1beta1"]["serverRelativeURL"]
    status, headers, document = await emu.request("GET", url)
    assert status == 200
    assert headers["Cache-Control"] == "public, immutable"
    upgrade = document["components"]["schemas"]["io.harvesterhci.v1beta1.Upgrade"]
    assert upgrade["properties"]["spec"] == SCHEMA["properties"]["spec"]
    assert upgrade["properties"]["status"] == SCHEMA["properties"]["status"]
    patch = document["paths"][
        "/apis/harvesterhci.io/v1beta1/namespaces/{namespace}/upgrades/{name}"
    ]
    assert "fieldValidation" in [p["name"] for p in patch["patch"]["parameters"]]
