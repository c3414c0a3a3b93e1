"""Serving an app until told to stop, and stopping in the right order.

On SIGTERM or SIGINT: readiness turns false first, the listening sockets
close, in-flight requests get ``shutdown_timeout`` seconds to finish, and only
then do the cleanup contexts close the Kubernetes clients.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
from collections.abc import Awaitable, Callable

from aiohttp import web

from bff.keys import READINESS
from bff.logs import AccessLogger
from bff.settings import Settings

log = logging.getLogger(__name__)


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    if not settings.tls_cert or not settings.tls_key:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    return context


async def start(
    app: web.Application, settings: Settings, *, host: str | None = None, port: int | None = None
) -> tuple[web.AppRunner, str]:
    """Start serving ``app``; return the runner and the URL it listens on."""
    runner = web.AppRunner(
        app,
        access_log_class=AccessLogger,
        access_log=logging.getLogger("bff.access"),
        shutdown_timeout=settings.shutdown_timeout,
        handle_signals=False,
    )
    await runner.setup()
    ssl_context = tls_context(settings)
    site = web.TCPSite(
        runner,
        host or settings.host,
        settings.port if port is None else port,
        ssl_context=ssl_context,
    )
    await site.start()
    sockets = runner.addresses
    bound_host, bound_port = sockets[0][0], sockets[0][1]
    scheme = "https" if ssl_context else "http"
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    return runner, f"{scheme}://{shown}:{bound_port}{settings.base_path}"


async def stop(runner: web.AppRunner) -> None:
    """Readiness false, stop listening, let in-flight requests finish, then clean up."""
    readiness = runner.app.get(READINESS)
    if readiness is not None:
        readiness.shutting_down = True
    await runner.cleanup()


def stop_event_on_signals() -> asyncio.Event:
    """An event set by the first SIGTERM or SIGINT."""
    event = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, event.set)
    return event


async def serve_until_stopped(
    app: web.Application,
    settings: Settings,
    on_started: Callable[[str], Awaitable[None] | None] | None = None,
) -> None:
    stopping = stop_event_on_signals()
    runner, url = await start(app, settings)
    log.info("serving on %s", url)
    if on_started is not None:
        result = on_started(url)
        if result is not None:
            await result
    await stopping.wait()
    log.info("stopping: readiness off, waiting up to %ss for in-flight requests",
             settings.shutdown_timeout)  # fmt: skip
    await stop(runner)
    log.info("stopped")
