"""The bug and the fix, end to end, against the emulator and a real API server.

An upgrade is created, the simulated Harvester controller runs it to
``Succeeded``, and then the user dismisses the "upgrade finished" message:

* sent straight to the API server, the v1.0.4 extension's PUT wipes status and
  the controller re-initialises the finished upgrade (the bug);
* sent through the BFF, the same body becomes one label patch: read-message is
  set, the conditions are intact and the upgrade stays ``Succeeded`` (the fix).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from bff import captured
from tests.conftest import Stack
from tests.support.backends import NAMESPACE, Backend

READ = "harvesterhci.io/read-message"
STATE = "harvesterhci.io/upgradeState"


async def _run_new_upgrade_to_succeeded(stack: Stack) -> dict[str, Any]:
    """Create an upgrade as the dashboard would and wait for the controller to finish it."""
    backend = stack.backend
    # Another finished upgrade must not keep latestUpgrade, or Harvester would not run this one.
    for name, obj in (await backend.read_all()).items():
        if obj["metadata"].get("labels", {}).get("harvesterhci.io/latestUpgrade"):
            await backend.merge_patch(
                name, {"metadata": {"labels": {"harvesterhci.io/latestUpgrade": None}}}
            )
    status, created = await backend.call(
        "POST",
        backend.path(),
        {
            "apiVersion": "harvesterhci.io/v1beta1",
            "kind": "Upgrade",
            "metadata": {"generateName": "hvst-upgrade-", "namespace": NAMESPACE},
            "spec": {"version": "v1.5.0", "logEnabled": True, "image": ""},
        },
    )
    assert status == 201, created
    name = created["metadata"]["name"]
    for _ in range(400):  # bounded: 400 x 0.05 s
        obj = await backend.read(name)
        if obj["metadata"].get("labels", {}).get(STATE) == "Succeeded":
            return obj
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} never reached Succeeded: {obj}")


def _v104_body(live: dict[str, Any]) -> dict[str, Any]:
    body = captured.client_body("v1.0.4")
    meta = live["metadata"]
    body["id"] = f"{NAMESPACE}/{meta['name']}"
    body["metadata"].update(
        name=meta["name"],
        resourceVersion=meta["resourceVersion"],
        labels={**meta["labels"], READ: "true"},
        annotations=meta.get("annotations", {}),
    )
    return body


async def test_through_the_bff_a_finished_upgrade_stays_finished(
    backend: Backend, stack_factory: Callable[..., Awaitable[Stack]]
) -> None:
    stack = await stack_factory(backend, controller_interval=0.02)
    finished = await _run_new_upgrade_to_succeeded(stack)
    name = finished["metadata"]["name"]
    await stack.settle()
    before = stack.controller.reinitialisations

    response = await stack.client.put(
        f"/api/v1.0.4/upgrades/{NAMESPACE}/{name}",
        json=_v104_body(finished),
        headers={"Authorization": "Bearer sandbox-admin"},
    )
    assert response.status == 200, await response.text()
    assert response.headers["X-Upgrade-Bff-Changed"] == "true"
    await stack.settle()

    after = await backend.read(name)
    assert after["metadata"]["labels"][READ] == "true"
    assert after["metadata"]["labels"][STATE] == "Succeeded"
    assert after["status"]["conditions"] == finished["status"]["conditions"]
    assert after["status"] == finished["status"]
    assert stack.controller.reinitialisations == before


async def test_straight_to_the_api_server_the_same_put_restarts_the_upgrade(
    backend: Backend, stack_factory: Callable[..., Awaitable[Stack]]
) -> None:
    stack = await stack_factory(backend, controller_interval=0)
    # Interval 0: no advancing, so what follows is the re-initialisation alone.
    finished = await backend.read("hvst-upgrade-7xn6v")
    await stack.settle()
    before = stack.controller.reinitialisations

    status, wiped = await backend.call(
        "PUT", backend.path("hvst-upgrade-7xn6v"), _v104_body(finished)
    )
    assert status == 200, wiped
    assert "status" not in wiped, "the API server replaced the whole object, status included"
    await stack.settle()
    for _ in range(100):  # bounded: the controller's write lands shortly after the event
        after = await backend.read("hvst-upgrade-7xn6v")
        if after["metadata"]["labels"][STATE] == "PreparingLoggingInfra":
            break
        await asyncio.sleep(0.05)
    assert after["metadata"]["labels"][STATE] == "PreparingLoggingInfra"
    completed = {c["type"]: c["status"] for c in after["status"]["conditions"]}
    assert completed["Completed"] == "Unknown"
    assert stack.controller.reinitialisations == before + 1
    assert "hvst-upgrade-7xn6v" in stack.controller.reinitialised


async def test_a_concurrent_writer_causes_a_real_conflict_and_a_retry(stack: Stack) -> None:
    """Someone else writes between the BFF's read and its patch, twice, on both servers.

    The API server refuses the stale patch (409 from the resourceVersion in the merge
    patch); the BFF re-reads, re-checks and patches again, and status is untouched.
    """
    backend = stack.backend
    touches = 0

    async def someone_else_writes() -> None:
        nonlocal touches
        if touches < 2:
            touches += 1
            await backend.merge_patch(
                "hvst-upgrade-7xn6v", {"metadata": {"annotations": {"touched": str(touches)}}}
            )

    before = await backend.read("hvst-upgrade-7xn6v")
    stack.recorder.before_patch = someone_else_writes
    response = await stack.client.post(
        f"/api/v1.0.5/upgrades/{NAMESPACE}/hvst-upgrade-7xn6v?action=dismiss",
        headers={"Authorization": "Bearer sandbox-admin"},
    )
    assert response.status == 200
    assert [w.status for w in stack.upstream_writes()] == [409, 409, 200]
    after = await backend.read("hvst-upgrade-7xn6v")
    assert after["metadata"]["labels"][READ] == "true"
    assert after["metadata"]["annotations"]["touched"] == "2"
    assert after["status"] == before["status"]
