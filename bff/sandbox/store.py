"""The emulator's storage and registry: what etcd plus the generic registry store do.

One :class:`Store` holds every Upgrade, a single increasing ``resourceVersion`` counter
(as etcd's revision), a bounded history of watch events, and the rules the real API
server applies on each write. The rules come from reading upstream source:

- ``registry/generic/registry/store.go`` (Create/Update/Delete, the optimistic lock,
  no-op updates, finalizers);
- ``registry/rest/create.go``, ``update.go`` (BeforeCreate/BeforeUpdate);
- ``apiextensions-apiserver/pkg/registry/customresource/strategy.go`` and ``validator.go``
  (generation, status kept without a status subresource, no unconditional update).

A write is two steps, so that admission can sit between them (see
:mod:`bff.sandbox.writes`): ``prepare_create`` / ``prepare_update`` run every check and
return a :class:`PendingWrite` without storing anything; ``commit`` stores it, unless the
object changed since it was prepared. ``create`` and ``update`` do both at once.

Errors are :class:`~bff.sandbox.status.StatusError`. Nothing here knows HTTP.
"""

from __future__ import annotations

import builtins
import copy
import secrets
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bff.label_selectors import Selector
from bff.sandbox.events import Event, WatchSubscription
from bff.sandbox.objectmeta import validate_metadata, validate_metadata_update
from bff.sandbox.resource import GROUP, JSON, KIND, PLURAL
from bff.sandbox.schema import SCHEMA, decode, schema_errors
from bff.sandbox.status import FieldError, StatusError, UInt64, invalid

__all__ = ["ObjectChanged", "PendingWrite", "Store", "now_rfc3339"]

# k8s.io/apimachinery/pkg/util/rand: consonants and digits that cannot spell words.
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_MAX_GENERATED_NAME_LENGTH = 63 - 5


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _key(obj: JSON) -> tuple[str, str]:
    meta = obj["metadata"]
    return meta["namespace"], meta["name"]


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def _without_rv(obj: JSON) -> JSON:
    out = copy.deepcopy(obj)
    out.get("metadata", {}).pop("resourceVersion", None)
    return out


def validate_object(obj: JSON) -> list[FieldError]:
    """The custom resource validator: kind, then metadata, then the schema."""
    if obj.get("kind") != KIND:
        return [invalid("kind", obj.get("kind"), f"must be {KIND}")]
    return validate_metadata(obj["metadata"]) + schema_errors(obj, SCHEMA, "")


class ObjectChanged(Exception):
    """``commit`` found the object changed since the write was prepared."""


@dataclass
class PendingWrite:
    """A checked write, not yet stored.

    ``type`` is the event it will record: ``ADDED``, ``MODIFIED``, ``DELETED`` (an update
    that removed the last finalizer of a deleting object) or ``""`` (a no-op update).
    ``obj`` is what the server answers; ``old`` the object it was prepared against.
    """

    type: str
    namespace: str
    name: str
    obj: JSON
    old: JSON | None
    warnings: list[str] = field(default_factory=list)

    @property
    def changes(self) -> bool:
        return self.type != ""


class Store:
    """Objects, the revision counter, watch history and the write rules.

    ``get``/``list`` hand out deep copies, so tests can read freely. Every stored write
    bumps ``resource_version`` by one and records one event.
    """

    def __init__(self, history_limit: int = 1000, start_revision: int = 1000) -> None:
        self._objects: dict[tuple[str, str], JSON] = {}
        self._rv = start_revision
        self._history: deque[Event] = deque()
        self._history_limit = history_limit
        self._history_start = start_revision
        self._watchers: set[WatchSubscription] = set()

    # -- reads -------------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        return self._rv

    @property
    def history_start(self) -> int:
        """The oldest resourceVersion a watch may start from."""
        return self._history_start

    def get(self, namespace: str, name: str) -> JSON | None:
        obj = self._objects.get((namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    def list(
        self, namespace: str | None = None, selector: Selector | None = None
    ) -> builtins.list[JSON]:
        """Every object (in ``namespace`` if given) matching ``selector``, sorted by key."""
        out = []
        for key in sorted(self._objects):
            obj = self._objects[key]
            if namespace is not None and key[0] != namespace:
                continue
            if selector is not None and not selector.matches(obj["metadata"].get("labels") or {}):
                continue
            out.append(copy.deepcopy(obj))
        return out

    def events_since(self, resource_version: int) -> builtins.list[Event]:
        return [e for e in self._history if e.resource_version > resource_version]

    # -- watch plumbing ----------------------------------------------------------------

    @property
    def open_watches(self) -> int:
        """How many watches are subscribed to changes now (tests wait on it)."""
        return len(self._watchers)

    def subscribe(self) -> WatchSubscription:
        sub = WatchSubscription()
        self._watchers.add(sub)
        return sub

    def unsubscribe(self, sub: WatchSubscription) -> None:
        self._watchers.discard(sub)

    def close_watchers(self) -> None:
        """End every open watch (server shutdown)."""
        for sub in list(self._watchers):
            sub.queue.put_nowait(None)
        self._watchers.clear()

    def compact(self) -> None:
        """Forget all history, as etcd compaction does: older watches get 410 Gone."""
        self._history.clear()
        self._history_start = self._rv

    def bump(self, namespace: str, name: str) -> JSON:
        """Rewrite an object unchanged under a new resourceVersion (tests: force a 409)."""
        obj = self._objects.get((namespace, name))
        if obj is None:
            raise StatusError.not_found(name)
        return self._write("MODIFIED", copy.deepcopy(obj), obj)

    def _write(self, kind: str, obj: JSON, prev: JSON | None) -> JSON:
        # Go's encoding/json writes map keys sorted; an unstructured object is all maps.
        obj = _sorted(obj)
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        key = _key(obj)
        if kind == "DELETED":
            self._objects.pop(key, None)
        else:
            self._objects[key] = obj
        event = Event(kind, self._rv, copy.deepcopy(obj), copy.deepcopy(prev) if prev else None)
        self._history.append(event)
        while len(self._history) > self._history_limit:
            dropped = self._history.popleft()
            self._history_start = dropped.resource_version
        for sub in list(self._watchers):
            sub.queue.put_nowait(event)
        return copy.deepcopy(obj)

    # -- writes: prepare, then commit ------------------------------------------------------

    def prepare_create(self, namespace: str, body: Any) -> PendingWrite:
        """POST's checks (BeforeCreate, validation, AlreadyExists); stores nothing."""
        obj, warnings = decode(body)
        meta = obj["metadata"]
        if meta.get("namespace") and meta["namespace"] != namespace:
            raise StatusError.bad_request(
                "the namespace of the provided object does not match the namespace sent on "
                "the request"
            )
        meta["namespace"] = namespace
        if meta.get("resourceVersion"):
            # etcd3 store: a plain error, so the client sees a 500.
            raise StatusError(
                500,
                "InternalError",
                "Internal error occurred: resourceVersion should not be set on objects to be "
                "created",
                {
                    "causes": [
                        {"message": "resourceVersion should not be set on objects to be created"}
                    ]
                },
            )
        # FillObjectMetaSystemFields, then BeforeCreate.
        meta["creationTimestamp"] = now_rfc3339()
        meta["uid"] = str(uuid.uuid4())
        generated = bool(meta.get("generateName")) and not meta.get("name")
        if generated:
            meta["name"] = self._generate_name(meta["generateName"])
        meta.pop("deletionTimestamp", None)
        meta.pop("deletionGracePeriodSeconds", None)
        meta["generation"] = 1
        meta.pop("managedFields", None)
        errs = validate_object(obj)
        if errs:
            raise StatusError.invalid(meta.get("name", ""), errs)
        if (namespace, meta["name"]) in self._objects:
            raise StatusError.already_exists(meta["name"])
        return PendingWrite("ADDED", namespace, meta["name"], _sorted(obj), None, warnings)

    def _generate_name(self, base: str) -> str:
        if len(base) > _MAX_GENERATED_NAME_LENGTH:
            base = base[:_MAX_GENERATED_NAME_LENGTH]
        for _ in range(8):
            name = base + "".join(secrets.choice(_NAME_ALPHABET) for _ in range(5))
            if not any(k[1] == name for k in self._objects):
                return name
        return name

    def live_for_update(
        self, namespace: str, name: str, *, uid_precondition: str | None = None
    ) -> JSON:
        """The object an update starts from (a copy), after the uid precondition."""
        existing = self._objects.get((namespace, name))
        existing_uid = existing["metadata"].get("uid", "") if existing else ""
        if uid_precondition and uid_precondition != existing_uid:
            raise StatusError.conflict(
                name,
                f"Precondition failed: UID in precondition: {uid_precondition}, "
                f"UID in object meta: {existing_uid}",
            )
        if existing is None:
            raise StatusError.not_found(name)
        return copy.deepcopy(existing)

    def prepare_update(self, namespace: str, existing: JSON, body: Any) -> PendingWrite:
        """The generic store's Update checks for ``body`` replacing ``existing``.

        ``existing`` is what :meth:`live_for_update` returned; stores nothing.
        """
        name = existing["metadata"]["name"]
        obj, warnings = decode(body)
        meta = obj["metadata"]
        new_rv_text = meta.get("resourceVersion", "")
        try:
            new_rv = int(new_rv_text) if new_rv_text else 0
            if new_rv < 0:
                raise ValueError
        except (TypeError, ValueError):
            # etcd3's storage parses the version with strconv.ParseUint and the error
            # surfaces unwrapped: kube-apiserver answers 500 with Go's own message.
            raise StatusError(
                500,
                "InternalError",
                f'strconv.ParseUint: parsing "{new_rv_text!s}": invalid syntax',
            ) from None
        if new_rv == 0:
            # customResourceStrategy.AllowUnconditionalUpdate() is false.
            raise StatusError.invalid(
                name,
                [invalid("metadata.resourceVersion", UInt64(0), "must be specified for an update")],
                kind=PLURAL,
            )
        if new_rv != int(existing["metadata"]["resourceVersion"]):
            raise StatusError.conflict(name)
        # BeforeUpdate
        if meta.get("namespace") and meta["namespace"] != namespace:
            raise StatusError.bad_request(
                "the namespace of the provided object does not match the namespace sent on "
                "the request"
            )
        old_meta = existing["metadata"]
        meta["generation"] = old_meta.get("generation", 0)
        meta.pop("managedFields", None)
        # customResourceStrategy.PrepareForUpdate: no status subresource, so status is
        # whatever the body says, and any change outside metadata bumps generation.
        if {k: v for k, v in obj.items() if k != "metadata"} != {
            k: v for k, v in existing.items() if k != "metadata"
        }:
            meta["generation"] = int(old_meta.get("generation", 0)) + 1
        if not meta.get("uid"):
            meta["uid"] = old_meta.get("uid")
        if old_meta.get("creationTimestamp"):
            meta["creationTimestamp"] = old_meta["creationTimestamp"]
        if old_meta.get("deletionTimestamp"):
            meta["deletionTimestamp"] = old_meta["deletionTimestamp"]
        if (
            old_meta.get("deletionGracePeriodSeconds") is not None
            and meta.get("deletionGracePeriodSeconds") is None
        ):
            meta["deletionGracePeriodSeconds"] = old_meta["deletionGracePeriodSeconds"]
        if not meta.get("namespace"):
            meta["namespace"] = namespace
        errs = validate_object(obj)
        if not errs:
            errs = validate_metadata_update(meta, old_meta)
        if errs:
            raise StatusError.invalid(name, errs)
        meta["resourceVersion"] = old_meta["resourceVersion"]
        # ShouldDeleteDuringUpdate: a deleting object whose last finalizer is gone.
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            return PendingWrite("DELETED", namespace, name, _sorted(obj), existing, warnings)
        if _without_rv(obj) == _without_rv(existing):
            return PendingWrite("", namespace, name, copy.deepcopy(existing), existing, warnings)
        return PendingWrite("MODIFIED", namespace, name, _sorted(obj), existing, warnings)

    def commit(self, pending: PendingWrite) -> JSON:
        """Store a prepared write and return the object as stored.

        Raises :class:`ObjectChanged` when the object is no longer the one the write was
        prepared against (for a create: when one of that name appeared meanwhile).
        """
        current = self._objects.get((pending.namespace, pending.name))
        if pending.old is None:
            if current is not None:
                raise ObjectChanged
        elif current is None or (
            current["metadata"]["resourceVersion"] != pending.old["metadata"]["resourceVersion"]
        ):
            raise ObjectChanged
        if not pending.changes:
            return copy.deepcopy(current) if current is not None else copy.deepcopy(pending.obj)
        return self._write(pending.type, copy.deepcopy(pending.obj), current)

    def create(self, namespace: str, body: Any) -> tuple[JSON, builtins.list[str]]:
        """POST in one step: returns the stored object and the warnings."""
        pending = self.prepare_create(namespace, body)
        return self.commit(pending), pending.warnings

    def update(
        self,
        namespace: str,
        name: str,
        updated: Callable[[JSON], Any],
        *,
        uid_precondition: str | None = None,
    ) -> tuple[JSON, builtins.list[str], bool]:
        """PUT or PATCH in one step: ``updated`` turns a copy of the live object into the
        new body. Returns the stored object, the warnings, and whether anything changed."""
        existing = self.live_for_update(namespace, name, uid_precondition=uid_precondition)
        pending = self.prepare_update(namespace, existing, updated(copy.deepcopy(existing)))
        return self.commit(pending), pending.warnings, pending.changes

    def delete(
        self,
        namespace: str,
        name: str,
        *,
        uid_precondition: str | None = None,
        rv_precondition: str | None = None,
    ) -> tuple[JSON | None, JSON]:
        """DELETE: returns (object still present, or None; the Status or object to answer)."""
        existing = self._objects.get((namespace, name))
        if existing is None:
            raise StatusError.not_found(name)
        meta = existing["metadata"]
        if uid_precondition is not None and uid_precondition != meta.get("uid"):
            raise StatusError.conflict(
                name,
                f"Precondition failed: UID in precondition: {uid_precondition}, "
                f"UID in object meta: {meta.get('uid')}",
            )
        if rv_precondition is not None and rv_precondition != meta.get("resourceVersion"):
            raise StatusError.conflict(
                name,
                f"Precondition failed: ResourceVersion in precondition: {rv_precondition}, "
                f"ResourceVersion in object meta: {meta.get('resourceVersion')}",
            )
        if meta.get("finalizers"):
            if meta.get("deletionTimestamp"):
                return copy.deepcopy(existing), copy.deepcopy(existing)
            obj = copy.deepcopy(existing)
            # markAsDeleting: generation bumps once, grace period is zero.
            if int(meta.get("generation", 0)) > 0:
                obj["metadata"]["generation"] = int(meta["generation"]) + 1
            obj["metadata"]["deletionTimestamp"] = now_rfc3339()
            obj["metadata"]["deletionGracePeriodSeconds"] = 0
            written = self._write("MODIFIED", obj, existing)
            return written, written
        self._write("DELETED", copy.deepcopy(existing), existing)
        status: JSON = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {"name": name, "group": GROUP, "kind": PLURAL, "uid": meta.get("uid")},
        }
        return None, status
