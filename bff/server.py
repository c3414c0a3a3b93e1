"""Serving an app until told to stop, and stopping in the right order.

On SIGTERM or SIGINT: readiness turns false first, the listening sockets
close, in-flight requests get ``shutdown_timeout`` seconds to finish, and only
then do the cleanup contexts close the Kubernetes clients.

Connections are bounded. A new connection that sends nothing for
``idle_timeout``, a request whose headers take longer than ``header_timeout``
from their first byte, and a keep-alive connection idle for
``keepalive_timeout`` after a response are closed; beyond ``max_connections``
the longest-idle connections are closed to make room, so a flood of silent
connections cannot starve real clients of file descriptors.

Requests aiohttp's HTTP parser refuses (oversized or broken headers, bad
chunking, bytes after ``Connection: close``) are answered here, by the
project's request handler, with the project's JSON error shape and security
headers. aiohttp's own answer echoes the offending bytes (a token, a session
cookie) into the body and the ``aiohttp.server`` log; ours never does.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import signal
import ssl
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from bff.keys import READINESS
from bff.logs import MALFORMED, AccessLogger
from bff.middleware import SECURITY_HEADERS
from bff.settings import Settings

log = logging.getLogger(__name__)

#: File descriptors kept back from client connections when the limit is derived:
#: upstream connections (the pool), watches, log files and the listening sockets.
FD_RESERVE = 48
MIN_CONNECTIONS = 8

_MESSAGES = {
    400: ("MalformedRequest", "the request is not well-formed HTTP/1.1"),
    408: ("RequestTimeout", "the request was not received in time"),
    500: ("InternalError", "internal error; see the BFF's log"),
    504: ("Timeout", "the request took too long to answer"),
}


@dataclass(frozen=True)
class ConnectionLimits:
    keepalive_timeout: float
    header_timeout: float
    idle_timeout: float
    max_connections: int
    #: The listen backlog, which is also how many connections asyncio accepts in one go
    #: before any of them is seen: it must fit in the file descriptors left over.
    backlog: int


def connection_limits(settings: Settings) -> ConnectionLimits:
    """The limits from ``settings``; ``max_connections`` 0 becomes what the fd limit allows."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft > 65536:
        soft = 65536
    spare = max(2 * MIN_CONNECTIONS, soft - FD_RESERVE - settings.upstream_pool_size)
    backlog = max(MIN_CONNECTIONS, min(128, spare // 3))
    limit = settings.max_connections or max(MIN_CONNECTIONS, spare - backlog)
    return ConnectionLimits(
        keepalive_timeout=settings.keepalive_timeout,
        header_timeout=settings.header_timeout,
        idle_timeout=settings.idle_timeout,
        max_connections=limit,
        backlog=backlog,
    )


def error_answer(status: int) -> web.Response:
    """The project's JSON error for an answer given outside the middlewares."""
    code, message = _MESSAGES.get(status, _MESSAGES[500])
    response = web.json_response(
        {"type": "error", "status": status, "code": code, "message": message}, status=status
    )
    for key, value in SECURITY_HEADERS.items():
        response.headers[key] = value
    response.headers["Content-Security-Policy"] = "frame-ancestors 'none'"
    response.headers["X-Request-ID"] = uuid.uuid4().hex
    response.force_close()
    return response


class BoundedRequestHandler(RequestHandler):
    """aiohttp's connection handler with the BFF's timeouts and its own error answers."""

    def __init__(self, manager: BoundedServer, *, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(manager, keepalive_timeout=limits.keepalive_timeout, **kwargs)
        self.limits = limits
        self.opened = self._loop.time()
        #: When the client last sent a byte.
        self.last_active = self.opened
        #: When the first byte of a request head arrived, while the head is incomplete.
        self.head_started: float | None = None
        #: Why the BFF closed this connection, if it did.
        self.closed_because: str | None = None
        self._watchdog: asyncio.TimerHandle | None = None

    # --- timeouts ------------------------------------------------------------------

    @property
    def waiting(self) -> bool:
        """Between requests: nothing being handled and nothing parsed waiting its turn."""
        return not self._request_in_progress and not self._messages

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.last_active = self._loop.time()
        self._arm(self.opened + self.limits.idle_timeout)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        now = self._loop.time()
        self.last_active = now
        if data and self.head_started is None and self.waiting:
            self.head_started = now
            self._arm(now + self.limits.header_timeout)
        super().data_received(data)
        if not self.waiting:
            self.head_started = None

    def _arm(self, when: float) -> None:
        if self._watchdog is not None:
            if self._watchdog.when() <= when:
                return
            self._watchdog.cancel()
        self._watchdog = self._loop.call_at(when, self._check)

    def _check(self) -> None:
        self._watchdog = None
        if self.transport is None or self._force_close:
            return
        now = self._loop.time()
        limits = self.limits
        if self.waiting and self.head_started is not None:
            deadline = self.head_started + limits.header_timeout
            if now >= deadline:
                self.close_connection("the request headers took too long")
                return
            self._arm(deadline)
        elif self.waiting and self._request_count == 0:
            deadline = self.opened + limits.idle_timeout
            if now >= deadline:
                self.close_connection("the connection sent nothing")
                return
            self._arm(deadline)
        # Otherwise a request is being handled, or the connection is between requests,
        # where aiohttp's keep-alive timer closes it; nothing to watch until new bytes.

    def close_connection(self, reason: str) -> None:
        self.closed_because = reason
        log.debug("closing a client connection: %s", reason)
        self.force_close()

    # --- answers given outside the app ---------------------------------------------

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """Answer a request the app never saw (parser refusal) or one it failed outright.

        Neither the exception's text nor ``message`` is logged or sent: for a parser
        refusal both quote the request's bytes, which may hold a token or a cookie.
        """
        request[MALFORMED] = status == 400
        if status >= 500 and exc is not None:
            log.error("unhandled %s while serving a request", type(exc).__name__, exc_info=exc)
        else:
            log.debug("refused a request: %s", type(exc).__name__ if exc else status)
        if request.writer.output_size > 0:
            raise ConnectionError("the response was already started; closing the connection")
        return error_answer(status)


class BoundedServer(web.Server):
    """aiohttp's Server, making :class:`BoundedRequestHandler` connections, at most so many."""

    def __init__(
        self,
        handler: Any,
        *,
        limits: ConnectionLimits,
        handler_kwargs: dict[str, Any],
        **kwargs: Any,
    ) -> None:
        super().__init__(handler, **kwargs)
        self.limits = limits
        self._handler_kwargs = handler_kwargs
        self._warned_at = -1e9

    def __call__(self) -> BoundedRequestHandler:
        return BoundedRequestHandler(
            self, loop=asyncio.get_running_loop(), limits=self.limits, **self._handler_kwargs
        )

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        excess = len(self.connections) - self.limits.max_connections
        if excess <= 0:
            return
        idle = sorted(
            (
                c
                for c in self.connections
                if isinstance(c, BoundedRequestHandler) and c.waiting and c is not handler
            ),
            key=lambda c: c.last_active,
        )
        victims: list[RequestHandler] = list(idle[:excess])
        if len(victims) < excess:
            victims.append(handler)  # everything else is busy: refuse the newcomer
        loop = asyncio.get_running_loop()
        if loop.time() - self._warned_at > 60:
            self._warned_at = loop.time()
            log.warning(
                "connection limit of %d reached: closing the longest-idle connections "
                "(see --max-connections)",
                self.limits.max_connections,
            )
        for victim in victims:
            if isinstance(victim, BoundedRequestHandler):
                victim.close_connection("the connection limit was reached")
            else:
                victim.force_close()


class BoundedAppRunner(web.AppRunner):
    """An AppRunner whose server is a :class:`BoundedServer`."""

    def __init__(
        self,
        app: web.Application,
        *,
        limits: ConnectionLimits,
        handler_kwargs: dict[str, Any],
        shutdown_timeout: float,
    ) -> None:
        super().__init__(app, handle_signals=False, shutdown_timeout=shutdown_timeout)
        self.limits = limits
        self._handler_kwargs = handler_kwargs

    async def _make_server(self) -> web.Server:
        # The app's own startup and its request handler and factory, in our server.
        plain = await super()._make_server()
        return BoundedServer(
            plain.request_handler,
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            limits=self.limits,
            handler_kwargs=self._handler_kwargs,
        )


class StartupError(Exception):
    """The server cannot start; the message is one line for the operator."""


async def listen(site: web.BaseSite, where: str) -> None:
    """Start ``site``; a failure to bind is one line: ``cannot listen on <where>: <reason>``.

    ``where`` names the address and the flags that set it, so the operator knows what to change.
    """
    try:
        await site.start()
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise StartupError(f"cannot listen on {where}: {reason}") from None


def _pem_problem(cert: str, key: str) -> str | None:
    """Which TLS file is not what its flag says, in words, or None."""

    def text(path: str) -> str:
        try:
            with open(path, encoding="latin-1") as f:
                return f.read(1 << 20)
        except OSError as exc:
            return f"unreadable: {exc.strerror}"

    cert_text, key_text = text(cert), text(key)
    swapped = "PRIVATE KEY-----" in cert_text and "BEGIN CERTIFICATE" in key_text
    if swapped:
        return "the two files are swapped: --tls-cert holds a key and --tls-key a certificate"
    if cert_text.startswith("unreadable"):
        return f"--tls-cert {cert} is {cert_text}"
    if key_text.startswith("unreadable"):
        return f"--tls-key {key} is {key_text}"
    if "-----BEGIN CERTIFICATE-----" not in cert_text:
        return f"--tls-cert {cert} is not a PEM certificate"
    if "PRIVATE KEY-----" not in key_text:
        return f"--tls-key {key} is not a PEM private key"
    return None


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The server's TLS context; :class:`StartupError` when the files are unusable."""
    if not settings.tls_cert or not settings.tls_key:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(settings.tls_cert, settings.tls_key)
    except (ssl.SSLError, OSError) as exc:
        problem = _pem_problem(settings.tls_cert, settings.tls_key)
        if problem is None and getattr(exc, "reason", None) == "KEY_VALUES_MISMATCH":
            problem = f"--tls-key {settings.tls_key} does not match --tls-cert {settings.tls_cert}"
        if problem is None:
            problem = f"cannot load --tls-cert and --tls-key: {exc}"
        raise StartupError(problem) from None
    return context


async def start(
    app: web.Application, settings: Settings, *, host: str | None = None, port: int | None = None
) -> tuple[web.AppRunner, str]:
    """Start serving ``app``; return the runner and the URL it listens on.

    Raises :class:`StartupError` (after cleaning up) when the TLS files are unusable
    or the address cannot be bound.
    """
    ssl_context = tls_context(settings)
    limits = connection_limits(settings)
    runner = BoundedAppRunner(
        app,
        limits=limits,
        handler_kwargs={
            "access_log_class": AccessLogger,
            "access_log": logging.getLogger("bff.access"),
        },
        shutdown_timeout=settings.shutdown_timeout,
    )
    await runner.setup()
    bind_host = host or settings.host
    bind_port = settings.port if port is None else port
    site = web.TCPSite(
        runner, bind_host, bind_port, ssl_context=ssl_context, backlog=limits.backlog
    )
    try:
        await listen(site, f"{bind_host}:{bind_port} (--host, --port)")
    except StartupError:
        await runner.cleanup()
        raise
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
