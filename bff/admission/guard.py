"""What an untrusted write to an Upgrade may not change, and the JSONPatch that undoes it.

Pure: no I/O and no clock. Harvester's Upgrade CRD has no status subresource, so
any write to the object (PUT, merge patch, JSON patch, apply: admission sees each
as an UPDATE) carries ``.status`` with it. A client that sends a stale or stripped
copy replaces the controller's status, and Harvester's upgrade controller then
restarts a finished upgrade. For a writer that is not trusted, :func:`inspect`
finds every change to ``.status`` and every dropped finalizer, and
:func:`restoring_patch` builds the JSONPatch that puts ``oldObject``'s values back.
Labels, annotations and spec are not this module's business and pass untouched.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jsonpatch

from bff.admission.review import JSON, UpgradeReview, Writer

# Harvester's upgrade controller runs in the ``harvester`` Deployment under the
# ``harvester`` service account (deploy/charts/harvester/templates/deployment.yaml:
# ``serviceAccountName: harvester``; Harvester's own webhook defaults
# HARVESTER_CONTROLLER_USER_NAME to ``system:serviceaccount:<namespace>:harvester``).
DEFAULT_TRUSTED_WRITER = "system:serviceaccount:harvester-system:harvester"
GROUP_PREFIX = "group:"
USER_PREFIX = "user:"


class Reason(enum.StrEnum):
    """Why a value was restored; the label of ``bff_status_restores_total``."""

    STATUS_REMOVED = "status_removed"
    STATUS_CHANGED = "status_changed"
    FINALIZERS_DROPPED = "finalizers_dropped"


@dataclass(frozen=True)
class TrustedWriters:
    """Users and groups whose writes pass untouched."""

    users: frozenset[str] = frozenset({DEFAULT_TRUSTED_WRITER})
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
    """One value put back: why, where (a JSON pointer into the object), and a phrase
    saying what the write would have done (for logs, warnings and denials)."""

    reason: Reason
    path: str
    would: str
    done: str = "restored it"


@dataclass(frozen=True)
class Decision:
    """What the guard found in one review. No restores: the write passes untouched."""

    trusted: bool
    restores: tuple[Restore, ...] = ()
    patch: tuple[JSON, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.restores)

    def json_patch(self) -> jsonpatch.JsonPatch:
        """The restoring operations as an RFC 6902 patch, to apply or to serialise."""
        return jsonpatch.JsonPatch(list(self.patch))

    def summary(self) -> str:
        """What was put back, for the log: ``status (removed), finalizers (dropped)``."""
        return ", ".join(f"{r.path.rsplit('/', 1)[-1]} ({r.reason})" for r in self.restores)

    def warnings(self, target: str) -> list[str]:
        """One line per restore, as kubectl prints them after ``Warning:``."""
        return [
            f"harvester-upgrade-bff: Upgrade {target}: {r.would}; the cluster guard {r.done}"
            for r in self.restores
        ]

    def denial(self, target: str) -> str:
        found = "; ".join(r.would for r in self.restores)
        return (
            f"harvester-upgrade-bff: refused a write to Upgrade {target}: {found}. Only "
            "Harvester's upgrade controller may change status or drop finalizers. Send the "
            "object with its current status and finalizers, or change labels only "
            "(kubectl label, or a merge patch of metadata.labels)."
        )


def _status(obj: Mapping[str, Any]) -> Any:
    return obj.get("status")


def _finalizers(obj: Mapping[str, Any]) -> list[Any]:
    meta = obj.get("metadata")
    value = meta.get("finalizers") if isinstance(meta, dict) else None
    return list(value) if isinstance(value, list) else []


def _is_empty(value: Any) -> bool:
    return value is None or value == {}


def inspect(review: UpgradeReview, trusted: TrustedWriters) -> Decision:
    """Everything an untrusted UPDATE changed that it may not, with the patch undoing it."""
    if trusted.trusts(review.writer):
        return Decision(trusted=True)
    if review.operation != "UPDATE" or review.old is None or review.new is None:
        return Decision(trusted=False)
    old, new = review.old, review.new
    restores: list[Restore] = []
    ops: list[JSON] = []

    old_status, new_status = _status(old), _status(new)
    if old_status != new_status:
        if old_status is None:
            # The object had no status (a brand-new Upgrade the controller has not
            # reached yet): what the client wrote is taken out again.
            ops.append({"op": "remove", "path": "/status"})
            restores.append(
                Restore(
                    Reason.STATUS_CHANGED,
                    "/status",
                    "this write would add a status",
                    "took it out again",
                )
            )
        else:
            ops.append({"op": "add", "path": "/status", "value": old_status})
            removed = _is_empty(new_status) and not _is_empty(old_status)
            restores.append(
                Restore(
                    Reason.STATUS_REMOVED if removed else Reason.STATUS_CHANGED,
                    "/status",
                    (
                        "this write would remove its status, and Harvester's upgrade "
                        "controller would then restart the upgrade"
                        if removed
                        else "this write would change its status"
                    ),
                )
            )

    old_finalizers, new_finalizers = _finalizers(old), _finalizers(new)
    dropped = [f for f in old_finalizers if f not in new_finalizers]
    if dropped and isinstance(new.get("metadata"), dict):
        ops.append({"op": "add", "path": "/metadata/finalizers", "value": new_finalizers + dropped})
        restores.append(
            Restore(
                Reason.FINALIZERS_DROPPED,
                "/metadata/finalizers",
                "this write would drop finalizer " + ", ".join(str(f) for f in dropped),
            )
        )
    return Decision(trusted=False, restores=tuple(restores), patch=tuple(ops))
