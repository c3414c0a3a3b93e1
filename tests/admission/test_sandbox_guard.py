"""``sandbox --webhook-port``: the emulator consults the cluster guard on every Upgrade write.

Covers, through the sandbox as ``running()`` builds it (HTTPS emulator, simulated
controller, BFF, and the webhook on loopback): a v1.0.4 body PUT straight to the
emulator keeps status and finalizers, answers with the guard's ``Warning: 299``
headers, and the simulated controller re-initialises nothing; a JSON patch
removing status is repaired the same way; a server-side dry run gets the same
answer and changes nothing; the controller's own writes pass; without the
webhook, the same PUT wipes status and the controller re-initialises the
upgrade (the bug, as before). Also the command line: the banner names the guard.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aiohttp
import pytest

from bff.sandbox.runner import Sandbox, running
from bff.settings import Settings
from tests.admission.reviews import fixture
from tests.support.backends import sandbox_emulator
from tests.support.processes import started

NAME = "hvst-upgrade-7xn6v"
PATH = f"/apis/harvesterhci.io/v1beta1/namespaces/harvester-system/upgrades/{NAME}"
ADMIN = {"Authorization": "Bearer sandbox-admin"}
SETTINGS = Settings(port=0)
SANDBOX_COMMAND = [sys.executable, "-m", "bff", "sandbox", "--port", "0", "--kube-port", "0"]
SANDBOX_COMMAND += ["--webhook-port", "0"]


@pytest.fixture
async def guarded() -> AsyncIterator[Sandbox]:
    async with running(replace(SETTINGS, webhook_port=0), kube_port=0, interval=0) as sandbox:
        yield sandbox


@pytest.fixture
async def unguarded() -> AsyncIterator[Sandbox]:
    async with running(SETTINGS, kube_port=0, interval=0) as sandbox:
        yield sandbox


async def call(
    sandbox: Sandbox,
    method: str,
    path: str = PATH,
    body: Any = None,
    *,
    token: str = "sandbox-admin",
    content_type: str = "application/json",
) -> tuple[int, Any, list[str]]:
    async with sandbox_emulator(sandbox) as cluster:
        status, headers, obj = await cluster.request(
            method, path, body, token=token, content_type=content_type
        )
    # Only the guard's warnings (the decoder adds "unknown field" ones for Steve's
    # id and type, as kube-apiserver does).
    guard = [w for w in headers.getall("Warning", []) if "harvester-upgrade-bff" in w]
    return status, obj, guard


async def live(sandbox: Sandbox) -> Any:
    status, obj, _ = await call(sandbox, "GET")
    assert status == 200
    return obj


def v104_body(resource_version: str) -> Any:
    body = fixture("clients/v1.0.4-dismiss-put-body.json")
    body["metadata"]["resourceVersion"] = resource_version
    return body


async def settled(sandbox: Sandbox) -> None:
    status, listed, _ = await call(
        sandbox, "GET", "/apis/harvesterhci.io/v1beta1/namespaces/harvester-system/upgrades"
    )
    assert status == 200
    await sandbox.controller.wait_synced(listed["metadata"]["resourceVersion"])


async def direct_v104_put(sandbox: Sandbox) -> tuple[Any, int, tuple[int, Any, list[str]]]:
    """v1.0.4's body PUT straight to the emulator, once the controller has caught up:
    the object before, the controller's re-initialisations before, and the answer."""
    before = await live(sandbox)
    await settled(sandbox)
    reinitialised = sandbox.controller.reinitialisations
    answer = await call(sandbox, "PUT", body=v104_body(before["metadata"]["resourceVersion"]))
    return before, reinitialised, answer


async def test_direct_v104_put_keeps_status_with_the_guard(guarded: Sandbox) -> None:
    assert guarded.webhook_url is not None
    before, reinitialised, (status, obj, warnings) = await direct_v104_put(guarded)
    assert status == 200
    assert obj["status"] == before["status"]
    assert obj["metadata"]["finalizers"] == before["metadata"]["finalizers"]
    assert obj["metadata"]["labels"]["harvesterhci.io/read-message"] == "true"
    assert obj["metadata"]["labels"]["harvesterhci.io/upgradeState"] == "Succeeded"
    assert len(warnings) == 2
    assert warnings[0].startswith('299 - "harvester-upgrade-bff: Upgrade harvester-system/')
    assert "removed its status" in warnings[0]
    await settled(guarded)
    assert guarded.controller.reinitialisations == reinitialised
    after = await live(guarded)
    assert after["status"] == before["status"]
    metrics = await _bff_metrics(guarded)
    upgrades = 'resource="upgrades.harvesterhci.io"'
    assert f'bff_status_restores_total{{reason="status_removed",{upgrades}}} 1.0' in metrics
    assert f'bff_status_restores_total{{reason="finalizers_dropped",{upgrades}}} 1.0' in metrics


async def test_json_patch_removing_status_is_repaired(guarded: Sandbox) -> None:
    before = await live(guarded)
    status, obj, warnings = await call(
        guarded,
        "PATCH",
        body=[{"op": "remove", "path": "/status"}],
        content_type="application/json-patch+json",
    )
    assert status == 200
    assert obj["status"] == before["status"]
    assert len(warnings) == 1
    # Nothing changed, so nothing was written: the resourceVersion stays.
    assert obj["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


async def test_dry_run_gets_the_same_answer_and_changes_nothing(guarded: Sandbox) -> None:
    before = await live(guarded)
    status, obj, warnings = await call(
        guarded,
        "PUT",
        body=v104_body(before["metadata"]["resourceVersion"]),
        path=f"{PATH}?dryRun=All",
    )
    assert status == 200
    assert obj["status"] == before["status"]
    assert len(warnings) == 2
    after = await live(guarded)
    assert after == before
    assert 'bff_status_restores_total{reason="status_removed"' not in (await _bff_metrics(guarded))


async def test_the_controllers_own_status_write_passes(guarded: Sandbox) -> None:
    before = await live(guarded)
    rewrite = copy.deepcopy(before)
    rewrite["status"]["conditions"] = [{"type": "Completed", "status": "Unknown"}]
    status, obj, warnings = await call(
        guarded,
        "PUT",
        body=rewrite,
        token="sandbox-controller",
    )
    assert status == 200, obj
    assert obj["status"] == rewrite["status"]
    assert warnings == []


async def test_without_the_guard_the_bug_reproduces(unguarded: Sandbox) -> None:
    assert unguarded.webhook_url is None
    _, reinitialised, (status, obj, _) = await direct_v104_put(unguarded)
    assert status == 200
    assert "status" not in obj
    await settled(unguarded)
    assert unguarded.controller.reinitialisations == reinitialised + 1
    after = await live(unguarded)
    assert after["metadata"]["labels"]["harvesterhci.io/upgradeState"] == "PreparingLoggingInfra"


async def _bff_metrics(sandbox: Sandbox) -> str:
    async with (
        aiohttp.ClientSession() as session,
        session.get(sandbox.bff_url + "/metrics") as response,
    ):
        return await response.text()


def test_sandbox_command_banner_names_the_guard() -> None:
    with started(SANDBOX_COMMAND, env={"PATH": "/usr/bin:/bin"}) as child:
        text = child.banner()
    assert "Cluster guard (webhook)     https://127.0.0.1:" in text
    assert "/admission/guard/mutate, consulted by the emulator" in text
