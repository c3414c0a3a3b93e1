"""Shared fixtures: the API servers the suite talks to, and the BFF in front of them.

* ``emulator``: the sandbox's Kubernetes API emulator on a loopback port.
* ``real_apiserver``: a real kube-apiserver on etcd, started once
  per session (tests using it are marked ``real_apiserver``; they skip with one
  line when Go is missing, and fail instead when BFF_REQUIRE_REAL_APISERVER=1).
* ``backend``: either of the two, parametrised, reset to the three seed objects.
* ``stack``: the BFF (real app, real kubernetes-asyncio client, a kubeconfig)
  in front of a recording proxy in front of ``backend``, plus the simulated
  Harvester controller watching ``backend``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bff import logs
from bff.app import create_app
from bff.keys import CACHE
from bff.sandbox.controller import SimulatedController
from bff.sandbox.emulator import create_emulator_app
from bff.sandbox.kubeconfig import write_kubeconfig
from bff.settings import Settings
from tests.support.backends import NAMESPACE, Backend, EmulatorBackend
from tests.support.recorder import Recorder


@pytest.fixture(autouse=True)
def _logging_as_found() -> Iterator[None]:
    """Undo a ``logs.configure`` that a test ran in-process (``cli.main`` does one).

    It replaces the root logger's handlers with one on the ``sys.stderr`` of the
    moment, which under capture is a file pytest closes when the test ends; left
    in place, every later log line would fail to write ("I/O operation on closed
    file") and pytest's own capture handlers would be gone.
    """
    root = logging.getLogger()
    before, level = logs._configured, root.level
    yield
    installed = logs._configured
    if installed is not before and installed is not None:
        root.removeHandler(installed)
        installed.close()
    logs._configured = before
    root.setLevel(level)


REQUIRE_REAL = os.environ.get("BFF_REQUIRE_REAL_APISERVER") == "1"


@pytest.fixture(scope="session")
def real_apiserver() -> Iterator[Any]:
    from tests.support.real_apiserver import RealApiServer, RealApiServerUnavailable

    server = RealApiServer()
    try:
        server.start()
    except RealApiServerUnavailable as exc:
        if REQUIRE_REAL:
            pytest.fail(f"real API server required but unavailable: {exc}")
        pytest.skip(f"real API server unavailable: {exc}")
    rss = server.rss_bytes() or 0
    _REAL_SERVER_STATS.append(
        f"real kube-apiserver: /readyz 200 {server.ready_seconds:.1f}s after exec, seeded "
        f"{server.startup_seconds:.1f}s after start, RSS {rss / 2**20:.0f} MiB"
    )
    yield server
    server.stop()


_REAL_SERVER_STATS: list[str] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for line in _REAL_SERVER_STATS:
        terminalreporter.write_line(line)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def emulator(aiohttp_server: Callable[..., Any]) -> TestServer:
    server: TestServer = await aiohttp_server(create_emulator_app())
    return server


async def _emulator_backend(
    aiohttp_server: Callable[..., Any], http: aiohttp.ClientSession
) -> Backend:
    server: TestServer = await aiohttp_server(create_emulator_app())
    url = str(server.make_url("")).rstrip("/")
    return EmulatorBackend("emulator", url, None, None, http, app=server.app)


@pytest.fixture(
    params=["emulator", pytest.param("real", marks=pytest.mark.real_apiserver)],
)
async def backend(
    request: pytest.FixtureRequest,
    aiohttp_server: Callable[..., Any],
    http: aiohttp.ClientSession,
) -> Backend:
    if request.param == "emulator":
        return await _emulator_backend(aiohttp_server, http)
    real = request.getfixturevalue("real_apiserver")
    real.reset()
    context = ssl.create_default_context(cafile=str(real.ca_file))
    return Backend("real", real.url, context, str(real.ca_file), http)


@pytest.fixture
async def emulator_backend(
    aiohttp_server: Callable[..., Any], http: aiohttp.ClientSession
) -> Backend:
    return await _emulator_backend(aiohttp_server, http)


def kubeconfig_for(backend: Backend, directory: Path, token: str, name: str) -> Path:
    return write_kubeconfig(directory / name, backend.url, token=token, ca_file=backend.ca_file)


@dataclass
class Stack:
    """The BFF under test and everything around it."""

    backend: Backend
    client: TestClient[web.Request, web.Application]
    recorder: Recorder
    controller: SimulatedController
    settings: Settings

    def upstream_writes(self) -> list[Any]:
        return [w for w in self.recorder.writes if "/upgrades" in w.path]

    def caller_requests(self) -> list[Any]:
        """Upstream requests made for callers: all but the read cache's own list and watch."""
        return [r for r in self.recorder.requests if not is_cache_sync(r)]

    async def settle(self) -> None:
        """Wait until the controller and the read cache have seen everything written so far."""
        listed = await self.backend.call("GET", self.backend.path())
        await self.controller.wait_synced(listed[1]["metadata"]["resourceVersion"])
        cache = self.client.app.get(CACHE)
        if cache is None:
            return
        want = {i["metadata"]["name"]: i["metadata"]["resourceVersion"] for i in listed[1]["items"]}

        def caught_up(name: str, version: str) -> bool:  # that version, or a later one
            # Compared here, not with bff.cache.newer: the oracle must not be the code
            # under test (the emulator's versions are integers).
            entry = cache.entry(name)
            return entry is not None and int(entry.version) >= int(version)

        for _ in range(500):
            if all(caught_up(name, version) for name, version in want.items()):
                return
            await asyncio.sleep(0.02)
        raise AssertionError("the read cache did not catch up with the API server in 10 s")


BFF_TOKEN = "Bearer sandbox-bff"


def is_cache_sync(recorded: Any) -> bool:
    """The read cache's own list or watch of the namespace (the BFF's identity, no one else's)."""
    path = recorded.path.split("?", 1)[0]
    return (
        recorded.method == "GET"
        and path == f"/apis/harvesterhci.io/v1beta1/namespaces/{NAMESPACE}/upgrades"
        and recorded.headers.get("Authorization") == BFF_TOKEN
        and not any(k.lower().startswith("impersonate-") for k in recorded.headers)
    )


async def make_stack(
    backend: Backend,
    tmp_path: Path,
    aiohttp_server: Callable[..., Any],
    aiohttp_client: Callable[..., Any],
    controller_interval: float = 0,
    **overrides: Any,
) -> AsyncIterator[Stack]:
    recorder = Recorder(backend.url, backend.ssl_context)
    proxy: TestServer = await aiohttp_server(recorder.app())
    kubeconfig = write_kubeconfig(
        tmp_path / f"bff-{id(recorder)}.kubeconfig",
        str(proxy.make_url("")).rstrip("/"),
        token="sandbox-bff",
    )
    settings = replace(Settings(kubeconfig=str(kubeconfig), namespace=NAMESPACE), **overrides)
    client: TestClient[web.Request, web.Application] = await aiohttp_client(create_app(settings))
    cache = client.app.get(CACHE)
    if cache is not None:  # the read cache is on (the default): serve from it from the start
        await asyncio.wait_for(cache.wait_synced(), 10)
    controller = SimulatedController(
        kubeconfig=str(kubeconfig_for(backend, tmp_path, "sandbox-controller", "ctl.kubeconfig")),
        namespace=NAMESPACE,
        interval=controller_interval,
    )
    await controller.start()
    try:
        yield Stack(backend, client, recorder, controller, settings)
    finally:
        await controller.stop()


@pytest.fixture
async def stack(
    backend: Backend,
    tmp_path: Path,
    aiohttp_server: Callable[..., Any],
    aiohttp_client: Callable[..., Any],
) -> AsyncIterator[Stack]:
    async for s in make_stack(backend, tmp_path, aiohttp_server, aiohttp_client):
        yield s


@pytest.fixture
async def stack_factory(
    tmp_path: Path,
    aiohttp_server: Callable[..., Any],
    aiohttp_client: Callable[..., Any],
) -> AsyncIterator[Callable[..., Awaitable[Stack]]]:
    """Build stacks with other settings (``auth_mode=...``, timeouts) over a backend."""
    async with contextlib.AsyncExitStack() as exits:

        async def build(backend: Backend, **overrides: Any) -> Stack:
            generator = make_stack(backend, tmp_path, aiohttp_server, aiohttp_client, **overrides)
            built = await generator.__anext__()
            exits.push_async_callback(generator.aclose)  # type: ignore[attr-defined]
            return built

        yield build


@pytest.fixture
async def emulator_stack(
    emulator_backend: Backend,
    tmp_path: Path,
    aiohttp_server: Callable[..., Any],
    aiohttp_client: Callable[..., Any],
) -> AsyncIterator[Stack]:
    async for s in make_stack(emulator_backend, tmp_path, aiohttp_server, aiohttp_client):
        yield s
