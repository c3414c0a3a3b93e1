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

Both listening ports are bounded this way, from one file-descriptor budget: the
open-file limit, less a reserve, is split between the API port and the webhook
port (a quarter, or ``--webhook-max-connections``), each with its own cap and
listen backlog, so a flood on one port cannot take the other's descriptors. A
TLS connection counts from its first byte: its handshake has
``--tls-handshake-timeout`` seconds, and while the cap is reached the oldest
unfinished handshakes are closed first. Running out of descriptors anyway is
logged once a minute, not once per accept.

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
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import hdrs, web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_urldispatcher import PrefixedSubAppResource
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bff import logs
from bff.admission.webhook import KEEPALIVE_TIMEOUT, REVIEW_TIMEOUT
from bff.cache import StreamBudget
from bff.keys import METRICS, READINESS, STREAMS, WEBHOOK_LISTENER
from bff.logs import MALFORMED, AccessLogger
from bff.middleware import ANSWER_HEADERS
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
    #: Seconds a TLS connection has to finish its handshake.
    handshake_timeout: float = 3.0
    #: Which flag sets ``max_connections``, for the log line when it is reached.
    flag: str = "--max-connections"
    #: Live-update streams allowed beside ``max_connections`` (their own budget).
    streams: int = 0


def _spare_descriptors(settings: Settings) -> int:
    """File descriptors left for client connections on both ports (and their backlogs)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft > 65536:
        soft = 65536
    return max(2 * MIN_CONNECTIONS, soft - FD_RESERVE - settings.upstream_pool_size)


def _webhook_share(settings: Settings) -> tuple[int, int]:
    """The webhook port's (cap, backlog), or (0, 0) when it does not listen."""
    if settings.webhook_port is None:
        return 0, 0
    if settings.webhook_max_connections:
        cap = settings.webhook_max_connections
        return cap, max(MIN_CONNECTIONS, min(128, cap // 2))
    share = max(2 * MIN_CONNECTIONS, _spare_descriptors(settings) // 4)
    backlog = max(MIN_CONNECTIONS, min(128, share // 3))
    return max(MIN_CONNECTIONS, share - backlog), backlog


def connection_limits(settings: Settings) -> ConnectionLimits:
    """The API port's limits; ``max_connections`` 0 becomes what the fd budget allows.

    The budget is what the open-file limit leaves, less the webhook port's share.
    """
    cap, backlog = _webhook_share(settings)
    spare = max(2 * MIN_CONNECTIONS, _spare_descriptors(settings) - cap - backlog)
    # Streams have their own budget, taken from the API port's share (at most half of it).
    streams = min(settings.max_streams, spare // 2) if settings.read_cache else 0
    spare -= streams
    backlog = max(MIN_CONNECTIONS, min(128, spare // 3))
    limit = settings.max_connections or max(MIN_CONNECTIONS, spare - backlog)
    return ConnectionLimits(
        streams=streams,
        keepalive_timeout=settings.keepalive_timeout,
        header_timeout=settings.header_timeout,
        idle_timeout=settings.idle_timeout,
        max_connections=limit,
        backlog=backlog,
        handshake_timeout=settings.tls_handshake_timeout,
    )


def webhook_limits(settings: Settings, *, keepalive_timeout: float) -> ConnectionLimits:
    """The webhook port's limits: its share of the fd budget, the same header and idle bounds."""
    cap, backlog = _webhook_share(settings)
    return ConnectionLimits(
        keepalive_timeout=keepalive_timeout,
        header_timeout=settings.header_timeout,
        idle_timeout=settings.idle_timeout,
        max_connections=max(cap, MIN_CONNECTIONS),
        backlog=max(backlog, MIN_CONNECTIONS),
        handshake_timeout=settings.tls_handshake_timeout,
        flag="--webhook-max-connections",
    )


def error_answer(status: int) -> web.Response:
    """The project's JSON error for an answer given outside the middlewares."""
    code, message = _MESSAGES.get(status, _MESSAGES[500])
    response = web.json_response(
        {"type": "error", "status": status, "code": code, "message": message}, status=status
    )
    response.headers.update(ANSWER_HEADERS)
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
        #: The request :meth:`handle_error` answered last, whose access line is written here.
        self._answered_here: web.BaseRequest | None = None

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
        # ``waiting``, spelled out: this runs for every read.
        if (
            self.head_started is None
            and data
            and not self._request_in_progress
            and not self._messages
        ):
            self.head_started = now
            self._arm(now + self.limits.header_timeout)
        super().data_received(data)
        if self._request_in_progress or self._messages:
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

    def log_access(
        self, request: web.BaseRequest, response: web.StreamResponse, time: float | None
    ) -> None:
        """The access line of an answer given here (:meth:`handle_error`) only.

        Every request the app served has its line from the app's middleware, which has
        the route, the status and the duration at hand already.
        """
        if request is self._answered_here:
            self._answered_here = None
            super().log_access(request, response, time)

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
        self._answered_here = request
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
        streams: StreamBudget | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(handler, **kwargs)
        self.limits = limits
        self.streams = streams
        self._handler_kwargs = handler_kwargs
        self._warned_at = -1e9

        #: TLS connections still in their handshake, oldest first.
        self.handshaking: dict[TlsHandshake, None] = {}

    def __call__(self) -> BoundedRequestHandler:
        return BoundedRequestHandler(
            self, loop=asyncio.get_running_loop(), limits=self.limits, **self._handler_kwargs
        )

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        self._make_room(handler)

    async def shutdown(self, timeout: float | None = None) -> None:  # noqa: ASYNC109 (aiohttp's signature)
        # Unfinished handshakes are no requests to drain: close them with the listener.
        for gate in list(self.handshaking):
            gate.abort()
        await super().shutdown(timeout)

    def handshake_started(self, gate: TlsHandshake) -> None:
        self.handshaking[gate] = None
        self._make_room(gate)

    def handshake_ended(self, gate: TlsHandshake) -> None:
        self.handshaking.pop(gate, None)

    def _make_room(self, newcomer: RequestHandler | TlsHandshake) -> None:
        """Close connections beyond the cap: unfinished handshakes, then the idle, then this one."""
        # Connections that carry a live-update stream count against the stream budget.
        streams = len(self.streams.connections) if self.streams is not None else 0
        excess = (
            len(self.connections) - streams + len(self.handshaking) - self.limits.max_connections
        )
        if excess <= 0:
            return
        # A real client finishes its handshake in milliseconds: the oldest have sent nothing.
        victims: list[RequestHandler | TlsHandshake] = []
        victims += [g for g in self.handshaking if g is not newcomer][:excess]
        idle = sorted(
            (
                c
                for c in self.connections
                if isinstance(c, BoundedRequestHandler) and c.waiting and c is not newcomer
            ),
            key=lambda c: c.last_active,
        )
        victims += idle[: excess - len(victims)]
        if len(victims) < excess:
            victims.append(newcomer)  # everything else is busy: refuse the newcomer
        loop = asyncio.get_running_loop()
        if loop.time() - self._warned_at > 60:
            self._warned_at = loop.time()
            log.warning(
                "connection limit of %d reached: closing the oldest handshakes and the "
                "longest-idle connections (see %s)",
                self.limits.max_connections,
                self.limits.flag,
            )
        for victim in victims:
            if isinstance(victim, TlsHandshake):
                victim.abort()
            elif isinstance(victim, BoundedRequestHandler):
                victim.close_connection("the connection limit was reached")
            else:
                victim.force_close()


class TlsHandshake(asyncio.Protocol):
    """A TLS connection until its handshake is done, then handed to the server's handler.

    asyncio's own TLS server makes the handler at accept but tells it nothing until the
    handshake ends, so a silent connection could be neither counted nor closed, and
    its default handshake timeout is 60 s. This protocol holds the raw transport from
    the first moment: the server counts it against the cap and can abort it.
    """

    def __init__(self, server: BoundedServer, context: ssl.SSLContext) -> None:
        self.server = server
        self.context = context
        self.transport: asyncio.Transport | None = None
        self.lost = False
        #: Decrypted bytes that arrive between the handshake's end and the handover.
        self._early: list[bytes] = []
        self._task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._task = asyncio.get_running_loop().create_task(self._handshake(transport))
        self.server.handshake_started(self)

    async def _handshake(self, raw: asyncio.Transport) -> None:
        loop = asyncio.get_running_loop()
        try:
            tls = await loop.start_tls(
                raw,
                self,
                self.context,
                server_side=True,
                ssl_handshake_timeout=self.server.limits.handshake_timeout,
            )
        except (OSError, ssl.SSLError, RuntimeError, TimeoutError):
            # A failed or timed-out handshake, or a client gone: nothing to answer.
            raw.abort()
            return
        finally:
            self.server.handshake_ended(self)
        if tls is None or self.lost:
            raw.abort()
            return
        handler = self.server()
        tls.set_protocol(handler)
        handler.connection_made(tls)
        for chunk in self._early:
            handler.data_received(chunk)
        self._early.clear()

    def data_received(self, data: bytes) -> None:
        self._early.append(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.server.handshake_ended(self)

    def abort(self) -> None:
        self.lost = True
        self.server.handshake_ended(self)
        if self.transport is not None:
            self.transport.abort()


class BoundedSite(web.TCPSite):
    """A TCP site whose TLS connections are counted and time-limited from their first byte."""

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site; TCPSite.start would listen too
        server = self._runner.server
        assert isinstance(server, BoundedServer)
        context = self._ssl_context
        factory: Callable[[], asyncio.BaseProtocol] = (
            server if context is None else lambda: TlsHandshake(server, context)
        )
        self._server = await asyncio.get_running_loop().create_server(
            factory,
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
        )


class AcceptErrors:
    """The loop's exception handler: running out of descriptors is one line a minute.

    asyncio reports each failed ``accept()`` with a traceback; under a flood that is
    megabytes of log a minute. Anything else goes to the default handler.
    """

    def __init__(self, interval: float = 60.0) -> None:
        self.interval = interval
        self._logged_at = -1e9
        self.suppressed = 0

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if not (isinstance(exc, OSError) and "accept" in str(context.get("message", ""))):
            loop.default_exception_handler(context)
            return
        now = loop.time()
        if now - self._logged_at < self.interval:
            self.suppressed += 1
            return
        self._logged_at = now
        log.error(
            "cannot accept connections: %s (%d more such errors in the last %gs; "
            "see --max-connections, --webhook-max-connections and the open-file limit)",
            os.strerror(exc.errno) if exc.errno else exc,
            self.suppressed,
            self.interval,
        )
        self.suppressed = 0


Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]

#: Request targets whose match :func:`direct_handler` keeps (each a path and its
#: parameters, with references to the route and the app): a few hundred kilobytes at most.
RESOLVED_MAX = 1024


def direct_handler(app: web.Application) -> Handler | None:
    """``app``'s request handler without aiohttp's per-request assembly of its middleware.

    For each request aiohttp's own handler resolves the route, looks up the middleware
    chain built for it and runs it with one more layer that records the app serving
    it: three coroutines and a cache lookup around the one middleware the BFF has.
    This one resolves the route and calls that middleware with the route's handler,
    the app recorded on the match as aiohttp's layer would leave it. The route found
    for a method and request target is kept (up to :data:`RESOLVED_MAX` of them): a
    repeated read of one object skips the router's walk and pattern match.

    Only for an app with a single middleware (``@web.middleware``) and no
    sub-application (with ``--base-path`` the API is one): None otherwise, and
    aiohttp's handler serves. The webhook's app qualifies as the API's does.
    A request that expects ``100-continue`` goes to aiohttp's handler, which answers
    that first.
    """
    if len(app.middlewares) != 1 or any(
        isinstance(resource, PrefixedSubAppResource) for resource in app.router.resources()
    ):
        return None
    (middleware,) = app.middlewares
    if getattr(middleware, "__middleware_version__", None) != 1:
        return None  # an old-style middleware factory: aiohttp's handler knows how to call it
    resolve = app.router.resolve
    plain = app._handle
    # What the router answered for a method and request target, as the request's match:
    # the route, its parameters and the app, frozen. The router is frozen before the
    # first request and matches on these two alone, so the answer cannot change, and
    # every request for the target shares it: nothing writes to a frozen match (aiohttp
    # re-points its app only for a sub-application's, never served here). A miss (404,
    # 405) is never kept; the table is emptied when full, so distinct targets cost
    # memory only up to its bound.
    resolved: dict[tuple[str, str], web.UrlMappingMatchInfo] = {}

    def handle(request: web.BaseRequest) -> Awaitable[web.StreamResponse]:
        # Not a coroutine itself: it hands aiohttp the middleware's (one frame fewer per
        # request), or a coroutine that resolves the route first.
        assert isinstance(request, web.Request)  # the app's request factory makes them
        if hdrs.EXPECT in request.headers:
            return plain(request)
        match_info = resolved.get((request.method, request.raw_path))
        if match_info is None:
            return resolve_then_handle(request)
        request._match_info = match_info
        return middleware(request, match_info.handler)

    async def resolve_then_handle(request: web.Request) -> web.StreamResponse:
        match_info = await resolve(request)
        match_info.add_app(app)
        match_info.freeze()
        if match_info.http_exception is None:
            if len(resolved) >= RESOLVED_MAX:
                resolved.clear()
            resolved[(request.method, request.raw_path)] = match_info
        request._match_info = match_info
        return await middleware(request, match_info.handler)

    return handle


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
            direct_handler(self.app) or plain.request_handler,
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            limits=self.limits,
            handler_kwargs=self._handler_kwargs,
            streams=self.app.get(STREAMS),
        )


@dataclass(frozen=True)
class WebhookListener:
    """Serves the webhook port with the API port's machinery, from its share of the budget.

    Called on the webhook's own loop (:class:`bff.admission.webhook.WebhookLoop`), so its
    accept errors are rate-limited there too.
    """

    limits: ConnectionLimits

    async def __call__(
        self, app: web.Application, host: str, port: int, context: ssl.SSLContext
    ) -> web.BaseRunner:
        asyncio.get_running_loop().set_exception_handler(AcceptErrors())
        runner = BoundedAppRunner(
            app,
            limits=self.limits,
            handler_kwargs={"access_log": None},
            shutdown_timeout=REVIEW_TIMEOUT,
        )
        await runner.setup()
        try:
            await listen(
                BoundedSite(runner, host, port, ssl_context=context, backlog=self.limits.backlog),
                f"{host}:{port} (--host, --webhook-port)",
            )
        except BaseException:
            await runner.cleanup()
            raise
        return runner


#: Connections the metrics port keeps open at once: a few scrapers, each on one keep-alive
#: connection. Taken from the descriptor reserve (FD_RESERVE), not the ports' budget.
METRICS_CONNECTIONS = 8


def metrics_limits(settings: Settings) -> ConnectionLimits:
    return ConnectionLimits(
        keepalive_timeout=settings.keepalive_timeout,
        header_timeout=settings.header_timeout,
        idle_timeout=settings.idle_timeout,
        max_connections=METRICS_CONNECTIONS,
        backlog=METRICS_CONNECTIONS,
        flag="--metrics-port",
    )


async def _metrics(request: web.Request) -> web.Response:
    registry = request.app[METRICS].registry
    body = generate_latest(registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


@dataclass(frozen=True)
class MetricsListener:
    """``--metrics-port``: /metrics alone, plain HTTP, bounded like the other ports.

    A cleanup context of the served app, so it listens while the app serves."""

    limits: ConnectionLimits
    host: str
    port: int

    async def __call__(self, app: web.Application) -> AsyncIterator[None]:
        metrics_app = web.Application()
        metrics_app[METRICS] = app[METRICS]
        metrics_app.router.add_get("/metrics", _metrics, allow_head=False)
        runner = BoundedAppRunner(
            metrics_app, limits=self.limits, handler_kwargs={"access_log": None},
            shutdown_timeout=1.0,
        )  # fmt: skip
        await runner.setup()
        try:
            site = BoundedSite(runner, self.host, self.port, backlog=self.limits.backlog)
            await listen(site, f"{self.host}:{self.port} (--host, --metrics-port)")
            bound = runner.addresses[0]
            shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
            log.info("metrics serving on http://%s:%s/metrics", shown, bound[1])
            yield
        finally:
            await runner.cleanup()


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
    streams = app.get(STREAMS)
    if streams is not None and limits.streams:
        streams.total = min(streams.total, limits.streams)
    if settings.webhook_port is not None:
        app[WEBHOOK_LISTENER] = WebhookListener(
            webhook_limits(settings, keepalive_timeout=KEEPALIVE_TIMEOUT)
        )
    if settings.metrics_port is not None:
        app.cleanup_ctx.append(
            MetricsListener(metrics_limits(settings), host or settings.host, settings.metrics_port)
        )
    runner = BoundedAppRunner(
        app,
        limits=limits,
        handler_kwargs={
            "access_log_class": AccessLogger,
            "access_log": logging.getLogger("bff.access"),
        },
        shutdown_timeout=settings.shutdown_timeout,
    )
    try:
        # The app's startup binds the webhook and metrics ports: a failure there leaves
        # the contexts already entered (the upstream clients) to be closed here.
        await runner.setup()
    except BaseException:
        await runner.cleanup()
        raise
    bind_host = host or settings.host
    bind_port = settings.port if port is None else port
    site = BoundedSite(
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
    logs.flush()  # the last requests' access lines


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
    asyncio.get_running_loop().set_exception_handler(AcceptErrors())
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
