"""The simulated controller (bff/sandbox/controller.py) against Harvester's real one.

Each scenario is a write the sandbox and the demo show, made to the three
seed Upgrades on the real API server twice: once with a Harvester version's
real upgrade controller running, once with the simulated controller instead
(advancing off: ``interval=0``, as the real controller cannot advance here
without the jobs, plans and images of a real cluster). Both must end with the
same status and labels on every Upgrade. Every scenario runs against two
real controllers: Harvester v1.5.0's, the version the simulation simulates,
and v1.6.0's, the version the other referees run; each on a real API server
of its own with that version's CRDs.

Compared: labels, and each condition's type, status, reason and message, and
the rest of status. Not compared: condition timestamps (each controller writes
its own clock).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bff.sandbox.controller import SimulatedController
from bff.sandbox.legacy_save import steve_item
from tests.harvester.test_real_controller import everything
from tests.support import shell
from tests.support.harvester import (
    HARVESTER_VERSION,
    SERVER_VERSION,
    SIMULATED_VERSION,
    VERSIONS,
    HarvesterStack,
)
from tests.support.real_apiserver import RealApiServer

pytestmark = pytest.mark.real_apiserver

SUCCEEDED = "hvst-upgrade-7xn6v"
FAILED = "hvst-upgrade-fl4k2"
IN_PROGRESS = "hvst-upgrade-zjft7"
READ_MESSAGE = "harvesterhci.io/read-message"

Write = Callable[[RealApiServer], str]


def _put_v104(name: str) -> Write:
    def write(real: RealApiServer) -> str:
        obj = real.request("GET", real.upgrades_path(name)).body
        # The extension's own v1.0.4 save() of the object as Steve would serve it.
        item = steve_item(obj, "harvesterhci.io.upgrade")
        body = shell.saved_body("v1.0.4", "upgrade", item, edit=shell.DISMISS)
        r = real.request("PUT", real.upgrades_path(name), body, token="sandbox-admin")
        assert r.status == 200, r.body
        return str(r.body["metadata"]["resourceVersion"])

    return write


def _label_patch(name: str) -> Write:
    """What the BFF sends upstream for "Dismiss it": one label, nothing else."""

    def write(real: RealApiServer) -> str:
        patch = {"metadata": {"labels": {READ_MESSAGE: "true"}}}
        r = real.request(
            "PATCH", real.upgrades_path(name), patch,
            content_type="application/merge-patch+json", token="sandbox-admin",
        )  # fmt: skip
        assert r.status == 200, r.body
        return str(r.body["metadata"]["resourceVersion"])

    return write


def _create(log_enabled: bool) -> Write:
    """The dashboard's create: a new Upgrade with a spec and no status."""

    def write(real: RealApiServer) -> str:
        body = {"apiVersion": "harvesterhci.io/v1beta1", "kind": "Upgrade",
                "metadata": {"name": "hvst-upgrade-new", "namespace": real.namespace},
                "spec": {"version": "v1.5.1", "image": "", "logEnabled": log_enabled}}  # fmt: skip
        r = real.request("POST", real.upgrades_path(), body, token="sandbox-admin")
        assert r.status == 201, r.body
        return str(r.body["metadata"]["resourceVersion"])

    return write


SCENARIOS: dict[str, Write] = {
    "v1.0.4 PUT on the succeeded upgrade": _put_v104(SUCCEEDED),
    "v1.0.4 PUT on the failed upgrade": _put_v104(FAILED),
    "label patch (the BFF's dismiss) on the succeeded upgrade": _label_patch(SUCCEEDED),
    "label patch (the BFF's dismiss) on the failed upgrade": _label_patch(FAILED),
    "a new upgrade, observability on": _create(True),
    "a new upgrade, observability off": _create(False),
}
EVENT_DRIVEN = (
    "the real controller is event-driven: right after LoggingInfraPrepared it takes "
    "the image step at once (Version lookup; with no Version object here it sets "
    "Completed=False and upgradeState=Failed), where the simulation only advances on "
    "its ticks, which these tests turn off"
)
#: Scenarios where the simulation and a version's real controller differ, each with
#: what the real controller does.
DIFFERENT: dict[str, dict[str, str]] = {
    SIMULATED_VERSION: {"a new upgrade, observability off": EVENT_DRIVEN},
    HARVESTER_VERSION: {"a new upgrade, observability off": EVENT_DRIVEN},
}
#: The stack fixture (tests/harvester/conftest.py) of each version's real controller.
STACKS = {HARVESTER_VERSION: "harvester", SIMULATED_VERSION: "harvester_v150"}


def outcome(real: RealApiServer) -> dict[str, Any]:
    """Every Upgrade's labels and status, condition timestamps left out."""
    shown: dict[str, Any] = {}
    for name, obj in everything(real).items():
        status = copy.deepcopy(obj.get("status") or {})
        status["conditions"] = sorted(
            ({k: v for k, v in c.items() if k != "lastUpdateTime" and k != "lastTransitionTime"}
             for c in status.get("conditions") or ()),
            key=lambda c: str(c["type"]),
        )  # fmt: skip
        shown[name] = {"labels": obj["metadata"].get("labels") or {}, "status": status}
    return shown


async def _simulated(real: RealApiServer, kubeconfig: Path, write: Write) -> None:
    controller = SimulatedController(
        kubeconfig=str(kubeconfig), namespace=real.namespace, interval=0,
        previous_version=SERVER_VERSION,
    )  # fmt: skip
    async with controller:
        rv = await asyncio.to_thread(write, real)
        await controller.wait_synced(rv, within=30)
        # Its own writes are events too: wait for the list as it is now.
        latest = real.request("GET", real.upgrades_path()).body["metadata"]["resourceVersion"]
        await controller.wait_synced(str(latest), within=30)


def _cases() -> list[Any]:
    cases = []
    for version in VERSIONS:
        for scenario in SCENARIOS:
            why = DIFFERENT[version].get(scenario)
            marks = () if why is None else (pytest.mark.xfail(reason=why, strict=True),)
            cases.append(pytest.param(version, scenario, marks=marks, id=f"{version}-{scenario}"))
    return cases


def test_every_difference_is_a_scenario() -> None:
    assert set(DIFFERENT) == set(VERSIONS) == set(STACKS)
    for version, different in DIFFERENT.items():
        assert set(different) <= set(SCENARIOS), version


@pytest.mark.parametrize(("version", "scenario"), _cases())
def test_simulated_and_real_controller_agree(
    request: pytest.FixtureRequest, version: str, scenario: str, tmp_path: Path
) -> None:
    harvester: HarvesterStack = request.getfixturevalue(STACKS[version])
    assert harvester.version == version
    real = harvester.real
    write = SCENARIOS[scenario]

    write(real)
    harvester.settle()
    by_real = outcome(real)

    harvester.stop_controller()
    harvester.reset()
    kubeconfig = real.kubeconfig(tmp_path / "sim.kubeconfig", token="sandbox-controller")
    asyncio.run(_simulated(real, kubeconfig, write))
    by_simulation = outcome(real)

    assert by_simulation == by_real
