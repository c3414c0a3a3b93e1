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
