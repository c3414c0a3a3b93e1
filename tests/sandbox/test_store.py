"""Emulator registry rules: no-op updates, generation, one revision counter."""

from __future__ import annotations

from tests.support.backends import BASE, IN_PROGRESS, SUCCEEDED, EmulatorBackend


async def test_put_of_the_same_object_writes_nothing(emu: EmulatorBackend) -> None:
    before = emu.store.resource_version
    body = emu.live(SUCCEEDED)
    status, _, obj = await emu.request("PUT", f"{BASE}/{SUCCEEDED}", body)
    assert status == 200
    assert obj == body
    assert emu.store.resource_version == before


async def test_label_only_change_keeps_generation(emu: EmulatorBackend) -> None:
    body = emu.live(SUCCEEDED)
    body["metadata"]["labels"]["x"] = "y"
    status, _, obj = await emu.request("PUT", f"{BASE}/{SUCCEEDED}", body)
    assert status == 200
    assert obj["metadata"]["generation"] == 1
    assert int(obj["metadata"]["resourceVersion"]) == emu.store.resource_version


async def test_every_write_bumps_one_counter(emu: EmulatorBackend) -> None:
    start = emu.store.resource_version
    for name in (SUCCEEDED, IN_PROGRESS):
        body = emu.live(name)
        body["metadata"]["labels"]["n"] = name[-5:]
        status, _, obj = await emu.request("PUT", f"{BASE}/{name}", body)
        assert status == 200
    assert obj["metadata"]["resourceVersion"] == str(start + 2)
