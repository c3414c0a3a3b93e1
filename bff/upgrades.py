"""The domain: what a dismiss, a cancel or a client PUT does to an Upgrade.

Each write goes the same way: read the live object, check the guards against
it, then send the one label merge patch conditional on the resourceVersion the
guards saw. When the API server answers 409 (someone else wrote in between),
re-read, re-check and try again, a bounded number of times.

With a synced :class:`bff.cache.UpgradeCache` for the namespace, reads and the
guards' object come from the cache (after :mod:`bff.access` has authorised
the caller), so a write is one upstream call and a no-op write none; the
patch's resourceVersion precondition catches a stale cache (409, then a fresh
GET upstream). Without one (another namespace, or the cache not ready) every
read goes upstream with the caller's credentials.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import orjson

from bff import errors
from bff.access import AccessChecker
from bff.cache import UpgradeCache
from bff.identities import Caller
from bff.label_selectors import Selector
from bff.patches import (
    Ignored,
    JSONObject,
    check_body,
    check_same_object,
    is_finished,
    is_read,
    reduce_put,
    resource_version,
    upgrade_state,
)
from bff.steve import ClientVersion, collection, resource


class Gateway(Protocol):
    """What the domain needs from upstream (``bff.kube.gateways.UpgradeGateway`` provides it)."""

    async def get(self, caller: Caller, namespace: str, name: str) -> dict[str, object]: ...

    async def list(
        self, caller: Caller, namespace: str, label_selector: str = ""
    ) -> dict[str, object]: ...

    async def mark_read(
        self, caller: Caller, namespace: str, name: str, resource_version: str
    ) -> dict[str, object]: ...


@dataclass(frozen=True)
class Outcome:
    """The result of a write request, whether or not anything was written."""

    obj: JSONObject
    changed: bool
    ignored: frozenset[Ignored] = frozenset()
    status_wipe: bool = False
    #: 409 answers from the API server that were retried.
    conflicts: int = 0


class UpgradeService:
    def __init__(
        self,
        gateway: Gateway,
        *,
        max_attempts: int = 5,
        cache: UpgradeCache | None = None,
        access: AccessChecker | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if (cache is None) != (access is None):
            raise ValueError("a cache needs an access checker, and only a cache does")
        self._gateway = gateway
        self._max_attempts = max_attempts
        self._cache = cache
        self._access = access

    def _serving(self, namespace: str) -> UpgradeCache | None:
        """The cache, when it serves reads of ``namespace`` now; None to go upstream."""
        cache = self._cache
        if cache is None or cache.namespace != namespace or cache.problem() is not None:
            return None
        return cache

    async def _cached(self, caller: Caller, verb: str, namespace: str) -> UpgradeCache | None:
        """The cache, once the caller is authorised to ``verb`` there; None to go upstream."""
        cache = self._serving(namespace)
        if cache is None:
            return None
        access = self._access
        assert access is not None
        if not access.allowed_now(caller, verb, namespace):
            await access.check(caller, verb, namespace)
        return cache

    async def authorise(
        self, caller: Caller, verb: str, namespace: str, *, max_age: float | None = None
    ) -> None:
        """Raise unless ``caller`` may ``verb`` Upgrades in ``namespace`` (live updates)."""
        if self._access is None:
            raise errors.NotFound(
                "live updates need the read cache", code=errors.Code.LIVE_UPDATES_OFF
            )
        await self._access.check(caller, verb, namespace, max_age=max_age)

    async def get(self, caller: Caller, namespace: str, name: str) -> JSONObject:
        cache = await self._cached(caller, "get", namespace)
        cached = cache.get(name) if cache is not None else None
        if cached is not None:
            return cached
        return await self._fetched(caller, namespace, name, cache)  # not cached, or just made

    async def _fetched(
        self, caller: Caller, namespace: str, name: str, cache: UpgradeCache | None
    ) -> JSONObject:
        """The object from upstream, as the caller (the cache, if any, learns it too)."""
        obj = await self._gateway.get(caller, namespace, name)
        if cache is not None:
            cache.observe(obj)
        return obj

    def rendered_now(
        self, caller: Caller, namespace: str, name: str, version: ClientVersion
    ) -> bytes | None:
        """:meth:`get_rendered` without a coroutine, when the cache has the object and
        an allow for ``caller`` to get it is kept; None otherwise: ask :meth:`get_rendered`
        (nothing is counted here then, so that asks and counts once)."""
        cache = self._serving(namespace)
        entry = cache.entry(name) if cache is not None else None
        if entry is None:
            return None
        access = self._access
        assert access is not None
        if not access.allowed_now(caller, "get", namespace):
            return None
        return entry.render(version)

    async def get_rendered(
        self, caller: Caller, namespace: str, name: str, version: ClientVersion
    ) -> bytes:
        """One Steve resource's JSON bytes (pre-serialised when it comes from the cache)."""
        cache = await self._cached(caller, "get", namespace)
        entry = cache.entry(name) if cache is not None else None
        if entry is not None:
            return entry.render(version)
        # Authorised above already: straight upstream (``get`` would ask the cache again).
        obj = await self._fetched(caller, namespace, name, cache)
        return orjson.dumps(resource(obj, version))

    async def list_rendered(
        self,
        caller: Caller,
        namespace: str,
        label_selector: str,
        selector: Selector,
        version: ClientVersion,
        self_url: str,
    ) -> bytes:
        """A Steve collection's JSON bytes; the selector is evaluated on the cache."""
        cache = await self._cached(caller, "list", namespace)
        if cache is not None:
            return cache.collection(version, self_url, selector)
        listed = await self._gateway.list(caller, namespace, label_selector)
        return orjson.dumps(collection(listed, version, self_url))

    async def dismiss(self, caller: Caller, namespace: str, name: str) -> Outcome:
        """Mark the message read; refused (409) while the upgrade is unfinished."""
        live = await self.get(caller, namespace, name)
        return await self._mark_read(caller, namespace, name, live, refuse_unfinished=True)

    async def cancel(self, caller: Caller, namespace: str, name: str) -> Outcome:
        """The dialog's Cancel: like dismiss on a finished upgrade, else no write. Never 409s."""
        live = await self.get(caller, namespace, name)
        return await self._mark_read(caller, namespace, name, live, refuse_unfinished=False)

    async def put(self, caller: Caller, namespace: str, name: str, body: object) -> Outcome:
        """A client's whole-object PUT, reduced to the one allowed change or to none."""
        checked = check_body(body, namespace=namespace, name=name)
        live = await self.get(caller, namespace, name)
        reduction = reduce_put(checked, live)
        if not reduction.dismiss:
            return Outcome(
                obj=live,
                changed=False,
                ignored=reduction.ignored,
                status_wipe=reduction.status_wipe,
            )
        outcome = await self._mark_read(
            caller,
            namespace,
            name,
            live,
            refuse_unfinished=True,
            recheck=lambda fresh: check_same_object(checked, fresh),
        )
        return Outcome(
            obj=outcome.obj,
            changed=outcome.changed,
            ignored=reduction.ignored,
            status_wipe=reduction.status_wipe,
            conflicts=outcome.conflicts,
        )

    async def _mark_read(
        self,
        caller: Caller,
        namespace: str,
        name: str,
        live: JSONObject,
        *,
        refuse_unfinished: bool,
        recheck: Callable[[JSONObject], None] | None = None,
    ) -> Outcome:
        conflicts = 0
        while True:
            if is_read(live):
                return Outcome(obj=live, changed=False, conflicts=conflicts)
            if not is_finished(live):
                if refuse_unfinished:
                    state = upgrade_state(live) or "unknown"
                    raise errors.Conflict(
                        f"the upgrade is still in progress (state {state}); "
                        "it can be dismissed once it has Succeeded or Failed",
                        code=errors.Code.UPGRADE_IN_PROGRESS,
                    )
                return Outcome(obj=live, changed=False, conflicts=conflicts)
            try:
                obj = await self._gateway.mark_read(caller, namespace, name, resource_version(live))
                if self._cache is not None:
                    self._cache.observe(obj)
                return Outcome(obj=obj, changed=True, conflicts=conflicts)
            except errors.UpstreamConflict:
                conflicts += 1
                if conflicts >= self._max_attempts:
                    raise errors.Conflict(
                        f"the upgrade kept changing; gave up after {conflicts} attempts",
                        code=errors.Code.CONFLICT_RETRIES_EXHAUSTED,
                        upstream_status=409,
                    ) from None
            live = await self._gateway.get(caller, namespace, name)  # fresh, never the cache
            if self._cache is not None:
                self._cache.observe(live)
            if recheck is not None:
                recheck(live)  # raises if the object is no longer the one the client saw
