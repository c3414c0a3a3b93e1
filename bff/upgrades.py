"""The domain: what a dismiss, a cancel or a client PUT does to an Upgrade.

Each write goes the same way: read the live object, check the guards against
it, then send the one label merge patch conditional on the resourceVersion the
guards saw. When the API server answers 409 (someone else wrote in between),
re-read, re-check and try again, a bounded number of times.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from bff import errors
from bff.identity import Caller
from bff.patches import (
    Ignored,
    JSONObject,
    check_body,
    is_finished,
    is_read,
    reduce_put,
    resource_version,
    upgrade_state,
)


class Action(enum.StrEnum):
    DISMISS = "dismiss"
    CANCEL = "cancel"
    PUT = "put"


class Gateway(Protocol):
    """What the domain needs from upstream (``bff.kube.UpgradeGateway`` provides it)."""

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
    def __init__(self, gateway: Gateway, *, max_attempts: int = 5) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._gateway = gateway
        self._max_attempts = max_attempts

    async def get(self, caller: Caller, namespace: str, name: str) -> JSONObject:
        return await self._gateway.get(caller, namespace, name)

    async def list(self, caller: Caller, namespace: str, label_selector: str = "") -> JSONObject:
        return await self._gateway.list(caller, namespace, label_selector)

    async def dismiss(self, caller: Caller, namespace: str, name: str) -> Outcome:
        """Mark the message read; refused (409) while the upgrade is unfinished."""
        live = await self._gateway.get(caller, namespace, name)
        return await self._mark_read(caller, namespace, name, live, refuse_unfinished=True)

    async def cancel(self, caller: Caller, namespace: str, name: str) -> Outcome:
        """The dialog's Cancel: like dismiss on a finished upgrade, else no write. Never 409s."""
        live = await self._gateway.get(caller, namespace, name)
        return await self._mark_read(caller, namespace, name, live, refuse_unfinished=False)

    async def put(self, caller: Caller, namespace: str, name: str, body: object) -> Outcome:
        """A client's whole-object PUT, reduced to the one allowed change or to none."""
        checked = check_body(body, namespace=namespace, name=name)
        live = await self._gateway.get(caller, namespace, name)
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
            recheck=lambda fresh: reduce_put(checked, fresh).wants_read,
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
        recheck: Callable[[JSONObject], bool] | None = None,
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
                        code="UpgradeInProgress",
                    )
                return Outcome(obj=live, changed=False, conflicts=conflicts)
            try:
                obj = await self._gateway.mark_read(caller, namespace, name, resource_version(live))
                return Outcome(obj=obj, changed=True, conflicts=conflicts)
            except errors.UpstreamConflict:
                conflicts += 1
                if conflicts >= self._max_attempts:
                    raise errors.Conflict(
                        f"the upgrade kept changing; gave up after {conflicts} attempts",
                        code="ConflictRetriesExhausted",
                        upstream_status=409,
                    ) from None
            live = await self._gateway.get(caller, namespace, name)
            if recheck is not None and not recheck(live):
                return Outcome(obj=live, changed=False, conflicts=conflicts)
