"""``harvester-upgrade-bff serve`` as a child process, in front of an in-test emulator."""

from __future__ import annotations

import asyncio
import copy
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from bff.sandbox.emulator import create_emulator_app
from bff.sandbox.kubeconfig import write_kubeconfig
from tests.support.backends import NAMESPACE, SUCCEEDED, served_emulator

ROOT = Path(__file__).resolve().parents[2]
READ = "harvesterhci.io/read-message"
ADMIN = {"Authorization": "Bearer sandbox-admin"}
_SERVING = re.compile(r"serving on (http://127\.0\.0\.1:\d+)")


async def make_finished_upgrades(emulator: TestServer, count: int) -> list[str]:
    """``count`` copies of the finished seed upgrade, under new names."""
    names = []
    async with served_emulator(emulator) as cluster:
        template = await cluster.read(SUCCEEDED)
        for i in range(count):
            obj = copy.deepcopy(template)
            name = f"hvst-upgrade-load{i:03d}"
            obj["metadata"] = {
                "name": name,
                "namespace": NAMESPACE,
                "labels": {k: v for k, v in template["metadata"]["labels"].items() if k != READ},
            }
            status, body = await cluster.call("POST", cluster.path(), obj)
            assert status == 201, body
            names.append(name)
    return names


async def read_all(emulator: TestServer) -> dict[str, Any]:
    async with served_emulator(emulator) as cluster:
        return await cluster.read_all()


class Serve:
    """``harvester-upgrade-bff serve`` in a child process."""

    def __init__(self, kubeconfig: Path, log: Path, *extra: str) -> None:
        self.extra = extra
        #: Known once started: serve binds port 0 and logs the URL it listens on.
        self.url = ""
        self.kubeconfig = kubeconfig
        self.log = log
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BFF_")}
        earlier = self.log.stat().st_size if self.log.exists() else 0  # a restart appends
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bff", "serve", "--port", "0",
                "--kubeconfig", str(self.kubeconfig), "--namespace", NAMESPACE,
                "--shutdown-timeout", "20", *self.extra,
                cwd=ROOT, env=env, stdout=log, stderr=log,
            )  # fmt: skip
        for _ in range(300):
            listening = _SERVING.search(self.log.read_bytes()[earlier:].decode(errors="replace"))
            if listening:
                self.url = listening.group(1)
                return
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
