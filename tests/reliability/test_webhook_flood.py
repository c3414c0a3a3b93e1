"""The webhook port is bounded like the API port: a flood of silent TLS connections
under a low open-file limit starves neither the guard nor the API.

The probe behind this test: 160 TCP connections to the webhook port that never
send a ClientHello, against ``serve`` under ``ulimit -n 128``. Before the bound
they held the process's file descriptors until asyncio's 60 s handshake timeout:
ordinary requests and reviews timed out and the accept loop logged an ERROR with
a traceback per attempt (24.7 MB in 30 s). Now a connection cap, a handshake
timeout and a descriptor budget shared by both listeners keep room for real
clients, and the limit is logged once per interval.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bff.sandbox.emulator import create_emulator_app
from bff.sandbox.kubeconfig import write_kubeconfig
from tests.admission.reviews import decoded, succeeded, update_review
from tests.support.backends import NAMESPACE
from tests.support.certs import make_server_certificate

ROOT = Path(__file__).resolve().parents[2]
FILES = 128  # the open-file limit of the child
FLOOD = 160  # silent connections, more than the child has descriptors
_SERVING = re.compile(r"serving on (http://127\.0\.0\.1:\d+)")
_WEBHOOK = re.compile(r"admission webhook serving on (https://127\.0\.0\.1:\d+)")


def _limit_files() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FILES, FILES))


@pytest.fixture
async def emulator(aiohttp_server: Any) -> TestServer:
    server: TestServer = await aiohttp_server(create_emulator_app())
    return server


def _text(log: Path) -> str:
    return log.read_text(errors="replace")


async def _wait_for(pattern: re.Pattern[str], log: Path, deadline: float = 30) -> str:
    ends = time.monotonic() + deadline
    while time.monotonic() < ends:
        found = pattern.search(_text(log))
        if found:
            return found.group(1)
        await asyncio.sleep(0.05)
    raise AssertionError(f"not logged: {pattern.pattern}\n{_text(log)[-3000:]}")


@pytest.fixture
async def serve_limited(
    emulator: TestServer, tmp_path: Path
) -> AsyncIterator[tuple[str, str, Path]]:
    """``serve`` with the webhook on, under ``ulimit -n 128``: (API URL, webhook URL, log)."""
    kubeconfig = write_kubeconfig(
        tmp_path / "bff.kubeconfig", str(emulator.make_url("")).rstrip("/"), token="sandbox-bff"
    )
    cert = make_server_certificate(tmp_path / "tls")
    log = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BFF_")}
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bff", "serve", "--port", "0",
            "--kubeconfig", str(kubeconfig), "--namespace", NAMESPACE,
            "--webhook-port", "0", "--webhook-tls-cert", str(cert.cert_file),
            "--webhook-tls-key", str(cert.key_file), "--shutdown-timeout", "1",
            cwd=ROOT, env=env, stdout=out, stderr=out,
            preexec_fn=_limit_files,  # the point of the test
        )  # fmt: skip
    try:
        api = await _wait_for(_SERVING, log)
        webhook = await _wait_for(_WEBHOOK, log)
        yield api, webhook, log
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def _status(session: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> int:
    try:
        async with session.request(method, url, **kw) as response:
            await response.read()
            return response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        return -1 if not isinstance(exc, TimeoutError) else -2


def _flood(port: int) -> list[socket.socket]:
    """``FLOOD`` connections that send nothing; the ones the kernel cannot queue are skipped."""
    sockets = []
    for _ in range(FLOOD):
        try:
            sockets.append(socket.create_connection(("127.0.0.1", port), timeout=1))
        except OSError:
            continue  # the backlog is full: that connection never reached the server
    return sockets


async def test_silent_tls_connections_to_the_webhook_starve_neither_port(
    serve_limited: tuple[str, str, Path],
) -> None:
    api, webhook, log = serve_limited
    port = int(webhook.rsplit(":", 1)[1])
    review = update_review(succeeded(), decoded(succeeded()))
    flood = await asyncio.to_thread(_flood, port)
    try:
        assert len(flood) >= FILES // 2  # the flood really reached the listener
        timeout = aiohttp.ClientTimeout(total=5)
        statuses = []
        # A new session per request: each opens a new connection, as the API server does.
        for _ in range(5):
            async with aiohttp.ClientSession(timeout=timeout) as session:
                statuses.append(await _status(session, "GET", f"{api}/healthz"))
            async with aiohttp.ClientSession(timeout=timeout) as session:
                statuses.append(
                    await _status(
                        session,
                        "POST",
                        f"{webhook}/admission/upgrades/mutate",
                        data=json.dumps(review),
                        headers={"Content-Type": "application/json"},
                        ssl=False,
                    )
                )
        assert statuses == [200] * 10
    finally:
        for sock in flood:
            sock.close()
    text = _text(log)
    assert len(text) < 64 * 1024, text[-3000:]
    assert text.count("Traceback") <= 1, text[-3000:]
    assert text.count("Too many open files") <= 2, text[-3000:]
