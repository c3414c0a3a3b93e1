"""The simulated Harvester controller against the emulator over real HTTP: the bug (a
v1.0.4 PUT wipes status and the upgrade starts over), the safe label patch (nothing
happens), stage advancing, and 409 handling."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client

from bff import captured
from bff.sandbox.controller import STAGES, SimulatedController, advance, initialise
from bff.sandbox.emulator import EMULATOR_FAULTS, Fault
from bff.sandbox.kubeconfig import write_kubeconfig
from bff.sandbox.store import Store
from tests.support.backends import BASE, IN_PROGRESS, MERGE, NS, SUCCEEDED, EmulatorBackend
from tests.support.silent_tls import SilentTlsUpstream, sockets_to


def configuration(emu: EmulatorBackend) -> client.Configuration:
    cfg = client.Configuration(host=emu.url)
    cfg.api_key = {"BearerToken": "sandbox-controller"}
    cfg.api_key_prefix = {"BearerToken": "Bearer"}
    return cfg


@pytest.fixture
async def controller(emu: EmulatorBackend) -> AsyncIterator[SimulatedController]:
    async with SimulatedController(configuration=configuration(emu), interval=0) as ctl:
        yield ctl


def labels(obj: dict[str, Any]) -> dict[str, str]:
    return obj["metadata"].get("labels") or {}


def conditions(obj: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c["status"] for c in (obj.get("status") or {}).get("conditions", [])}


async def test_the_bug_a_v104_put_makes_the_upgrade_start_over(
    emu: EmulatorBackend, controller: SimulatedController
) -> None:
    body = captured.client_body("v1.0.4")
    body["metadata"]["resourceVersion"] = emu.live(SUCCEEDED)["metadata"]["resourceVersion"]
    status, _, written = await emu.request("PUT", f"{BASE}/{SUCCEEDED}", body)
    assert status == 200
    assert "status" not in written
    await controller.wait_synced(written["metadata"]["resourceVersion"])
    assert controller.reinitialisations == 1
    assert controller.reinitialised == [SUCCEEDED]
    after = emu.live(SUCCEEDED)
    assert labels(after)["harvesterhci.io/upgradeState"] == "PreparingLoggingInfra"
    assert labels(after)["harvesterhci.io/latestUpgrade"] == "true"
    assert conditions(after) == {"Completed": "Unknown", "LogReady": "Unknown"}
    assert after["status"]["upgradeLog"] == f"{SUCCEEDED}-upgradelog"
    # resetLatestUpgradeLabel: the other latest upgrade loses the label
    assert "harvesterhci.io/latestUpgrade" not in labels(emu.live(IN_PROGRESS))


async def test_a_label_only_merge_patch_leaves_status_alone(
    emu: EmulatorBackend, controller: SimulatedController
) -> None:
    live = emu.live(SUCCEEDED)
    patch = {"metadata": {"labels": {"harvesterhci.io/read-message": "true"},
                          "resourceVersion": live["metadata"]["resourceVersion"]}}  # fmt: skip
    status, _, written = await emu.request(
        "PATCH", f"{BASE}/{SUCCEEDED}", patch, content_type=MERGE
    )
    assert status == 200
    await controller.wait_synced(written["metadata"]["resourceVersion"])
    assert controller.reinitialisations == 0
    after = emu.live(SUCCEEDED)
    assert json.dumps(after["status"], sort_keys=True) == json.dumps(live["status"], sort_keys=True)
    assert after["metadata"]["resourceVersion"] == written["metadata"]["resourceVersion"]


async def test_interval_zero_never_advances(
    emu: EmulatorBackend, controller: SimulatedController
) -> None:
    # Each change reaches the controller, which acts on it (wait_synced: it has seen the
    # event), and it still neither advances the upgrade nor tries to write (a try would be a
    # write or, racing these patches, a conflict).
    for round_ in range(3):
        patch = {"metadata": {"labels": {"example.com/poke": str(round_)}}}
        written = await emu.merge_patch(IN_PROGRESS, patch)
        await controller.wait_synced(written["metadata"]["resourceVersion"])
        assert labels(emu.live(IN_PROGRESS))["harvesterhci.io/upgradeState"] == "UpgradingNodes"
    assert (controller.writes, controller.conflicts) == (0, 0)
    assert emu.store.resource_version == int(written["metadata"]["resourceVersion"])


async def test_a_new_upgrade_advances_through_every_stage(emu: EmulatorBackend) -> None:
    body = {
        "apiVersion": "harvesterhci.io/v1beta1",
        "kind": "Upgrade",
        "metadata": {"generateName": "hvst-upgrade-"},
        "spec": {"version": "v1.5.1"},
    }
    async with SimulatedController(configuration=configuration(emu), interval=0.02) as ctl:
        status, _, created = await emu.request("POST", BASE, body)
        assert status == 201
        name = created["metadata"]["name"]
        states: list[str] = []
        for _ in range(300):
            state = labels(emu.live(name)).get("harvesterhci.io/upgradeState", "")
            if not states or states[-1] != state:
                states.append(state)
            if state == "Succeeded":
                break
            await asyncio.sleep(0.01)
        assert ctl.reinitialisations == 1
    observed = [s for s in states if s]
    assert observed[-1] == "Succeeded"
    assert [s for s in STAGES if s in observed] == observed  # in Harvester's order
    done = emu.live(name)
    assert set(conditions(done).values()) == {"True"}
    assert conditions(done)["Completed"] == "True"


async def test_a_conflict_is_counted_and_the_next_event_wins(emu: EmulatorBackend) -> None:
    # The controller's first write loses the race: someone bumps the object right before.
    emu.app[EMULATOR_FAULTS].add(
        Fault("PUT", path_suffix=f"/{SUCCEEDED}", action=lambda s: s.bump(NS, SUCCEEDED))
    )
    async with SimulatedController(configuration=configuration(emu), interval=0) as ctl:
        patch = {"status": None}
        status, _, _written = await emu.request("PATCH", f"{BASE}/{SUCCEEDED}", patch,
                                            content_type=MERGE)  # fmt: skip
        assert status == 200
        for _ in range(100):
            if ctl.reinitialisations:
                break
            await asyncio.sleep(0.02)
        assert ctl.conflicts == 1
        assert ctl.reinitialisations == 1
    assert conditions(emu.live(SUCCEEDED))["Completed"] == "Unknown"


async def test_relists_after_410(emu: EmulatorBackend) -> None:
    async with SimulatedController(configuration=configuration(emu), interval=0,
                                   watch_timeout=1) as ctl:  # fmt: skip
        emu.store.compact()
        _status, _, written = await emu.request(
            "PATCH", f"{BASE}/{SUCCEEDED}", {"status": None}, content_type=MERGE
        )
        await ctl.wait_synced(written["metadata"]["resourceVersion"])
        assert ctl.reinitialisations == 1


def test_initialise_with_logging_off() -> None:
    obj = {"metadata": {"name": "u", "labels": {}}, "spec": {"logEnabled": False}}
    out = initialise(obj, "v1.4.2")
    assert labels(out)["harvesterhci.io/upgradeState"] == "LoggingInfraPrepared"
    assert conditions(out) == {"Completed": "Unknown", "LogReady": "False"}
    assert out["status"]["previousVersion"] == "v1.4.2"


def test_finished_or_not_latest_upgrades_do_not_advance() -> None:
    store = Store()
    from bff.sandbox.seed import seed_store

    by_name = {o["metadata"]["name"]: o for o in seed_store(store)}
    assert advance(by_name[SUCCEEDED]) is None
    assert advance(by_name["hvst-upgrade-fl4k2"]) is None
    step = advance(by_name[IN_PROGRESS])
    assert step is not None
    assert labels(step)["harvesterhci.io/upgradeState"] == "Succeeded"


async def test_a_stopped_controller_leaves_no_tls_watch_open(tmp_path: Path) -> None:
    # The API server never answers a TLS close: only a dropped watch is gone at the stop.
    listed = {"kind": "UpgradeList", "metadata": {"resourceVersion": "1"}, "items": []}
    with SilentTlsUpstream(tmp_path, {BASE: listed}) as upstream:
        kubeconfig = write_kubeconfig(
            tmp_path / "ctl.kubeconfig",
            upstream.url,
            token="sandbox-controller",
            ca_file=str(upstream.certificate.ca_file),
        )
        controller = SimulatedController(kubeconfig=str(kubeconfig), namespace=NS)
        await controller.start()
        try:
            for _ in range(500):  # listed; the watch follows
                if upstream.watches:
                    break
                await asyncio.sleep(0.02)
            assert upstream.watches == 1
        finally:
            await controller.stop()
        assert sockets_to(upstream.port) == 0
