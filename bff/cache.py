"""A watch-backed cache of the Upgrades in one namespace, with their Steve renderings.

The cache lists the namespace once (with the BFF's own identity), then watches
from that list's ``resourceVersion`` with bookmarks. Events replace or remove
objects; a bookmark moves the version on; a 410 Gone (the version is too old
for the API server's history) means a fresh list. A dropped watch reconnects
from the last version seen, after an exponential backoff with full jitter.

Readiness: :meth:`UpgradeCache.problem` is a reason until the first list has
landed, and again whenever the cache has been unable to reach the API server
for longer than ``max_stale`` seconds (it cannot know what it missed).

Reads never parse or re-encode: each object is kept as the bytes it was
serialised to once (orjson), with the few fields ordering, freshness and
selectors read; a Steve rendering splices its keys onto those bytes, and an
unfiltered collection's bytes are joined once per change. Label selectors
are evaluated here with :mod:`bff.label_selectors` (the API server's semantics).

Who may read is not decided here: :mod:`bff.access` authorises every caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from bff import errors
from bff.label_selectors import Selector
from bff.steve import ClientVersion, resource
from bff.upgrade_resource import STEVE_TYPE

log = logging.getLogger(__name__)

JSONObject = dict[str, Any]


class Watcher(Protocol):
    """What the cache needs from upstream (``bff.kube.watcher.UpgradeWatcher`` provides it)."""

    async def list(self, namespace: str) -> JSONObject: ...

    def watch(
        self, namespace: str, resource_version: str, on_open: Callable[[], None]
    ) -> AsyncIterator[JSONObject]: ...


class Gone(Exception):
    """The watch's resourceVersion is too old (410): list again."""


def _version(obj: JSONObject) -> str:
    meta = obj.get("metadata")
    return str(meta.get("resourceVersion", "")) if isinstance(meta, dict) else ""


def newer(candidate: str, current: str) -> bool:
    """Whether ``candidate`` is a later resourceVersion than ``current``.

    Versions are opaque in general; etcd-backed servers use increasing integers,
    which is the only case compared. Anything else counts as newer.
    """
    if candidate.isdigit() and current.isdigit():
        return int(candidate) > int(current)
    return candidate != current


#: Top-level keys a Steve rendering adds; an object that has any is rendered the slow way.
_STEVE_KEYS = frozenset({"id", "type", "links", "actions"})


def _compact(data: bytes) -> bytes:
    """An exact-size copy: orjson's output keeps its working buffer's capacity allocated."""
    return bytes(memoryview(data))


class Entry:
    """What serving one object needs, and nothing else.

    * ``raw``: the object as the API server sent it, serialised once (about
      1.5 KB for an Upgrade, against about 6 KB as parsed Python objects); it
      is parsed again only for a write's guards (:attr:`obj`);
    * ``name``, ``version`` and ``labels``: what ordering, freshness and
      selector matching read;
    * a Steve rendering is the raw bytes with ``id``, ``type``, ``links``
      (and ``actions``) spliced onto the end, exactly the keys and order
      :func:`bff.steve.resource` produces, so nothing is kept per client version.
    """

    __slots__ = ("_plain", "_rendered", "labels", "name", "namespace", "raw", "version")

    def __init__(self, obj: JSONObject) -> None:
        meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        assert isinstance(meta, dict)
        labels = meta.get("labels")
        self.name = sys.intern(str(meta.get("name", "")))
        self.namespace = sys.intern(str(meta.get("namespace", "")))
        self.version = str(meta.get("resourceVersion", ""))
        self.labels = (
            {sys.intern(str(k)): sys.intern(str(v)) for k, v in labels.items()}
            if isinstance(labels, dict)
            else {}
        )
        self.raw = _compact(orjson.dumps(obj))
        #: Whether the splice is exact: a non-empty object with none of Steve's keys.
        self._plain = bool(obj) and not (_STEVE_KEYS & obj.keys())
        #: The last rendering and the version it was for: a GET of the same object by
        #: the same kind of client is answered with these bytes. One slot, not one per
        #: version, so an entry holds at most one rendering beside its raw bytes.
        self._rendered: tuple[ClientVersion, bytes] | None = None

    @property
    def obj(self) -> JSONObject:
        """A fresh parse of the object (for the write guards; nobody shares it)."""
        parsed: JSONObject = orjson.loads(self.raw)
        return parsed

    def render(self, version: ClientVersion, *, remember: bool = True) -> bytes:
        """The Steve rendering's bytes; ``remember``: keep them for the next GET.

        A collection's renderings are not kept: its joined bytes are cached already.
        """
        rendered = self._rendered
        if rendered is not None and (rendered[0] is version or rendered[0] == version):
            return rendered[1]
        data = self._render(version)
        if remember:
            self._rendered = (version, data)
        return data

    def _render(self, version: ClientVersion) -> bytes:
        if not self._plain:
            return orjson.dumps(resource(self.obj, version))
        ident = f"{self.namespace}/{self.name}"
        self_url = orjson.dumps(f"{version.collection_url}/{ident}")
        tail = [b',"id":', orjson.dumps(ident), b',"type":', _STEVE_TYPE,
                b',"links":{"self":', self_url, b',"update":', self_url, b"}"]  # fmt: skip
        if version.actions:
            dismiss = orjson.dumps(f"{version.collection_url}/{ident}?action=dismiss")
            cancel = orjson.dumps(f"{version.collection_url}/{ident}?action=cancel")
            tail += [b',"actions":{"dismiss":', dismiss, b',"cancel":', cancel, b"}"]
        return b"".join((memoryview(self.raw)[:-1], *tail, b"}"))


_STEVE_TYPE = orjson.dumps(STEVE_TYPE)


def _entry(obj: JSONObject) -> Entry:
    return Entry(obj)


@dataclass(frozen=True)
class Change:
    """One change, for live subscribers: ``ADDED``, ``MODIFIED`` or ``DELETED``."""

    type: str
    name: str
    entry: Entry | None
    #: What the streams send for this change, by client version and namespace: rendered
    #: by the first stream that sends it, reused by the others (one change, N streams).
    frames: dict[tuple[ClientVersion, str], bytes] = field(
        default_factory=dict, compare=False, repr=False
    )


class UpgradeCache:
    def __init__(
        self,
        watcher: Watcher,
        namespace: str,
        *,
        max_stale: float = 30.0,
        backoff: tuple[float, float] = (0.5, 30.0),
        quiet_start: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.namespace = namespace
        self._watcher = watcher
        self._max_stale = max_stale
        self._backoff = backoff
        self._quiet_start = quiet_start
        self._started = 0.0
        self._clock = clock
        self._sleep = sleep
        self._entries: dict[str, Entry] = {}
        self._order: list[str] | None = []
        self.resource_version = ""
        self.synced = False
        #: Since when the cache could not be sure it is current (None while it is).
        self._stale_since: float | None = None
        self._collections: dict[ClientVersion, bytes] = {}
        self._subscribers: set[asyncio.Queue[Change | None]] = set()
        self._synced_event = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: Counters for metrics and tests: lists, watches started, 410s, reconnects.
        self.stats = {"lists": 0, "watches": 0, "gone": 0, "reconnects": 0, "events": 0}

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._started = self._clock()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="upgrade-cache")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.close_subscribers()

    def close_subscribers(self) -> None:
        for queue in list(self._subscribers):
            self._offer(queue, None)
        self._subscribers.clear()

    async def wait_synced(self) -> None:
        await self._synced_event.wait()

    def problem(self) -> str | None:
        """Why the cache cannot serve (readiness), or None."""
        if not self.synced:
            return f"the Upgrade cache for {self.namespace} has not synced yet"
        if self._stale_since is not None and self._clock() - self._stale_since > self._max_stale:
            return (
                f"the Upgrade cache for {self.namespace} has not reached the API server "
                f"for more than {self._max_stale:g}s"
            )
        return None

    async def _run(self) -> None:
        self._failures = 0
        need_list = True
        while True:
            try:
                if need_list:
                    self._replace(await self._watcher.list(self.namespace))
                    need_list = False
                self.stats["watches"] += 1
                async for event in self._watcher.watch(
                    self.namespace, self.resource_version, self._connected
                ):
                    self._apply(event)
                # The server ended the watch (its timeout): carry on from the last version.
                continue
            except asyncio.CancelledError:
                raise
            except Gone:
                self.stats["gone"] += 1
                log.info("the watch of %s is too old; listing again", self.namespace)
                need_list = True
                continue
            except errors.BffError as exc:
                reason = exc.message
            except Exception as exc:  # a broken stream, a bad event: never kill the loop
                reason = f"{type(exc).__name__}: {exc}"
            if self._stale_since is None:
                self._stale_since = self._clock()
            self._failures += 1
            self.stats["reconnects"] += 1
            low, high = self._backoff
            delay = random.uniform(0, min(high, low * 2 ** min(self._failures - 1, 16)))  # noqa: S311
            # A failure in the first moment of a start is logged only if it lasts: a start that
            # fails for another reason (a port in use) stays one line.
            quiet = not self.synced and self._clock() - self._started < self._quiet_start
            log.log(logging.DEBUG if quiet else logging.WARNING,
                    "the Upgrade cache for %s lost the API server (%s); retrying in %.1fs",
                    self.namespace, reason, delay)  # fmt: skip
            await self._sleep(delay)

    def _connected(self) -> None:
        self._stale_since = None
        self._failures = 0

    # --- state ---------------------------------------------------------------------------

    def _replace(self, listed: JSONObject) -> None:
        items = listed.get("items")
        fresh: dict[str, Entry] = {}
        for obj in items if isinstance(items, list) else []:
            if isinstance(obj, dict):
                name = str((obj.get("metadata") or {}).get("name", ""))
                old = self._entries.get(name)
                if old is not None and old.version == _version(obj):
                    fresh[name] = old  # unchanged: keep it
                else:
                    fresh[name] = _entry(obj)
        changes = [Change("DELETED", n, None) for n in self._entries.keys() - fresh.keys()]
        changes += [
            Change("ADDED" if n not in self._entries else "MODIFIED", n, e)
            for n, e in fresh.items()
            if self._entries.get(n) is not e
        ]
        self._entries = fresh
        self.resource_version = _version(listed)
        self._changed()
        self.stats["lists"] += 1
        self._stale_since = None
        if not self.synced:
            self.synced = True
            self._synced_event.set()
        for change in changes:
            self._publish(change)

    def _apply(self, event: JSONObject) -> None:
        kind = event.get("type")
        obj = event.get("object")
        if not isinstance(obj, dict):
            return
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise Gone()
            raise errors.UpstreamUnavailable(
                f"the watch failed: {str(obj.get('message', ''))[:200]}", http_status=502
            )
        version = _version(obj)
        if kind == "BOOKMARK":
            if version:
                self.resource_version = version
            return
        name = str((obj.get("metadata") or {}).get("name", ""))
        self.stats["events"] += 1
        if kind == "DELETED":
            if self._entries.pop(name, None) is not None:
                self._changed()
                self._publish(Change("DELETED", name, None))
        elif kind in ("ADDED", "MODIFIED"):
            self._store(name, obj)
        if version:
            self.resource_version = version

    def _store(self, name: str, obj: JSONObject) -> bool:
        old = self._entries.get(name)
        if old is not None and not newer(_version(obj), old.version):
            return False
        entry = _entry(obj)
        self._entries[name] = entry
        if old is None:
            self._order = None
        self._changed(order=old is None)
        self._publish(Change("ADDED" if old is None else "MODIFIED", name, entry))
        return True

    def observe(self, obj: JSONObject) -> None:
        """A newer object the BFF itself just received (a patch answer): read your writes."""
        meta = obj.get("metadata")
        if isinstance(meta, dict) and meta.get("namespace") == self.namespace:
            self._store(str(meta.get("name", "")), obj)

    def _changed(self, order: bool = True) -> None:
        self._collections.clear()
        if order:
            self._order = None

    def _names(self) -> list[str]:
        if self._order is None:
            self._order = sorted(self._entries)
        return self._order

    # --- reads ---------------------------------------------------------------------------

    def get(self, name: str) -> JSONObject | None:
        """A fresh copy of the cached object, or None."""
        entry = self._entries.get(name)
        return entry.obj if entry is not None else None

    def entry(self, name: str) -> Entry | None:
        return self._entries.get(name)

    def __len__(self) -> int:
        return len(self._entries)

    def items(self, selector: Selector | None = None) -> Iterator[Entry]:
        for name in self._names():
            entry = self._entries[name]
            if selector is None or selector.empty or selector.matches(entry.labels):
                yield entry

    def collection(
        self, version: ClientVersion, self_url: str, selector: Selector | None = None
    ) -> bytes:
        """A Steve collection's bytes, as :func:`bff.steve.collection` would shape it."""
        unfiltered = selector is None or selector.empty
        if unfiltered:
            cached = self._collections.get(version)
            if cached is not None and self_url == version.collection_url:
                return cached
        data = [e.render(version, remember=False) for e in self.items(selector)]
        body = b"".join(
            (
                b'{"type":"collection","resourceType":',
                orjson.dumps(STEVE_TYPE),
                b',"links":{"self":',
                orjson.dumps(self_url),
                b'},"revision":',
                orjson.dumps(self.resource_version),
                b',"count":',
                str(len(data)).encode(),
                b',"data":[',
                b",".join(data),
                b"]}",
            )
        )
        if unfiltered and self_url == version.collection_url and len(self._collections) < 16:
            self._collections[version] = body
        return body

    # --- live updates --------------------------------------------------------------------

    def subscribe(self, size: int = 256) -> asyncio.Queue[Change | None]:
        """A queue of changes; ``None`` means it was dropped (too slow, or shutting down)."""
        queue: asyncio.Queue[Change | None] = asyncio.Queue(size)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Change | None]) -> None:
        self._subscribers.discard(queue)

    def _publish(self, change: Change) -> None:
        for queue in list(self._subscribers):
            if queue.full():
                self._subscribers.discard(queue)
                self._offer(queue, None)
            else:
                queue.put_nowait(change)

    def _offer(self, queue: asyncio.Queue[Change | None], item: Change | None) -> None:
        if queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                queue.get_nowait()
        queue.put_nowait(item)


class StreamBudget:
    """How many live-update streams may be open: in all, and per credential.

    Streams are long-lived and always busy, so the connection limit would never
    close one: without a budget of their own, one viewer's streams could hold every
    connection. The server counts :attr:`connections` apart from its cap.
    """

    def __init__(self, total: int, per_caller: int) -> None:
        self.total = total
        self.per_caller = per_caller
        #: The connections (the server's protocol objects) that carry a stream.
        self.connections: set[object] = set()
        self._owners: dict[bytes, int] = {}

    def __len__(self) -> int:
        return sum(self._owners.values())

    def open(self, owner: bytes, connection: object) -> None:
        """Count a stream for ``owner`` (a credential digest); 429 beyond either limit."""
        held = self._owners.get(owner, 0)
        if held >= self.per_caller:
            raise errors.TooManyRequests(
                f"this credential already holds {held} live-update streams "
                "(see --max-streams-per-caller)"
            )
        if len(self) >= self.total:
            raise errors.TooManyRequests(
                f"{self.total} live-update streams are open; try again later (see --max-streams)"
            )
        self._owners[owner] = held + 1
        self.connections.add(connection)

    def close(self, owner: bytes, connection: object) -> None:
        held = self._owners.get(owner, 0) - 1
        if held > 0:
            self._owners[owner] = held
        else:
            self._owners.pop(owner, None)
        self.connections.discard(connection)
