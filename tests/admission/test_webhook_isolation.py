"""The webhook lives on an event loop and a thread of its own (:class:`WebhookLoop`).

Covers, over real HTTPS on loopback: a review is decided on a running event loop that
is neither the caller's (the loop that serves the API and ``/healthz``) nor on the
caller's thread; while that loop is stalled outright by a review (its decision blocked),
the caller's loop still answers HTTP requests, and the stalled review is answered once
released; a second review queued behind the stalled one is answered too; the
webhook's thread is gone once :func:`serving` exits, also when the listener cannot
bind (the error is the caller's, one line, and no thread is left behind); and the
sandbox's webhook is bounded like ``serve``'s (a silent TLS connection is closed
after the handshake timeout rather than asyncio's 60 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import socket
import ssl
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bff.admission.guard import Reason, TrustedWriters
from bff.admission.webhook import MUTATE_PATH, THREAD_NAME, Guard, serving
from bff.server import ConnectionLimits, StartupError, WebhookListener
from tests.admission.reviews import decoded, fixture, succeeded, update_review
from tests.support.certs import ServerCertificate, make_server_certificate

#: Bound of every wait here: nothing in this module waits longer.
DEADLINE = 30.0


def _wiping_review() -> bytes:
    """The v1.0.4 dismiss PUT of a succeeded Upgrade: the guard restores its status."""
    review = update_review(succeeded(), decoded(fixture("clients/v1.0.4-dismiss-put-body.json")))
    return json.dumps(review).encode()


def _webhook_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD_NAME]


class Stall:
    """An ``on_restore`` that records where it runs and, once armed, blocks the thread
    it runs on (the webhook's loop: nothing else of the webhook runs meanwhile) until
    released or :data:`DEADLINE`."""

    def __init__(self) -> None:
        self.armed = False
        self.entered = threading.Event()
        self.release = threading.Event()
        self.seen: list[tuple[int, asyncio.AbstractEventLoop | None]] = []

    def __call__(self, _resource: str, _reason: Reason) -> None:
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:  # a worker thread, no loop: not where the webhook should decide
            loop = None
        self.seen.append((threading.get_ident(), loop))
        if self.armed:
            self.armed = False
            self.entered.set()
            self.release.wait(DEADLINE)


@contextlib.asynccontextmanager
async def _webhook(tmp_path: Path, stall: Stall) -> AsyncIterator[tuple[str, ServerCertificate]]:
    certificate = make_server_certificate(tmp_path / "pki")
    guard = Guard(TrustedWriters(), on_restore=stall)
    async with serving(
        guard,
        host="127.0.0.1",
        port=0,
        cert=str(certificate.cert_file),
        key=str(certificate.key_file),
    ) as url:
        yield url, certificate


async def _post(session: aiohttp.ClientSession, url: str, context: ssl.SSLContext) -> int:
    async with session.post(
        url + MUTATE_PATH,
        data=io.BytesIO(_wiping_review()),
        headers={"Content-Type": "application/json"},
        ssl=context,
    ) as response:
        answer = await response.json()
        assert answer["response"]["allowed"] is True
        assert "patch" in answer["response"]
        return response.status


async def _healthz_server() -> TestServer:
    """A stand-in for the API port: an HTTP server on the caller's (this test's) loop."""

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


async def test_a_review_is_decided_on_a_loop_and_thread_of_its_own(tmp_path: Path) -> None:
    stall = Stall()
    async with _webhook(tmp_path, stall) as (url, certificate), aiohttp.ClientSession() as s:
        context = ssl.create_default_context(cadata=certificate.ca_pem.decode())
        assert len(_webhook_threads()) == 1
        assert await _post(s, url, context) == 200
    (thread, loop), *_ = stall.seen
    assert loop is not None, "the review was decided off any event loop (a worker pool)"
    assert loop is not asyncio.get_running_loop(), "the review was decided on the caller's loop"
    assert thread != threading.get_ident()
    assert thread not in {t.ident for t in _webhook_threads()}, "the thread outlived serving()"
    assert _webhook_threads() == []


async def test_a_stalled_webhook_loop_does_not_stop_the_callers_http(tmp_path: Path) -> None:
    stall = Stall()
    stall.armed = True
    api = await _healthz_server()
    try:
        async with _webhook(tmp_path, stall) as (url, certificate):
            context = ssl.create_default_context(cadata=certificate.ca_pem.decode())
            timeout = aiohttp.ClientTimeout(total=DEADLINE)
            async with (
                aiohttp.ClientSession(timeout=timeout) as reviews,
                aiohttp.ClientSession(timeout=timeout) as prober,
            ):
                stalled = asyncio.create_task(_post(reviews, url, context))
                # Waited for off this loop: the stall is entered on the webhook's thread.
                entered = await asyncio.to_thread(stall.entered.wait, DEADLINE)
                assert entered, "the review never reached its decision"
                queued = asyncio.create_task(_post(reviews, url, context))
                # The webhook's loop is blocked outright; the caller's answers regardless.
                for _ in range(3):
                    async with prober.get(api.make_url("/healthz")) as response:
                        assert response.status == 200
                assert not stalled.done(), "the stalled review was answered before its release"
                stall.release.set()
                assert await stalled == 200
                assert await queued == 200
    finally:
        stall.release.set()
        await api.close()
    assert _webhook_threads() == []


async def test_a_bind_failure_is_the_callers_error_and_leaves_no_thread(tmp_path: Path) -> None:
    certificate = make_server_certificate(tmp_path / "pki")
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    limits = ConnectionLimits(
        keepalive_timeout=30, header_timeout=5, idle_timeout=5, max_connections=8, backlog=8
    )
    try:
        with pytest.raises(StartupError, match=f"cannot listen on 127.0.0.1:{port}"):
            async with serving(
                Guard(TrustedWriters()),
                host="127.0.0.1",
                port=port,
                cert=str(certificate.cert_file),
                key=str(certificate.key_file),
                listen=WebhookListener(limits),
            ):
                raise AssertionError("served on a port already taken")
    finally:
        holder.close()
    assert _webhook_threads() == []


async def test_the_sandbox_webhook_is_bounded_like_serves(tmp_path: Path) -> None:
    from dataclasses import replace

    from bff.metrics import Metrics
    from bff.sandbox.admission import WebhookAdmission, guarding
    from bff.sandbox.settings import SandboxSettings
    from bff.sandbox.tls import SandboxCA

    settings = replace(SandboxSettings(), webhook_port=0, tls_handshake_timeout=0.5)
    async with guarding(
        settings, WebhookAdmission(), SandboxCA.create(), tmp_path, Metrics()
    ) as url:
        assert url is not None
        port = int(url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            # A connection that never says hello: closed by the handshake timeout.
            async with asyncio.timeout(10):
                with contextlib.suppress(ConnectionResetError):
                    while await reader.read(65536):
                        pass
        finally:
            writer.close()
