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

Bounds (each a ``serve`` flag):

* access is asked again every ``--stream-recheck-interval`` seconds, whether or
  not anything changed, with an allow at most that old: a caller who lost
  access gets ``event: error`` and the end of the stream within twice it;
* a client that stops reading is dropped once a write has waited
  ``--stream-write-timeout`` seconds (the cache also drops a subscriber whose
  queue of changes is full);
* at most ``--max-streams-per-caller`` streams per credential and
  ``--max-streams`` in all (429 beyond), counted apart from the connection limit
  so page readers never starve API callers.

The stream also ends on shutdown. A client's hang-up is a normal end (INFO, the
access log keeps the 200). ``EventSource`` reconnects by itself and gets a new
snapshot. No upstream request is made for a subscriber beyond its reviews.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import orjson
from aiohttp import web

from bff import errors
from bff.access import credential_key
from bff.api.handlers import _begin
from bff.cache import Change, UpgradeCache
from bff.identities import Caller
from bff.keys import CACHE, SERVICE, SETTINGS, STREAMS
from bff.request_keys import Action
from bff.steve import ClientVersion

KEEPALIVE = 15.0

log = logging.getLogger(__name__)


class _Dropped(Exception):
    """The client did not take a write in time."""


def _frame(change: Change, version: ClientVersion, namespace: str) -> bytes:
    """The ``event: change`` frame, rendered once per change for every stream of a version."""
    key = (version, namespace)
    frame = change.frames.get(key)
    if frame is None:
        item = b"null" if change.entry is None else change.entry.render(version)
        ident = orjson.dumps(f"{namespace}/{change.name}")
        frame = (b'event: change\ndata: {"type":"' + change.type.encode() + b'","id":' + ident
                 + b',"object":' + item + b"}\n\n")  # fmt: skip
        change.frames[key] = frame
    return frame


async def _next(queue: asyncio.Queue[Change | None], wake: float) -> Change | bool | None:
    """The next change, or False at loop time ``wake`` without one.

    ``asyncio.timeout_at`` around the ``get``, not ``wait_for``: no task per wait, so a
    change wakes each stream once (1,000 streams, 1,000 wake-ups, not 3,000)."""
    if not queue.empty():
        return queue.get_nowait()
    try:
        async with asyncio.timeout_at(wake):
            return await queue.get()
    except TimeoutError:
        return False


#: Bytes of chunked-transfer framing a write may add around its data (size line, CRLFs).
_FRAMING = 64


async def _send(request: web.Request, response: web.StreamResponse, data: bytes) -> None:
    """Write ``data``; a client that takes none of it for the write timeout is dropped.

    A write waits only when the transport pauses (its buffer past the high-water mark).
    When it has room for ``data`` it cannot pause, so no deadline is armed: a change
    sent to 1,000 streams is 1,000 plain writes, not 1,000 timers as well."""
    transport = request.transport
    # The transport pauses once its buffer reaches the high-water mark (TLS: at it, not
    # past it), and a chunked answer adds its framing around ``data``: a margin for both.
    if (
        transport is not None
        and not request.protocol.writing_paused
        and transport.get_write_buffer_size() + len(data) + _FRAMING
        < transport.get_write_buffer_limits()[1]
    ):
        await response.write(data)
        return
    try:
        async with asyncio.timeout(request.app[SETTINGS].stream_write_timeout):
            await response.write(data)
    except TimeoutError:
        raise _Dropped() from None


async def upgrade_events(request: web.Request) -> web.StreamResponse:
    version, caller = await _begin(request, Action.WATCH)
    cache = request.app.get(CACHE)
    if cache is None:
        raise errors.NotFound(
            "live updates need the read cache (--read-cache on)", code=errors.Code.LIVE_UPDATES_OFF
        )
    settings = request.app[SETTINGS]
    namespace = settings.namespace
    service = request.app[SERVICE]
    await service.authorise(caller, "watch", namespace)
    streams = request.app[STREAMS]
    owner = credential_key(caller)
    streams.open(owner, request.protocol)
    try:
        return await _stream(request, version, caller, cache)
    finally:
        streams.close(owner, request.protocol)


async def _stream(
    request: web.Request, version: ClientVersion, caller: Caller, cache: UpgradeCache
) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    namespace = settings.namespace
    service = request.app[SERVICE]
    recheck = settings.stream_recheck_interval
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
        await _send(request, response, b"event: snapshot\ndata: " + snapshot + b"\n\n")
        authorised_at = sent_at = loop.time()
        while True:
            change: Change | bool | None
            # Wake for the next change, the keepalive, or the next access check.
            change = await _next(queue, min(sent_at + KEEPALIVE, authorised_at + recheck))
            if change is None:
                break
            if request.transport is None:
                # The client hung up while the stream waited: end at this wake, without
                # an access review for a caller who is gone or a keepalive 15 s later.
                log.info("a live-update stream ended: the client hung up")
                return response
            if loop.time() - authorised_at >= recheck:
                try:
                    await service.authorise(caller, "watch", namespace, max_age=recheck)
                except errors.BffError as exc:
                    message = orjson.dumps({"status": exc.status, "message": exc.message})
                    await _send(request, response, b"event: error\ndata: " + message + b"\n\n")
                    break
                authorised_at = loop.time()
            if change is False:
                if loop.time() - sent_at >= KEEPALIVE:
                    await _send(request, response, b": keepalive\n\n")
                    sent_at = loop.time()
                continue
            if not isinstance(change, Change):
                continue
            sent_at = loop.time()
            await _send(request, response, _frame(change, version, namespace))
    except ConnectionResetError:
        # The page was closed or reloaded: the usual end of a stream, not a failure.
        log.info("a live-update stream ended: the client hung up")
        return response
    except _Dropped:
        log.info("dropped a live-update stream: the client stopped reading")
        if request.transport is not None:
            request.transport.abort()
        return response
    finally:
        cache.unsubscribe(queue)
    with contextlib.suppress(ConnectionResetError, TimeoutError):
        async with asyncio.timeout(settings.stream_write_timeout):
            await response.write_eof()
    return response
