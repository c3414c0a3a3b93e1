"""Live-update streams are bounded: they never starve API callers, a reader that stops
is dropped, and a hang-up is a normal end.

The probe behind these tests: 60 streams from one token filled ``--max-connections``
(streams count as busy, so the connection limit never closed one) and every other
request was reset; a client that stopped reading held megabytes of unsent data for
ever, the handler blocked in ``write()``; each ordinary disconnect was an ERROR with a
traceback and a 500 in the access log and the metrics. Served through
:mod:`bff.server` (the real connection limits) on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from bff.keys import STREAMS
from tests.reliability.conftest import Served, ServeFactory
from tests.support.backends import SUCCEEDED, served_emulator

EVENTS = "/api/v1.0.5/upgrades/events"


def _headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@contextlib.asynccontextmanager
async def _stream(session: aiohttp.ClientSession, url: str, token: str) -> AsyncIterator[int]:
    """A stream held open (its snapshot read); yields the status."""
    async with session.get(url + EVENTS, headers=_headers(token)) as response:
        if response.status == 200:
            head = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 10)
            assert head.startswith(b"event: snapshot")
        yield response.status


async def _until(condition: Any, bound: float, what: str) -> None:
    deadline = time.monotonic() + bound
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


async def test_one_callers_streams_are_capped_and_never_starve_api_callers(
    serve_factory: ServeFactory,
) -> None:
    served: Served = await serve_factory(
        max_connections=8, max_streams=16, max_streams_per_caller=4
    )
    connector = aiohttp.TCPConnector(limit=0)
    async with contextlib.AsyncExitStack() as held:
        session = await held.enter_async_context(aiohttp.ClientSession(connector=connector))
        statuses = []
        for _ in range(5):  # one more than a credential may hold
            statuses.append(
                await held.enter_async_context(_stream(session, served.url, "sandbox-viewer"))
            )
        assert statuses == [200, 200, 200, 200, 429]
        for _ in range(4):  # another credential has its own allowance
            status = await held.enter_async_context(_stream(session, served.url, "sandbox-admin"))
            assert status == 200
        # 8 streams open: as many as --max-connections. API callers still get answers,
        # each on a new connection, and the streams stay open.
        answers = []
        for _ in range(10):
            async with (
                aiohttp.ClientSession() as other,
                other.get(
                    served.url + "/api/v1.0.5/upgrades", headers=_headers("sandbox-viewer")
                ) as response,
            ):
                answers.append(response.status)
        assert answers == [200] * 10
        assert len(served.runner.app[STREAMS]) == 8


async def test_a_client_that_stops_reading_is_dropped_within_the_write_timeout(
    serve_factory: ServeFactory,
) -> None:
    served: Served = await serve_factory(stream_write_timeout=0.5)
    streams = served.runner.app[STREAMS]
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fill up quickly
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, (served.host, served.port))
    path = served.url.split(str(served.port), 1)[1] + EVENTS
    await loop.sock_sendall(
        sock,
        f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sandbox-viewer\r\n\r\n".encode(),
    )
    try:
        await _until(lambda: len(streams) == 1, 10, "the stream did not open")
        # Big changes, and this client reads none of them: the server's buffers fill.
        async with served_emulator(served.emulator) as cluster:
            for i in range(200):
                if len(streams) == 0:
                    break
                note = str(i % 10) * (200 * 1024)
                await cluster.merge_patch(
                    SUCCEEDED, {"metadata": {"annotations": {"example.com/padding": note}}}
                )
            await _until(lambda: len(streams) == 0, 10, "the slow reader was never dropped")
        assert "dropped a live-update stream" in served.logs.text
        # The connection is closed too, not only the stream: reading ends in EOF or a reset.
        with contextlib.suppress(ConnectionResetError):  # a reset is an end as well
            async with asyncio.timeout(10):
                while await loop.sock_recv(sock, 1 << 20):
                    pass
    finally:
        sock.close()


async def test_a_client_hang_up_is_a_normal_end(serve_factory: ServeFactory) -> None:
    served: Served = await serve_factory()
    streams = served.runner.app[STREAMS]
    async with (
        aiohttp.ClientSession() as session,
        _stream(session, served.url, "sandbox-viewer") as status,
    ):
        assert status == 200
    # The client hung up; the next change finds the connection gone.
    async with served_emulator(served.emulator) as cluster:
        for i in range(20):
            if len(streams) == 0:
                break
            await cluster.merge_patch(SUCCEEDED, {"metadata": {"labels": {"seen": str(i)}}})
            await asyncio.sleep(0.05)
    await _until(lambda: len(streams) == 0, 10, "the stream never ended")
    errors = [r for r in served.logs.records if r.levelno >= logging.ERROR]
    assert errors == [], served.logs.text[-3000:]
    async with (
        aiohttp.ClientSession() as session,
        session.get(served.url + "/metrics") as response,
    ):
        metrics = await response.text()
    assert 'status="500"' not in metrics
    access = [r.getMessage() for r in served.logs.records if r.name == "bff.access"]
    assert "GET /api/{version}/upgrades/events 200" in access, access


async def test_a_hung_up_stream_ends_at_its_next_wake(serve_factory: ServeFactory) -> None:
    """No change comes: the stream finds its client gone when it wakes for the access
    re-check (every 0.3 s here) and ends there. Before, it asked the API server about
    the caller who had left, and lingered until the keepalive write failed 15 s later."""
    served: Served = await serve_factory(stream_recheck_interval=0.3)
    streams = served.runner.app[STREAMS]
    async with (
        aiohttp.ClientSession() as session,
        _stream(session, served.url, "sandbox-viewer") as status,
    ):
        assert status == 200
        assert len(streams) == 1
    await _until(lambda: len(streams) == 0, 5, "the hung-up stream did not end at its next wake")
