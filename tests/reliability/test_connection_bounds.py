"""Connections are bounded: idle, slow-header and keep-alive connections are closed.

Before these limits aiohttp's defaults applied: a keep-alive connection lived
3,630 s and a connection that sent nothing, or trickled its headers, lived as
long, so 160 silent connections under ``ulimit -n 128`` left real clients
unanswered and the accept loop logging EMFILE.
"""

from __future__ import annotations

import asyncio
import os
import resource
import socket
import time
from pathlib import Path

import aiohttp

from tests.reliability.conftest import ServeFactory
from tests.support.processes import Child, banner_urls, command

ROOT = Path(__file__).resolve().parents[2]
SHORT = 0.5  # seconds: the timeout under test
LONG = 60.0  # seconds: the timeouts not under test, far beyond any wait here


async def closed_after(reader: asyncio.StreamReader, bound: float) -> float:
    """Seconds until the server closes the connection (fails if still open after ``bound``)."""
    started = time.monotonic()
    async with asyncio.timeout(bound):
        try:
            while await reader.read(65536):
                pass
        except ConnectionResetError:
            pass  # closed with our bytes unread: a reset, which is a close too
    return time.monotonic() - started


async def test_a_connection_that_sends_nothing_is_closed(serve_factory: ServeFactory) -> None:
    served = await serve_factory(idle_timeout=SHORT, header_timeout=LONG, keepalive_timeout=LONG)
    reader, writer = await asyncio.open_connection(served.host, served.port)
    try:
        waited = await closed_after(reader, 10)
    finally:
        writer.close()
    assert waited >= SHORT * 0.8


async def test_slow_headers_are_closed_even_while_bytes_keep_coming(
    serve_factory: ServeFactory,
) -> None:
    served = await serve_factory(idle_timeout=LONG, header_timeout=SHORT, keepalive_timeout=LONG)
    reader, writer = await asyncio.open_connection(served.host, served.port)
    started = time.monotonic()

    async def trickle() -> None:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        for _ in range(200):  # one byte each 50 ms: never idle, never finished
            writer.write(b"X")
            await writer.drain()
            await asyncio.sleep(0.05)

    trickling = asyncio.create_task(trickle())
    try:
        await closed_after(reader, 10)
    finally:
        trickling.cancel()
        writer.close()
    assert time.monotonic() - started >= SHORT * 0.8
    assert not trickling.done() or trickling.cancelled()


async def test_a_keep_alive_connection_is_closed_after_its_timeout(
    serve_factory: ServeFactory,
) -> None:
    served = await serve_factory(idle_timeout=LONG, header_timeout=LONG, keepalive_timeout=SHORT)
    reader, writer = await asyncio.open_connection(served.host, served.port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 200")
        waited = await closed_after(reader, 10)
    finally:
        writer.close()
    assert waited >= SHORT * 0.5


async def test_a_busy_keep_alive_connection_is_not_cut(serve_factory: ServeFactory) -> None:
    """Requests on one connection, each within the keep-alive timeout: all answered."""
    served = await serve_factory(idle_timeout=SHORT, header_timeout=SHORT, keepalive_timeout=SHORT)
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector) as session:
        for _ in range(6):
            async with session.get(f"http://{served.host}:{served.port}/healthz") as response:
                assert response.status == 200
            await asyncio.sleep(SHORT / 4)


def _limit_files() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))


async def _get(url: str, token: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    timeout = aiohttp.ClientTimeout(total=10)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(url, headers=headers) as response,
    ):
        await response.read()
        return response.status


async def test_a_flood_of_silent_connections_under_ulimit_128_starves_no_one(
    tmp_path: Path,
) -> None:
    """160 connections that send nothing, against a sandbox limited to 128 open files.

    The timeouts stay at their defaults (far longer than this test): it is the
    connection limit, derived from the file limit, that keeps room for real clients.
    """
    stderr = tmp_path / "stderr"
    env = {**os.environ, "BFF_CONTROLLER_INTERVAL": "0"}
    argv = command("sandbox", "--port", "0", "--kube-port", "0")
    with stderr.open("wb") as err:
        child = Child(argv, env=env, stderr=err, preexec_fn=_limit_files)  # the point of the test
    flood: list[socket.socket] = []
    try:
        # The banner comes once the sandbox listens, with the ports it was given.
        base, _ = banner_urls(child.banner())
        port = int(base.rsplit(":", 1)[1])
        for _ in range(160):
            flood.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        statuses = []
        for _ in range(20):
            statuses.append(await _get(f"{base}/api/v1.0.5/upgrades", "sandbox-admin"))
            statuses.append(await _get(f"{base}/healthz"))
        assert statuses == [200] * 40
    finally:
        for sock in flood:
            sock.close()
        child.stop()
    logged = stderr.read_text()
    assert "Too many open files" not in logged, logged[-3000:]
    assert "EMFILE" not in logged, logged[-3000:]
    assert "connection limit of" in logged
