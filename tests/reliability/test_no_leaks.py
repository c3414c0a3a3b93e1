"""Requests given up on leave nothing open: no socket, transport or client session leaks.

Each path that abandons a connection is provoked on purpose: the BFF giving up on an
upstream that hangs past the read timeout, callers hanging up while the BFF waits on
the upstream, and requests still in flight when the BFF stops. Once everything is
stopped, a garbage collection must find no unclosed resource (a leaked socket shows
as a ResourceWarning only when it is collected, which under load may be during
some later test).

The same holds for a stream cut over TLS, where closing politely means waiting for the
server's answer: the BFF (its watch) and the suite's recording proxy must drop such a
connection, and be rid of it, before they stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import warnings
from collections import Counter
from dataclasses import replace
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

from bff.app import create_app
from bff.sandbox.discovery import GROUPS
from bff.sandbox.emulator import EMULATOR_FAULTS, Fault, create_emulator_app
from bff.sandbox.kubeconfig import write_kubeconfig
from bff.server import start, stop
from bff.settings import Settings
from tests.support.backends import BASE, GROUP, NAMESPACE, SUCCEEDED, VERSION
from tests.support.recorder import Recorder
from tests.support.silent_tls import EVENT, SilentTlsUpstream, sockets_to
from tests.support.waiting import until

ADMIN = {"Authorization": "Bearer sandbox-admin"}
GET = f"/api/v1.0.5/upgrades/{NAMESPACE}/{SUCCEEDED}"
EACH = 16


def unclosed_after_collection() -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    return [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]


async def abandon_requests(tmp_path: Path) -> Counter[str]:
    """Every abandoning path once; returns what the callers saw. Nothing outlives it."""
    emulator = TestServer(create_emulator_app())
    await emulator.start_server()
    faults = emulator.app[EMULATOR_FAULTS]
    kubeconfig = write_kubeconfig(
        tmp_path / "bff.kubeconfig", str(emulator.make_url("")).rstrip("/"), token="sandbox-bff"
    )
    settings = replace(
        Settings(kubeconfig=str(kubeconfig), namespace=NAMESPACE, port=0),
        upstream_read_timeout=0.3,
        read_cache=False,  # every read goes upstream, so each one can be abandoned there
    )
    runner, url = await start(create_app(settings), settings, host="127.0.0.1", port=0)
    stopped = False
    outcomes: Counter[str] = Counter()
    try:
        async with aiohttp.ClientSession(url, headers=ADMIN) as session:

            async def get() -> int:
                async with session.get(GET) as response:
                    await response.read()
                    return response.status

            # The upstream hangs past the read timeout: the BFF abandons each request.
            faults.add(Fault("GET", f"/{SUCCEEDED}", delay=1.0, times=EACH))
            for status in await asyncio.gather(*(get() for _ in range(EACH))):
                outcomes[f"timed out upstream: {status}"] += 1

            # Callers hang up while the BFF is still waiting on the upstream.
            held = faults.add(Fault("GET", f"/{SUCCEEDED}", delay=0.25, times=EACH))

            async def hang_up() -> None:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.05):
                        await get()
                    outcomes["answered before hanging up"] += 1
                    return
                outcomes["hung up"] += 1

            await asyncio.gather(*(hang_up() for _ in range(EACH)))
            # Every abandoned call reached the upstream, and the BFF finished with each.
            server = runner.server
            assert server is not None
            await until(lambda: held not in faults.pending, "the abandoned calls upstream")
            await until(
                lambda: all(getattr(c, "waiting", False) for c in server.connections),
                "the BFF to finish the requests its callers left",
            )

            # Requests in flight when the BFF stops: drained, then everything closes.
            late = faults.add(Fault("GET", f"/{SUCCEEDED}", delay=0.1, times=EACH))
            in_flight = [asyncio.create_task(get()) for _ in range(EACH)]
            await until(lambda: late not in faults.pending, "every request held upstream")
            await stop(runner)
            stopped = True
            for status in await asyncio.gather(*in_flight):
                outcomes[f"in flight at stop: {status}"] += 1
    finally:
        if not stopped:
            await stop(runner)
        await emulator.close()
    return outcomes


async def test_abandoned_requests_leave_no_socket_open(tmp_path: Path) -> None:
    assert unclosed_after_collection() == [], "garbage from before this test"
    outcomes = await abandon_requests(tmp_path)
    assert outcomes == Counter(
        {"timed out upstream: 504": EACH, "hung up": EACH, "in flight at stop: 200": EACH}
    ), outcomes
    # asyncio closes a socket one loop iteration after its transport is closed.
    for _ in range(3):
        await asyncio.sleep(0)
    assert unclosed_after_collection() == []


async def test_the_recording_proxy_drops_a_tls_stream_its_caller_left(tmp_path: Path) -> None:
    # The upstream never answers a TLS close, so a polite close would stay open for 30 s,
    # past the end of the test's event loop: the leaked socket a later test then collects.
    with SilentTlsUpstream(tmp_path, {}) as upstream:
        recorder = Recorder(upstream.url, upstream.client_context())
        proxy = TestServer(recorder.app())
        await proxy.start_server()
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(proxy.make_url("/watch?watch=true")) as response,
            ):
                assert await response.content.readline() == EVENT
                assert sockets_to(upstream.port) == 1
        finally:
            await proxy.close()
        assert sockets_to(upstream.port) == 0


async def test_a_stopped_bff_leaves_no_tls_watch_open(tmp_path: Path) -> None:
    answers = {
        f"/apis/{GROUP}/{VERSION}": {
            "kind": "APIResourceList",
            "groupVersion": f"{GROUP}/{VERSION}",
            "resources": GROUPS[GROUP][1],
        },
        BASE: {"kind": "UpgradeList", "metadata": {"resourceVersion": "1"}, "items": []},
    }
    with SilentTlsUpstream(tmp_path / "tls", answers) as upstream:
        kubeconfig = write_kubeconfig(
            tmp_path / "bff.kubeconfig",
            upstream.url,
            token="sandbox-bff",
            ca_file=str(upstream.certificate.ca_file),
        )
        settings = Settings(kubeconfig=str(kubeconfig), namespace=NAMESPACE, port=0)
        runner, _ = await start(create_app(settings), settings, host="127.0.0.1", port=0)
        try:
            for _ in range(500):  # the read cache lists, then watches
                if upstream.watches:
                    break
                await asyncio.sleep(0.02)
            assert upstream.watches == 1
        finally:
            await stop(runner)
        assert sockets_to(upstream.port) == 0
