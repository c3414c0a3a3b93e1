"""Process faults: SIGTERM under load drops no accepted write; SIGKILL leaves no partial state.

``serve`` runs as a real process (the one an operator starts) against the
emulator in this test's process, so the emulator sees exactly what reached it.
"""

from __future__ import annotations

import asyncio
import copy
import os
import random
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bff.patches import mark_read_patch
from bff.sandbox.emulator import EMULATOR_FAULTS, EMULATOR_JOURNAL, Fault, create_emulator_app
from bff.sandbox.kubeconfig import write_kubeconfig
from tests.support.backends import GROUP, NAMESPACE, PLURAL, SUCCEEDED, VERSION

ROOT = Path(__file__).resolve().parents[2]
READ = "harvesterhci.io/read-message"
ADMIN = {"Authorization": "Bearer sandbox-admin"}
COLLECTION = f"/apis/{GROUP}/{VERSION}/namespaces/{NAMESPACE}/{PLURAL}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def make_finished_upgrades(emulator: TestServer, count: int) -> list[str]:
    """``count`` copies of the finished seed upgrade, under new names."""
    names = []
    async with aiohttp.ClientSession(headers=ADMIN) as session:
        async with session.get(emulator.make_url(f"{COLLECTION}/{SUCCEEDED}")) as response:
            template = await response.json()
        for i in range(count):
            obj = copy.deepcopy(template)
            name = f"hvst-upgrade-load{i:03d}"
            obj["metadata"] = {
                "name": name,
                "namespace": NAMESPACE,
                "labels": {k: v for k, v in template["metadata"]["labels"].items() if k != READ},
            }
            async with session.post(emulator.make_url(COLLECTION), json=obj) as response:
                assert response.status == 201, await response.text()
            names.append(name)
    return names


async def read_all(emulator: TestServer) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession(headers=ADMIN) as session,
        session.get(emulator.make_url(COLLECTION)) as response,
    ):
        return {o["metadata"]["name"]: o for o in (await response.json())["items"]}


class Serve:
    """``harvester-upgrade-bff serve`` in a child process."""

    def __init__(self, kubeconfig: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.kubeconfig = kubeconfig
        self.log = log
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BFF_")}
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bff", "serve", "--port", str(self.port),
                "--kubeconfig", str(self.kubeconfig), "--namespace", NAMESPACE,
                "--shutdown-timeout", "20",
                cwd=ROOT, env=env, stdout=log, stderr=log,
            )  # fmt: skip
        async with aiohttp.ClientSession() as session:
            for _ in range(300):
                try:
                    async with session.get(f"{self.url}/healthz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError(f"serve did not start: {self.log.read_text()[-2000:]}")

    def signal(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    async def wait(self) -> int:
        assert self.process is not None
        return await asyncio.wait_for(self.process.wait(), 60)


@pytest.fixture
async def emulator(aiohttp_server: Any) -> TestServer:
    server: TestServer = await aiohttp_server(create_emulator_app())
    return server


@pytest.fixture
async def serve(emulator: TestServer, tmp_path: Path) -> AsyncIterator[Serve]:
    kubeconfig = write_kubeconfig(
        tmp_path / "bff.kubeconfig", str(emulator.make_url("")).rstrip("/"), token="sandbox-bff"
    )
    process = Serve(kubeconfig, tmp_path / "serve.log")
    yield process
    if process.process is not None and process.process.returncode is None:
        process.process.kill()
        await process.process.wait()


async def dismiss(session: aiohttp.ClientSession, url: str, name: str) -> tuple[str, int, str]:
    try:
        async with session.post(
            f"{url}/api/v1.0.5/upgrades/{NAMESPACE}/{name}?action=dismiss", headers=ADMIN
        ) as response:
            await response.read()
            return name, response.status, response.headers.get("X-Upgrade-Bff-Changed", "")
    except aiohttp.ClientError:
        return name, 0, ""


async def test_sigterm_during_load_drops_no_accepted_write(
    emulator: TestServer, serve: Serve
) -> None:
    names = await make_finished_upgrades(emulator, 40)
    # Every patch is held 0.5 s at the API server, so all 40 are in flight at SIGTERM.
    emulator.app[EMULATOR_FAULTS].add(Fault("PATCH", delay=0.5, times=1000))
    journal = emulator.app[EMULATOR_JOURNAL]
    journal.clear()
    await serve.start()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        calls = [asyncio.create_task(dismiss(session, serve.url, n)) for n in names]
        await asyncio.sleep(0.3)
        serve.signal(signal.SIGTERM)
        results = await asyncio.gather(*calls)
    assert await serve.wait() == 0
    assert sorted(results) == sorted((n, 200, "true") for n in names), results
    patched = [e for e in journal.writes("PATCH") if e.status == 200]
    assert sorted(e.path.rsplit("/", 1)[1] for e in patched) == sorted(names)
    after = await read_all(emulator)
    assert all(after[n]["metadata"]["labels"][READ] == "true" for n in names)


async def test_sigkill_at_any_moment_leaves_no_partial_state(
    emulator: TestServer, serve: Serve
) -> None:
    """Killed mid-dismiss, again and again: every object is as before, or exactly dismissed."""
    names = await make_finished_upgrades(emulator, 12)
    before = await read_all(emulator)
    journal = emulator.app[EMULATOR_JOURNAL]
    journal.clear()
    r = random.Random(14)
    kills = 0
    for _ in range(4):
        await serve.start()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            calls = [asyncio.create_task(dismiss(session, serve.url, n)) for n in names]
            await asyncio.sleep(r.uniform(0.0, 0.08))
            serve.signal(signal.SIGKILL)
            kills += 1
            await asyncio.gather(*calls)
        await serve.wait()
    after = await read_all(emulator)
    for name in names:
        old, new = before[name], after[name]
        for part in ("spec", "status"):
            assert new.get(part) == old.get(part), (name, part)
        labels = dict(new["metadata"]["labels"])
        if labels.pop(READ, None) is not None:
            assert labels == old["metadata"]["labels"]
        else:
            assert new["metadata"]["resourceVersion"] == old["metadata"]["resourceVersion"]
        assert new["metadata"].get("annotations") == old["metadata"].get("annotations")
    for entry in journal.writes():
        assert entry.method == "PATCH"
        assert entry.body == mark_read_patch(entry.body["metadata"]["resourceVersion"])
    assert kills == 4
