"""200 concurrent writes from every route family, while the controller rewrites status.

On a finished upgrade: exactly one upstream write (the label patch), every
response 200, and the status left exactly as the controller last wrote it.
On an upgrade in progress: no write at all, every dismiss a 409.
"""

from __future__ import annotations

import asyncio
import copy
import random
from collections import Counter
from typing import Any

import aiohttp

from bff.patches import mark_read_patch
from bff.sandbox.controller import SimulatedController
from bff.sandbox.kubeconfig import write_kubeconfig
from tests.reliability.conftest import Served
from tests.support.backends import IN_PROGRESS, NAMESPACE, SUCCEEDED, Backend

READ = "harvesterhci.io/read-message"
REQUESTS = 200
CONTROLLER_WRITES = 25


def families(name: str) -> list[tuple[str, str, str]]:
    """(method, path, body kind) for every route family that writes."""
    v4, v5 = f"/api/v1.0.4/upgrades/{NAMESPACE}/{name}", f"/api/v1.0.5/upgrades/{NAMESPACE}/{name}"
    steve = f"/v1/harvester/harvesterhci.io.upgrades/{NAMESPACE}/{name}"
    return [
        ("POST", f"{v5}?action=dismiss", "none"),
        ("POST", f"{v5}?action=cancel", "none"),
        ("PUT", v4, "v1.0.4"),
        ("PUT", v5, "v1.0.5"),
        ("PUT", steve, "steve"),
        ("PUT", f"/k8s/clusters/local{steve}", "steve"),
    ]


class Rewriter:
    """The Harvester controller's part: replace the whole object with a new status, often."""

    def __init__(self, served: Served, session: aiohttp.ClientSession, name: str) -> None:
        url = str(served.emulator.make_url("")).rstrip("/")
        self.cluster = Backend("emulator", url, None, None, session)
        self.path = self.cluster.path(name)
        self.last_status: Any = None
        self.writes = 0

    async def write_once(self, i: int) -> None:
        while True:
            _, obj = await self.cluster.call("GET", self.path, token="sandbox-controller")
            status = copy.deepcopy(obj["status"])
            status["previousVersion"] = f"v1.4.{i}"
            for condition in status.get("conditions", []):
                condition["lastUpdateTime"] = f"2026-01-01T00:00:{i:02d}Z"
            obj["status"] = status
            code, written = await self.cluster.call(
                "PUT", self.path, obj, token="sandbox-controller"
            )
            if code == 409:
                continue
            assert code == 200, written
            self.last_status = written["status"]
            self.writes += 1
            return

    async def run(self, stop: asyncio.Event) -> None:
        for i in range(CONTROLLER_WRITES):
            await self.write_once(i)
            if stop.is_set() and i >= CONTROLLER_WRITES // 2:
                break
            await asyncio.sleep(random.uniform(0, 0.01))


async def bodies(session: aiohttp.ClientSession, served: Served, name: str) -> dict[str, Any]:
    """Each family's dismiss body, read through the BFF the way each client reads it."""
    out: dict[str, Any] = {"none": None}
    for kind, path in (
        ("v1.0.4", f"/api/v1.0.4/upgrades/{NAMESPACE}/{name}"),
        ("v1.0.5", f"/api/v1.0.5/upgrades/{NAMESPACE}/{name}"),
        ("steve", f"/v1/harvester/harvesterhci.io.upgrades/{NAMESPACE}/{name}"),
    ):
        async with session.get(served.url + path) as response:
            assert response.status == 200
            body = await response.json()
        body["metadata"].setdefault("labels", {})[READ] = "true"
        out[kind] = body
    return out


Storm = tuple[Counter[int], Any, Any, list[tuple[str, str, str]]]


async def storm(served: Served, name: str, tmp_path: Any) -> Storm:
    headers = {"Authorization": "Bearer sandbox-admin"}
    controller = SimulatedController(
        kubeconfig=str(
            write_kubeconfig(
                tmp_path / "ctl.kubeconfig",
                str(served.emulator.make_url("")).rstrip("/"),
                token="sandbox-controller",
            )
        ),
        namespace=NAMESPACE,
        interval=0,
    )
    connector = aiohttp.TCPConnector(limit=64)
    async with controller, aiohttp.ClientSession(headers=headers, connector=connector) as session:
        body_of = await bodies(session, served, name)
        served.journal.clear()
        rewriter = Rewriter(served, session, name)
        await rewriter.write_once(99)
        plan = [random.Random(i).choice(families(name)) for i in range(REQUESTS)]
        stop = asyncio.Event()

        async def one(method: str, path: str, kind: str) -> int:
            async with session.request(method, served.url + path, json=body_of[kind]) as response:
                await response.read()
                return response.status

        rewriting = asyncio.create_task(rewriter.run(stop))
        statuses = await asyncio.gather(*(one(*p) for p in plan))
        stop.set()
        await rewriting
        final = await _read(session, served, name)
        await controller.wait_synced(final["metadata"]["resourceVersion"])
        assert controller.reinitialisations == 0, controller.reinitialised
        print(f"concurrency: {REQUESTS} requests, {rewriter.writes} controller writes")
        return Counter(statuses), final, rewriter.last_status, plan


async def _read(session: aiohttp.ClientSession, served: Served, name: str) -> Any:
    url = str(served.emulator.make_url("")).rstrip("/")
    return await Backend("emulator", url, None, None, session).read(name)


def bff_patches(served: Served) -> list[Any]:
    return [e for e in served.journal.writes("PATCH") if e.status == 200]


async def test_finished_upgrade_one_write_all_200_status_is_the_controllers(
    served: Served, tmp_path: Any
) -> None:
    statuses, final, last_status, plan = await storm(served, SUCCEEDED, tmp_path)
    assert statuses == Counter({200: REQUESTS}), statuses
    assert {m for m, _, _ in plan} == {"POST", "PUT"}
    assert len({k for _, _, k in plan}) == 4
    [patch] = bff_patches(served)
    assert patch.body == mark_read_patch(patch.body["metadata"]["resourceVersion"])
    assert final["metadata"]["labels"][READ] == "true"
    assert final["status"] == last_status


async def test_in_progress_upgrade_no_write_every_dismiss_409(
    served: Served, tmp_path: Any
) -> None:
    statuses, final, last_status, plan = await storm(served, IN_PROGRESS, tmp_path)
    assert bff_patches(served) == []
    assert READ not in (final["metadata"].get("labels") or {})
    assert final["status"] == last_status
    cancels = sum(1 for _, path, _ in plan if path.endswith("action=cancel"))
    assert statuses == Counter({409: REQUESTS - cancels, 200: cancels}), statuses
