"""What an untrusted write to a guarded resource may not change, and the JSONPatch undoing it.

Pure: no I/O and no clock. The resources of the guard table have no status
subresource, so any write to the object (PUT, merge patch, JSON patch, apply:
admission sees each as an UPDATE) carries ``.status`` with it. A client that sends
a stale or stripped copy replaces the controller's status (Harvester's dashboard
extension v1.0.2-v1.0.4 strips ``status``, ``metadata.finalizers`` and
``metadata.ownerReferences`` from every save). For a writer that is neither an
owner of the resource nor trusted, :func:`inspect` finds, for what the row keeps:

- every change to ``.status``, decided on JSON equality (``true`` is not ``1``, ``1``
  is not ``1.0``: a controller reading the value back sees a different type);
- every finalizer dropped, counted with its multiplicity (``[a, a]`` to ``[a]`` drops one);
- every owner reference dropped;

and always, whatever the row keeps:

- a ``deletionTimestamp`` or ``deletionGracePeriodSeconds`` set, changed or cleared
  (only a DELETE may start a deletion; kube-apiserver refuses the change as immutable,
  so putting the old value back keeps the rest of the write);
- on a CREATE, a ``.status`` the client wrote: the owning controllers create these
  objects without one and initialise it themselves (Harvester's settings registration
  and its key-pair API create objects with spec only; the upgrade controller
  initialises an Upgrade only while its ``Completed`` condition is empty, so a forged
  one skips the upgrade's steps).

:func:`inspect` also honours the operator's explicit intent: the annotation
:data:`INTENT_ANNOTATION` (``status``, ``finalizers``, ``ownerReferences``, comma
separated, optionally followed by ``; `` and a note), added or changed by the write
itself, lets that write change what it names. The annotation stays on the object; a
later write that sends it back unchanged states nothing. Labels, annotations and spec
pass untouched.
"""

from __future__ import annotations

import enum
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jsonpatch
import orjson

from bff.admission.resources import HARVESTER, Kept, Mode
from bff.admission.review import JSON, GuardReview, Writer

# Kept for the settings' --trusted-writer help and old configurations: Harvester's own
# controller (the owner of upgrades, settings, keypairs and schedulevmbackups).
DEFAULT_TRUSTED_WRITER = HARVESTER
GROUP_PREFIX = "group:"
USER_PREFIX = "user:"

#: The annotation by which a write states that it means to change what it names.
INTENT_ANNOTATION = "harvester-upgrade-bff.harvesterhci.io/intended-change"
_DELETION_FIELDS = ("deletionTimestamp", "deletionGracePeriodSeconds")


class Reason(enum.StrEnum):
    """Why a value was restored; a label of ``bff_status_restores_total``."""

    STATUS_REMOVED = "status_removed"
    STATUS_CHANGED = "status_changed"
    STATUS_ADDED = "status_added"
    FINALIZERS_DROPPED = "finalizers_dropped"
    OWNER_REFERENCES_DROPPED = "owner_references_dropped"
    DELETION_CHANGED = "deletion_changed"


@dataclass(frozen=True)
class TrustedWriters:
    """Users and groups whose writes pass untouched, on every guarded resource."""

    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> TrustedWriters:
        """``NAME`` or ``user:NAME`` is a user, ``group:NAME`` a group."""
        users: set[str] = set()
        groups: set[str] = set()
        for entry in entries:
            entry = entry.strip()
            if entry.startswith(GROUP_PREFIX):
                name, into = entry[len(GROUP_PREFIX) :], groups
            else:
                name, into = entry.removeprefix(USER_PREFIX), users
            if not name:
                raise ValueError(f"{entry!r} names no user or group")
            into.add(name)
        return cls(frozenset(users), frozenset(groups))

    def trusts(self, writer: Writer) -> bool:
        return writer.username in self.users or not self.groups.isdisjoint(writer.groups)

    def describe(self) -> str:
        names = sorted(self.users) + sorted(GROUP_PREFIX + g for g in self.groups)
        return ", ".join(names) or "nobody"


@dataclass(frozen=True)
class Restore:
    """One value put back: why, where (a JSON pointer into the object), and what the
    guard did, in an operator's words (for logs, warnings and denials)."""

    reason: Reason
    path: str
    #: "removed its status", as in "this write would have ..."
    would: str
    #: "kept the current status", as in "the cluster guard ..."
    done: str


@dataclass(frozen=True)
class Decision:
    """What the guard found in one review. No restores: the write passes (with the
    intent annotation taken out, when it carried one)."""

    trusted: bool
    restores: tuple[Restore, ...] = ()
    patch: tuple[JSON, ...] = ()
    #: What the write changed on the operator's stated intent (the annotation).
    intended: tuple[Kept, ...] = ()
    #: Why the intent annotation is unusable; the write is refused.
    bad_intent: str = ""
    #: Refuse rather than repair (the row's mode is ``deny``).
    deny: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.restores)

    def json_patch(self) -> jsonpatch.JsonPatch:
        """The restoring operations as an RFC 6902 patch, to apply or to serialise."""
        return jsonpatch.JsonPatch(list(self.patch))

    def summary(self) -> str:
        """What was put back, for the log: ``status (status_removed), finalizers (...)``."""
        return ", ".join(f"{r.path.rsplit('/', 1)[-1]} ({r.reason})" for r in self.restores)

    def warnings(self, review: GuardReview) -> list[str]:
        """One line per restore or intended change, as kubectl prints them after
        ``Warning:``."""
        lines = [
            f"harvester-upgrade-bff: {review.subject}: this write would have {r.would}; "
            f"the cluster guard {r.done}"
            for r in self.restores
        ]
        lines += [
            f"harvester-upgrade-bff: {review.subject}: {k} changed as the write's "
            f"{INTENT_ANNOTATION} annotation states; the cluster guard let it through"
            for k in self.intended
        ]
        return lines

    def audit(self) -> dict[str, str]:
        """The answer's auditAnnotations (recorded by the API server in its audit log)."""
        notes = {}
        if self.restores:
            notes["restored"] = ",".join(sorted({str(r.reason) for r in self.restores}))
        if self.intended:
            notes["intended-change"] = ",".join(str(k) for k in self.intended)
        return notes

    def denial(self, review: GuardReview) -> str:
        if self.bad_intent:
            return (
                f"harvester-upgrade-bff: refused a write to {review.subject}: its "
                f"{INTENT_ANNOTATION} annotation {self.bad_intent}"
            )
        found = "; ".join(f"it would have {r.would}" for r in self.restores)
        owners = ", ".join(review.row.owners)
        return (
            f"harvester-upgrade-bff: refused a write to {review.subject}: {found}. Only its "
            f"controller ({owners}) may change status, drop finalizers or owner references. "
            "Send the object as it is now, change labels only, or state the change with the "
            f"{INTENT_ANNOTATION} annotation."
        )


def canonical(value: Any) -> str:
    """``value`` as canonical JSON: equal strings exactly when the JSON values are equal
    (``True`` and ``1``, ``1`` and ``1.0`` differ here, unlike in Python)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _typed(value: Any, *, sort: bool) -> bytes | None:
    """``value`` serialised with each number's and boolean's JSON type, or None when orjson
    cannot (an integer beyond 64 bits, which orjson never parses but a caller may pass)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS if sort else 0)
    except TypeError:
        return None


def json_equal(a: Any, b: Any) -> bool:
    """Whether ``a`` and ``b`` are the same JSON value, as :func:`canonical` decides, cheaply.

    Python's ``==`` runs in C and is coarser than JSON's equality (``True == 1 == 1.0``,
    ``0.0 == -0.0``), so where it finds a difference there is one; NaN, the one value
    unequal to itself, is not JSON and never parsed (:func:`bff.admission.review.decode`).
    Where it finds none, the values are told apart by type through one serialisation each,
    in their own key order (the same text: the same value), and only when the key order
    differs, sorted. No canonical copy of a megabyte of status is built for a write that
    changed a label."""
    if a is b:
        return True
    if a != b:
        return False
    first, second = _typed(a, sort=False), _typed(b, sort=False)
    if first is None or second is None:
        return canonical(a) == canonical(b)
    if first == second:
        return True
    return _typed(a, sort=True) == _typed(b, sort=True)


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _list(obj: Mapping[str, Any], key: str) -> list[Any]:
    value = _meta(obj).get(key)
    return list(value) if isinstance(value, list) else []


def _annotation(obj: Mapping[str, Any] | None) -> str | None:
    annotations = _meta(obj or {}).get("annotations")
    value = annotations.get(INTENT_ANNOTATION) if isinstance(annotations, dict) else None
    return value if isinstance(value, str) else None


def _intent(review: GuardReview) -> tuple[frozenset[Kept], str]:
    """What the write's own intent annotation releases, and why it is unusable (or "").

    The annotation stays on the object: only a value this write adds or changes counts,
    so a later write that sends the stored object back states nothing, and a reinvoked
    review (another mutating webhook changed the object afterwards) reads the same
    intent again. ``NAMES[; NOTE]``: the note (a ticket, a date) makes the next
    statement of the same names a change."""
    assert review.new is not None
    value = _annotation(review.new)
    old_value = None if review.operation == "CREATE" else _annotation(review.old)
    if value is None or value == old_value:
        # Absent, or carried over from the stored object: a copy sent back, not a statement.
        return frozenset(), ""
    names = value.split(";", 1)[0]
    words = [w.strip() for w in names.split(",") if w.strip()]
    try:
        released = frozenset(Kept(w) for w in words)
    except ValueError:
        return (
            frozenset(),
            f"is {value!r}; it names what the write means to change, among "
            f"{', '.join(Kept)} (then, optionally, '; ' and a note)",
        )
    if not released:
        return frozenset(), f"is {value!r}, which names nothing"
    return released, ""


def _status_restores(review: GuardReview, meaning: str) -> tuple[list[Restore], list[JSON]]:
    assert review.new is not None
    new = review.new
    if review.operation == "CREATE" or review.old is None:
        if new.get("status") is None:
            return [], []
        return (
            [
                Restore(
                    Reason.STATUS_ADDED,
                    "/status",
                    "created it with a status of its own",
                    "took the status out: its controller writes the first one",
                )
            ],
            [{"op": "remove", "path": "/status"}],
        )
    old_status, new_status = review.old.get("status"), new.get("status")
    if json_equal(old_status, new_status):
        return [], []
    if old_status is None:
        # No status yet (the controller has not reached the object): take it out again.
        restore = Restore(Reason.STATUS_ADDED, "/status", "added a status", "took it out again")
        return [restore], [{"op": "remove", "path": "/status"}]
    removed = new_status in (None, {}) and old_status != {}
    restore = Restore(
        Reason.STATUS_REMOVED if removed else Reason.STATUS_CHANGED,
        "/status",
        f"{'removed' if removed else 'changed'} its status ({meaning})",
        "kept the current status",
    )
    return [restore], [{"op": "add", "path": "/status", "value": old_status}]


def _finalizer_restores(old: JSON, new: JSON) -> tuple[list[Restore], list[JSON]]:
    old_finalizers, new_finalizers = _list(old, "finalizers"), _list(new, "finalizers")
    dropped = Counter(map(canonical, old_finalizers)) - Counter(map(canonical, new_finalizers))
    if not dropped or not isinstance(new.get("metadata"), dict):
        return [], []
    back: list[Any] = []
    for item in old_finalizers:  # in the stored order, as many times as dropped
        key = canonical(item)
        if dropped[key]:
            dropped[key] -= 1
            back.append(item)
    names = ", ".join(str(f) for f in back)
    restore = Restore(
        Reason.FINALIZERS_DROPPED,
        "/metadata/finalizers",
        f"dropped finalizer {names}",
        "kept it, so the object is not deleted before its controller has cleaned up",
    )
    return [restore], [
        {"op": "add", "path": "/metadata/finalizers", "value": new_finalizers + back}
    ]


def _owner_reference_restores(old: JSON, new: JSON) -> tuple[list[Restore], list[JSON]]:
    old_refs, new_refs = _list(old, "ownerReferences"), _list(new, "ownerReferences")
    present = {canonical(r) for r in new_refs}
    dropped = [r for r in old_refs if canonical(r) not in present]
    if not dropped or not isinstance(new.get("metadata"), dict):
        return [], []
    # A reference the write changed (same uid) is replaced by the stored one.
    dropped_uids = {r.get("uid") for r in dropped if isinstance(r, dict)}
    kept_new = [r for r in new_refs if not (isinstance(r, dict) and r.get("uid") in dropped_uids)]
    owners = ", ".join(
        f"{r.get('kind')} {r.get('name')}" if isinstance(r, dict) else str(r) for r in dropped
    )
    restore = Restore(
        Reason.OWNER_REFERENCES_DROPPED,
        "/metadata/ownerReferences",
        f"dropped its owner reference to {owners}",
        "kept it, so the object is still cleaned up with its owner",
    )
    return [restore], [
        {"op": "add", "path": "/metadata/ownerReferences", "value": kept_new + dropped}
    ]


def _deletion_restores(old: JSON, new: JSON) -> tuple[list[Restore], list[JSON]]:
    restores: list[Restore] = []
    ops: list[JSON] = []
    old_meta, new_meta = _meta(old), _meta(new)
    if not isinstance(new.get("metadata"), dict):
        return [], []
    for field in _DELETION_FIELDS:
        before, after = old_meta.get(field), new_meta.get(field)
        if json_equal(before, after):
            continue
        path = f"/metadata/{field}"
        if before is None:
            ops.append({"op": "remove", "path": path})
        else:
            ops.append({"op": "add", "path": path, "value": before})
        restores.append(
            Restore(
                Reason.DELETION_CHANGED,
                path,
                f"{'set' if before is None else 'changed'} metadata.{field}",
                "kept the stored value: only a DELETE starts a deletion",
            )
        )
    return restores, ops


def inspect(review: GuardReview, trusted: TrustedWriters) -> Decision:
    """Everything an untrusted write changed that it may not, with the patch undoing it."""
    row = review.row
    if review.writer.username in row.owners or trusted.trusts(review.writer):
        return Decision(trusted=True)
    deny = row.mode is Mode.DENY
    if review.operation not in ("CREATE", "UPDATE") or review.new is None:
        return Decision(trusted=False, deny=deny)
    released, bad_intent = _intent(review)
    if bad_intent:
        return Decision(trusted=False, bad_intent=bad_intent, deny=True)
    restores: list[Restore] = []
    ops: list[JSON] = []
    intended: list[Kept] = []

    def add(found: tuple[list[Restore], list[JSON]], kept: Kept | None) -> None:
        if not found[0]:
            return
        if kept is not None and kept in released:
            intended.append(kept)
            return
        restores.extend(found[0])
        ops.extend(found[1])

    meaning = row.status_means
    if review.operation == "CREATE" or review.old is None:
        # CREATE: only a forged status; finalizers and owners are the creator's to set.
        add(_status_restores(review, meaning), Kept.STATUS)
    else:
        old, new = review.old, review.new
        if Kept.STATUS in row.kept:
            add(_status_restores(review, meaning), Kept.STATUS)
        if Kept.FINALIZERS in row.kept:
            add(_finalizer_restores(old, new), Kept.FINALIZERS)
        if Kept.OWNER_REFERENCES in row.kept:
            add(_owner_reference_restores(old, new), Kept.OWNER_REFERENCES)
        add(_deletion_restores(old, new), None)
    return Decision(
        trusted=False,
        restores=tuple(restores),
        patch=tuple(ops),
        intended=tuple(intended),
        deny=deny,
    )
