"""Property (hypothesis): any sequence of controller writes and client actions, run against
the sandbox (emulator, simulated controller and BFF), never has a client action regress
status conditions or cause a re-initialisation.

Each example gets a fresh copy of a seed upgrade (finished or in progress), then runs
its steps in order: the controller advancing a stage or rewriting status, and clients
dismissing, cancelling and PUTting stale or fresh bodies through every route family.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bff.app import create_app
from bff.sandbox.controller import SimulatedController, advance
from bff.sandbox.emulator import create_emulator_app
from bff.sandbox.kubeconfig import write_kubeconfig
from bff.server import start, stop
from bff.settings import Settings
from tests.support.backends import (
    GROUP,
    IN_PROGRESS,
    NAMESPACE,
    PLURAL,
    SUCCEEDED,
    VERSION,
    Backend,
)

EXAMPLES = 30
READ = "harvesterhci.io/read-message"
ADMIN = {"Authorization": "Bearer sandbox-admin"}
CONTROLLER_TOKEN = "sandbox-controller"
COLLECTION = f"/apis/{GROUP}/{VERSION}/namespaces/{NAMESPACE}/{PLURAL}"

CLIENT_STEPS = ["dismiss", "cancel", "put-v1.0.4-stale", "put-v1.0.5-fresh", "put-steve-stale",
                "put-rancher-fresh"]  # fmt: skip
CONTROLLER_STEPS = ["controller-advance", "controller-rewrite"]


class Sandbox:
    def __init__(self, loop: asyncio.AbstractEventLoop, tmp: Path) -> None:
        self.loop = loop
        self.tmp = tmp
        self.names = itertools.count()
        self.counts: Counter[str] = Counter()

    async def start(self) -> None:
        self.emulator = TestServer(create_emulator_app())
        await self.emulator.start_server()
        url = str(self.emulator.make_url("")).rstrip("/")
        bff = write_kubeconfig(self.tmp / "bff.kubeconfig", url, token="sandbox-bff")
        ctl = write_kubeconfig(self.tmp / "ctl.kubeconfig", url, token="sandbox-controller")
        settings_ = replace(Settings(kubeconfig=str(bff), namespace=NAMESPACE), port=0)
        self.runner, self.url = await start(create_app(settings_), settings_, port=0)
        self.controller = SimulatedController(kubeconfig=str(ctl), namespace=NAMESPACE, interval=0)
        await self.controller.start()
        self.session = aiohttp.ClientSession()
        self.cluster = Backend("emulator", url, None, None, self.session)

    async def stop(self) -> None:
        await self.session.close()
        await self.controller.stop()
        await stop(self.runner)
        await self.emulator.close()

    async def api(
        self, method: str, path: str, body: Any = None, token: str = "sandbox-admin"
    ) -> Any:
        status, data = await self.cluster.call(method, path, body, token=token)
        assert status in (200, 201, 409), (status, data)
        return status, data

    async def bff(self, method: str, path: str, body: Any = None) -> int:
        async with self.session.request(
            method, self.url + path, json=body, headers=ADMIN
        ) as response:
            await response.read()
            assert response.status < 500, response.status
            return response.status

    async def fresh_copy(self, seed: str) -> str:
        _, template = await self.api("GET", f"{COLLECTION}/{seed}")
        name = f"hvst-upgrade-seq{next(self.names):04d}"
        obj = copy.deepcopy(template)
        labels = {k: v for k, v in template["metadata"]["labels"].items() if k != READ}
        obj["metadata"] = {"name": name, "namespace": NAMESPACE, "labels": labels}
        status, _ = await self.api("POST", COLLECTION, obj)
        assert status == 201
        return name

    async def controller_step(self, step: str, name: str, i: int) -> None:
        for _ in range(20):
            _, obj = await self.api("GET", f"{COLLECTION}/{name}", token=CONTROLLER_TOKEN)
            if step == "controller-advance":
                new = advance(obj)
                if new is None:
                    return
            else:
                new = copy.deepcopy(obj)
                for condition in new.get("status", {}).get("conditions", []):
                    condition["message"] = f"controller write {i}"
            status, _ = await self.api("PUT", f"{COLLECTION}/{name}", new, token=CONTROLLER_TOKEN)
            if status == 200:
                return
        raise AssertionError("the controller's write kept conflicting")

    async def client_step(self, step: str, name: str, stale: Any) -> None:
        v4, v5 = (
            f"/api/v1.0.4/upgrades/{NAMESPACE}/{name}",
            f"/api/v1.0.5/upgrades/{NAMESPACE}/{name}",
        )
        steve = f"/v1/harvester/harvesterhci.io.upgrades/{NAMESPACE}/{name}"
        if step in ("dismiss", "cancel"):
            await self.bff("POST", f"{v5}?action={step}")
            return
        path = {
            "v1.0.4": v4,
            "v1.0.5": v5,
            "steve": steve,
            "rancher": f"/k8s/clusters/local{steve}",
        }[step.split("-")[1]]
        body = copy.deepcopy(stale[step.split("-")[1]])
        if step.endswith("fresh"):
            async with self.session.get(self.url + path, headers=ADMIN) as response:
                body = await response.json()
        body["metadata"].setdefault("labels", {})[READ] = "true"
        if step.startswith("put-v1.0.4"):
            body.pop("status", None)  # the v1.0.4 extension's own body: status stripped
        await self.bff("PUT", path, body)

    async def run(self, seed: str, steps: list[str]) -> None:
        name = await self.fresh_copy(seed)
        stale: dict[str, Any] = {}
        for family, path in (
            ("v1.0.4", f"/api/v1.0.4/upgrades/{NAMESPACE}/{name}"),
            ("v1.0.5", f"/api/v1.0.5/upgrades/{NAMESPACE}/{name}"),
            ("steve", f"/v1/harvester/harvesterhci.io.upgrades/{NAMESPACE}/{name}"),
            (
                "rancher",
                f"/k8s/clusters/local/v1/harvester/harvesterhci.io.upgrades/{NAMESPACE}/{name}",
            ),
        ):
            async with self.session.get(self.url + path, headers=ADMIN) as response:
                stale[family] = await response.json()
        before_reinit = self.controller.reinitialisations
        for i, step in enumerate(steps):
            _, before = await self.api("GET", f"{COLLECTION}/{name}")
            if step.startswith("controller"):
                await self.controller_step(step, name, i)
                self.counts["controller writes"] += 1
                continue
            await self.client_step(step, name, stale)
            self.counts["client actions"] += 1
            _, after = await self.api("GET", f"{COLLECTION}/{name}")
            # A client action never changes status (so never regresses a condition),
            # spec or annotations; at most it adds the read-message label.
            assert after.get("status") == before.get("status"), step
            assert after.get("spec") == before.get("spec"), step
            assert after["metadata"].get("annotations") == before["metadata"].get("annotations")
            labels = dict(after["metadata"]["labels"])
            if labels.get(READ) == "true" and before["metadata"]["labels"].get(READ) != "true":
                labels.pop(READ)
                self.counts["dismissals"] += 1
            assert labels == before["metadata"]["labels"], step
        _, final = await self.api("GET", f"{COLLECTION}/{name}")
        await self.controller.wait_synced(final["metadata"]["resourceVersion"])
        assert self.controller.reinitialisations == before_reinit, self.controller.reinitialised


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    loop = asyncio.new_event_loop()
    box = Sandbox(loop, tmp_path)
    loop.run_until_complete(box.start())
    try:
        yield box
    finally:
        loop.run_until_complete(box.stop())
        loop.close()


def test_client_actions_never_regress_status_or_reinitialise(sandbox: Sandbox) -> None:
    slow = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=slow)
    @given(
        st.sampled_from([SUCCEEDED, IN_PROGRESS]),
        st.lists(st.sampled_from(CLIENT_STEPS + CONTROLLER_STEPS), min_size=1, max_size=8),
    )
    def check(seed: str, steps: list[str]) -> None:
        event(f"seed {seed}")
        sandbox.loop.run_until_complete(sandbox.run(seed, steps))

    check()
    print(f"sequences: {EXAMPLES} examples, {dict(sandbox.counts)}")
    assert sandbox.counts["client actions"] > EXAMPLES
    assert sandbox.counts["controller writes"] > 0
    assert sandbox.counts["dismissals"] > 0
