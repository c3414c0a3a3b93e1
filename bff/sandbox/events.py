"""Change events, watch subscriptions, and what a filtered watch sees of each event.

The store records one :class:`Event` per write; every open watch holds a
:class:`WatchSubscription`. :func:`visible_event` is the cacher's conversion
(``cache_watcher.go``): an object that starts or stops matching a watch's filter is
seen as ADDED or DELETED by that watch.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from dataclasses import dataclass, field

from bff.sandbox.resource import API_VERSION, JSON, KIND

__all__ = ["Event", "WatchSubscription", "bookmark", "visible_event"]


@dataclass(frozen=True)
class Event:
    """One change: ``obj`` is the new state (the last state for DELETED)."""

    type: str
    resource_version: int
    obj: JSON
    prev: JSON | None = None


@dataclass(eq=False)
class WatchSubscription:
    """A queue of events for one watch; ``None`` in the queue means the server is stopping."""

    queue: asyncio.Queue[Event | None] = field(default_factory=asyncio.Queue)


def visible_event(event: Event, passes: Callable[[JSON], bool]) -> JSON | None:
    """The watch event a watch whose filter is ``passes`` receives, or None."""
    current = event.type != "DELETED" and passes(event.obj)
    previous = event.prev is not None and event.type != "ADDED" and passes(event.prev)
    if event.type == "DELETED":
        return {"type": "DELETED", "object": event.obj} if passes(event.obj) else None
    if current and previous:
        return {"type": "MODIFIED", "object": event.obj}
    if current:
        return {"type": "ADDED", "object": event.obj}
    if previous and event.prev is not None:
        gone = copy.deepcopy(event.prev)
        gone["metadata"]["resourceVersion"] = str(event.resource_version)
        return {"type": "DELETED", "object": gone}
    return None


def bookmark(resource_version: int) -> JSON:
    """A BOOKMARK event at ``resource_version``."""
    return {
        "type": "BOOKMARK",
        "object": {
            "kind": KIND,
            "apiVersion": API_VERSION,
            "metadata": {"resourceVersion": str(resource_version), "creationTimestamp": None},
        },
    }
