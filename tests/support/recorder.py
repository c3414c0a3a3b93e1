"""A recording reverse proxy between the BFF and an API server, for tests.

It forwards every request unchanged (headers allowlisted the same way a
transparent proxy would: everything but hop-by-hop) and records each
non-GET request, so a test can assert the exact writes the BFF made, against
the emulator and against a real API server alike.

A stream its caller leaves (the BFF's watch, when the BFF stops) is dropped
upstream at once, and the proxy does not stop until every such connection is
closed: a polite TLS close would wait on the API server's answer, and a test's
event loop can end first, leaving the socket for a later test to collect.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from bff.abandoned import Dropped

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}


@dataclass
class Recorded:
    method: str
    path: str
    content_type: str
    body: object
    headers: dict[str, str]
    header_items: list[tuple[str, str]] = field(default_factory=list)
    status: int = 0


@dataclass
class Recorder:
    target: str
    ssl_context: ssl.SSLContext | None = None
    #: Awaited before each PATCH is forwarded: a test's concurrent writer goes here.
    before_patch: Callable[[], Awaitable[None]] | None = None
    writes: list[Recorded] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    _dropped: Dropped = field(default_factory=Dropped, init=False, repr=False)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1024**2 * 8)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        app.cleanup_ctx.append(self._session)
        return app

    async def _session(self, app: web.Application):  # type: ignore[no-untyped-def]
        connector = aiohttp.TCPConnector(ssl=self.ssl_context if self.ssl_context else False)
        self._client = aiohttp.ClientSession(connector=connector, auto_decompress=False)
        yield
        await self._dropped.wait()
        await self._client.close()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        headers = CIMultiDict(
            (k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP
        )
        try:
            body: object = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        entry = Recorded(
            method=request.method,
            path=request.path_qs,
            content_type=request.headers.get("Content-Type", ""),
            body=body,
            headers=dict(request.headers),
            header_items=list(request.headers.items()),
        )
        self.requests.append(entry)
        if request.method != "GET":
            self.writes.append(entry)
        if request.method == "PATCH" and self.before_patch is not None:
            await self.before_patch()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._send(request, raw, headers, entry)
        finally:
            self.in_flight -= 1

    async def _send(
        self, request: web.Request, raw: bytes, headers: CIMultiDict[str], entry: Recorded
    ) -> web.StreamResponse:
        async with self._client.request(
            request.method,
            self.target.rstrip("/") + request.path_qs,
            headers=headers,
            data=raw or None,
            timeout=aiohttp.ClientTimeout(total=None, sock_read=None),
        ) as upstream:
            entry.status = upstream.status
            response = web.StreamResponse(status=upstream.status)
            for key, value in upstream.headers.items():
                if key.lower() not in HOP_BY_HOP and key.lower() != "content-encoding":
                    response.headers.add(key, value)
            return await self._dropped.relay(request, response, upstream)
