"""Requests given up on leave nothing open: no socket, transport or client session leaks.

Each path that abandons a connection is provoked on purpose: the BFF giving up on an
upstream that hangs past the read timeout, callers hanging up while the BFF waits on
the upstream, and requests still in flight when the BFF stops. Once everything is
stopped, a garbage collection must find no unclosed resource (a leaked socket shows
as a ResourceWarning only when it is collected, which under load may be during
some later test).
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
from bff.sandbox.emulator import EMULATOR_FAULTS, Fault, create_emulator_app
from bff.sandbox.kubeconfig import write_kubeconfig
from bff.server import start, stop
from bff.settings import Settings
from tests.support.backends import NAMESPACE, SUCCEEDED

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
            faults.add(Fault("GET", f"/{SUCCEEDED}", delay=0.25, times=EACH))

            async def hang_up() -> None:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.05):
                        await get()
                    outcomes["answered before hanging up"] += 1
                    return
                outcomes["hung up"] += 1

            await asyncio.gather(*(hang_up() for _ in range(EACH)))
            await asyncio.sleep(0.4)  # the BFF's abandoned upstream calls finish meanwhile

            # Requests in flight when the BFF stops: drained, then everything closes.
            faults.add(Fault("GET", f"/{SUCCEEDED}", delay=0.1, times=EACH))
            in_flight = [asyncio.create_task(get()) for _ in range(EACH)]
            await asyncio.sleep(0.05)
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
