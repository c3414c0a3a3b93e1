"""WATCH: the initial state or the history since a resourceVersion, then live events.

Filtering (namespace, label and field selectors) is the cacher's, through
:func:`bff.sandbox.events.visible_event`; bookmarks come every
``BOOKMARK_INTERVAL`` seconds when the client allows them. Asked ``as=Table`` (kubectl's
``get -w``), each event carries a one-row Table (:mod:`bff.sandbox.tables`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping

from aiohttp import web

from bff.label_selectors import Selector
from bff.sandbox import tables
from bff.sandbox.events import Event, bookmark, visible_event
from bff.sandbox.httpio import fields_match, flag, labels_of
from bff.sandbox.keys import BOOKMARK_INTERVAL, EMULATOR_STORE
from bff.sandbox.resource import JSON
from bff.sandbox.status import StatusError

__all__ = ["watch"]


async def watch(
    request: web.Request,
    namespace: str | None,
    fields: Mapping[str, str],
    selector: Selector,
) -> web.StreamResponse:
    store = request.app[EMULATOR_STORE]
    rv_text = request.query.get("resourceVersion", "")
    timeout_text = request.query.get("timeoutSeconds", "")
    bookmarks = flag(request.query.get("allowWatchBookmarks"))
    timeout = float(timeout_text) if timeout_text.isdigit() and int(timeout_text) > 0 else None

    def passes(obj: JSON) -> bool:
        return (
            (namespace is None or obj["metadata"]["namespace"] == namespace)
            and fields_match(obj, fields)
            and selector.matches(labels_of(obj))
        )

    as_table = tables.wants_table(request)
    include = tables.include_object(request) if as_table else ""
    first = True

    def shown(event: JSON) -> JSON:
        """The event as sent: with a Table for its object when one was asked for."""
        nonlocal first
        if not as_table or event["type"] in ("ERROR", "BOOKMARK"):
            return event
        obj = event["object"]
        rv = {"resourceVersion": obj["metadata"]["resourceVersion"]}
        converted = tables.table([obj], rv, include=include, with_columns=first)
        first = False
        return {"type": event["type"], "object": converted}

    initial: list[JSON] = []
    error: StatusError | None = None
    if rv_text in ("", "0"):
        for obj in store.list(namespace, selector):
            if fields_match(obj, fields):
                initial.append({"type": "ADDED", "object": obj})
    else:
        if not rv_text.isdigit():
            raise StatusError.bad_request(f"invalid resource version: {rv_text}")
        since = int(rv_text)
        if since < store.history_start:
            error = StatusError.expired(
                f"too old resource version: {since} ({store.history_start})"
            )
        elif since > store.resource_version:
            error = StatusError(
                504,
                "Timeout",
                f"Too large resource version: {since}, current: {store.resource_version}",
                {"causes": [{"reason": "ResourceVersionTooLarge",
                             "message": "Too large resource version"}],
                 "retryAfterSeconds": 1},
            )  # fmt: skip
        else:
            for past in store.events_since(since):
                converted = visible_event(past, passes)
                if converted is not None:
                    initial.append(converted)
    # Subscribing in the same step as reading history: no event can fall in between.
    sub = store.subscribe()
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    try:
        await response.prepare(request)
        if error is not None:
            await _send(response, {"type": "ERROR", "object": error.status})
            return response
        for item in initial:
            await _send(response, shown(item))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout if timeout else None
        interval = request.app[BOOKMARK_INTERVAL]
        next_bookmark = loop.time() + interval
        while True:
            now = loop.time()
            waits = [next_bookmark - now] if bookmarks else []
            if deadline is not None:
                waits.append(deadline - now)
            wait = max(0.0, min(waits)) if waits else None
            try:
                event: Event | None = await asyncio.wait_for(sub.queue.get(), wait)
            except TimeoutError:
                if deadline is not None and loop.time() >= deadline:
                    break
                if bookmarks and loop.time() >= next_bookmark:
                    await _send(response, bookmark(store.resource_version))
                    next_bookmark = loop.time() + interval
                continue
            if event is None:
                break
            converted = visible_event(event, passes)
            if converted is not None:
                await _send(response, shown(converted))
    except ConnectionResetError:
        pass
    finally:
        store.unsubscribe(sub)
    with contextlib.suppress(ConnectionResetError):
        await response.write_eof()
    return response


async def _send(response: web.StreamResponse, event: JSON) -> None:
    await response.write(json.dumps(event, separators=(",", ":")).encode() + b"\n")
