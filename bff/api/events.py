"""Live page updates: ``GET /api/{version}/upgrades/events``, server-sent events from the cache.

Needs ``--read-cache on`` (404 otherwise). The caller is authenticated and
authorised like a read from the cache (a ``watch`` access review, an allow
reused for at most 10 s and asked again after that while the stream is open).
The stream:

* ``event: snapshot``: the whole Steve collection, exactly as ``GET
  /api/{version}/upgrades`` would answer;
* ``event: change``: ``{"type": "ADDED"|"MODIFIED"|"DELETED", "id": "ns/name",
  "object": <the Steve resource, or null when deleted>}``;
* a ``: keepalive`` comment every 15 s.

The stream ends when the caller loses access, when the client is too slow to
keep up, and on shutdown; ``EventSource`` reconnects by itself and gets a new
snapshot. No upstream request is made for a subscriber beyond its reviews.
"""

from __future__ import annotations

import asyncio
import contextlib

import orjson
from aiohttp import web

from bff import errors
from bff.api.handlers import _begin
from bff.cache import Change
from bff.keys import CACHE, SERVICE, SETTINGS
from bff.request_keys import Action

KEEPALIVE = 15.0
REAUTHORISE = 10.0


async def upgrade_events(request: web.Request) -> web.StreamResponse:
    version, caller = await _begin(request, Action.WATCH)
    cache = request.app.get(CACHE)
    if cache is None:
        raise errors.NotFound(
            "live updates need the read cache (--read-cache on)", code=errors.Code.LIVE_UPDATES_OFF
        )
    namespace = request.app[SETTINGS].namespace
    service = request.app[SERVICE]
    await service.authorise(caller, "watch", namespace)
    queue = cache.subscribe()
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    loop = asyncio.get_running_loop()
    try:
        await response.prepare(request)
        snapshot = cache.collection(version, version.collection_url)
        await response.write(b"event: snapshot\ndata: " + snapshot + b"\n\n")
        authorised_at = loop.time()
        while True:
            change: Change | bool | None
            try:
                change = await asyncio.wait_for(queue.get(), KEEPALIVE)
            except TimeoutError:
                await response.write(b": keepalive\n\n")
                change = False
            if change is None:
                break
            if loop.time() - authorised_at >= REAUTHORISE:
                try:
                    await service.authorise(caller, "watch", namespace)
                except errors.BffError as exc:
                    message = orjson.dumps({"status": exc.status, "message": exc.message})
                    await response.write(b"event: error\ndata: " + message + b"\n\n")
                    break
                authorised_at = loop.time()
            if not isinstance(change, Change):
                continue
            item = b"null" if change.entry is None else change.entry.render(version)
            ident = orjson.dumps(f"{namespace}/{change.name}")
            await response.write(
                b'event: change\ndata: {"type":"' + change.type.encode() + b'","id":' + ident
                + b',"object":' + item + b"}\n\n"
            )  # fmt: skip
    except (ConnectionResetError, asyncio.CancelledError):
        cache.unsubscribe(queue)
        raise
    finally:
        cache.unsubscribe(queue)
    with contextlib.suppress(ConnectionResetError):
        await response.write_eof()
    return response
