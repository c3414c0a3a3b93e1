"""Connections given up on mid-answer: dropped at once, and waited for before a client closes.

aiohttp closes a connection whose answer was not read to the end politely. Over TLS,
that sends a close_notify and waits for the server's, up to asyncio's 30 s shutdown
timeout, and nothing waits for it: not the session's close, which knows only the
connections in its pool. A server that does not answer in time, or an event loop that
ends first, leaves the socket open. A stream the BFF stops reading (its watch, when the
read cache stops) is therefore dropped instead (no TLS goodbye is owed to an answer
nobody reads), and :meth:`Dropped.wait` lets the client's close wait until it is gone.
The sandbox's simulated Rancher and simulated controller drop their watches the same way;
:meth:`Dropped.relay` streams an answer on to a caller under that rule (the simulated
Rancher's forward).
"""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web

#: An aborted connection closes within a loop iteration or two; this only bounds a stall.
WAIT = 5.0


class Dropped:
    """The connections dropped mid-answer whose closing has not finished yet."""

    def __init__(self) -> None:
        self._closing: set[asyncio.Future[None]] = set()

    def drop(self, response: aiohttp.ClientResponse) -> None:
        """Abort the connection that carries ``response`` (a no-op once it is released)."""
        connection = response.connection
        protocol = connection.protocol if connection is not None else None
        if protocol is None:
            return
        closed = protocol.closed  # asked for before the abort, or there is nothing to wait on
        protocol.abort()
        if closed is not None and not closed.done():
            self._closing.add(closed)
            closed.add_done_callback(self._closing.discard)

    async def relay(
        self,
        request: web.Request,
        response: web.StreamResponse,
        upstream: aiohttp.ClientResponse,
    ) -> web.StreamResponse:
        """Stream ``upstream``'s body to the caller as ``response``; a caller that leaves
        (or a server that stops) mid-answer has the upstream connection dropped."""
        try:
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
        except BaseException:
            self.drop(upstream)
            raise
        return response

    async def wait(self) -> None:
        """Return once every dropped connection is closed, or after :data:`WAIT` seconds."""
        if self._closing:
            await asyncio.wait(set(self._closing), timeout=WAIT)
