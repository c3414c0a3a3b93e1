"""The guard table: which resources the cluster guard protects, who owns each, what it keeps.

Pure data and parsing, no I/O. One :class:`GuardedResource` per row:

- its group, version and resource (``ippools.loadbalancer.harvesterhci.io/v1beta1``);
- its owners: the users (service accounts) of the controllers that write its status.
  Their writes never reach the webhook (a ``matchConditions`` entry per owner, evaluated
  by the API server) and pass untouched if they do;
- what an untrusted UPDATE may not drop or change (:class:`Kept`): ``status``,
  ``finalizers``, ``ownerReferences``;
- its mode: ``repair`` (the write passes with the values put back) or ``deny`` (refused).

:data:`DEFAULT_TABLE` holds the seven resources whose status Harvester's dashboard
extension v1.0.2-v1.0.4 wipes with its whole-object save (harvester/harvester#7971,
#7942). Each owner is read from the chart that runs the controller, never guessed:

- ``harvester-load-balancer`` 1.5.0 (harvester/charts, ``templates/rbac.yaml``):
  ServiceAccount ``{{ include "harvester-load-balancer.name" . }}`` (the chart name,
  ``harvester-load-balancer``; the chart has no ``nameOverride`` value) in the release
  namespace, bound to the ClusterRole that may ``update`` ``loadbalancers`` and
  ``ippools``; ``templates/deployment.yaml`` runs the controller under it. Its webhook's
  account (``harvester-load-balancer-webhook``) may only read ippools, so it is no owner.
- ``harvester-network-controller`` 1.5.0 (``templates/rbac.yaml``): ServiceAccount
  ``harvester-network-controller`` (``nameOverride`` is empty), with ``*`` on
  ``clusternetworks``; the manager Deployment and the agent DaemonSet both run under it.
  ``harvester-network-webhook`` only reads clusternetworks.
- Harvester itself (deploy/charts/harvester, ``serviceAccountName: harvester``): the
  controllers of Upgrade, ScheduleVMBackup, Setting and KeyPair.

Harvester installs both component charts as subcharts of its own release, in
``harvester-system``.

The table can be changed with :func:`apply_changes` from ``--guard-resource`` /
``BFF_GUARD_RESOURCES`` entries (:func:`parse_change` documents the syntax).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

HARVESTER = "system:serviceaccount:harvester-system:harvester"
LOAD_BALANCER = "system:serviceaccount:harvester-system:harvester-load-balancer"
NETWORK_CONTROLLER = "system:serviceaccount:harvester-system:harvester-network-controller"


class Kept(enum.StrEnum):
    """What an untrusted UPDATE may not drop or change."""

    STATUS = "status"
    FINALIZERS = "finalizers"
    OWNER_REFERENCES = "ownerReferences"


class Mode(enum.StrEnum):
    """``repair``: put the values back and let the write pass; ``deny``: refuse it."""

    REPAIR = "repair"
    DENY = "deny"


ALL_KEPT = frozenset(Kept)


@dataclass(frozen=True)
class GuardedResource:
    """One row of the guard table."""

    group: str
    version: str
    resource: str
    owners: tuple[str, ...]
    kept: frozenset[Kept] = ALL_KEPT
    mode: Mode = Mode.REPAIR
    #: What a lost status does, in an operator's words (warnings and docs/guard.md).
    status_means: str = "the controller's record of this object"

    @property
    def key(self) -> str:
        """``resource.group``: what identifies a row (one version per resource)."""
        return f"{self.resource}.{self.group}"

    def __str__(self) -> str:
        return f"{self.key}/{self.version}"

    def spec(self) -> str:
        """This row as a ``--guard-resource`` entry (parses back to an equal row)."""
        parts = [str(self)]
        parts += [f"owner={o}" for o in self.owners]
        parts.append("keep=" + "|".join(k.value for k in Kept if k in self.kept))
        if self.mode is not Mode.REPAIR:
            parts.append(f"mode={self.mode}")
        return ";".join(parts)


DEFAULT_TABLE: tuple[GuardedResource, ...] = (
    GuardedResource(
        "loadbalancer.harvesterhci.io", "v1beta1", "ippools", (LOAD_BALANCER,),
        status_means="the pool's IP allocations (allocated, available, history); without "
        "them addresses already in use can be handed out again",
    ),
    GuardedResource(
        "loadbalancer.harvesterhci.io", "v1beta1", "loadbalancers", (LOAD_BALANCER,),
        status_means="the load balancer's allocated address and conditions",
    ),
    GuardedResource(
        "harvesterhci.io", "v1beta1", "schedulevmbackups", (HARVESTER,),
        status_means="the schedule's suspend state and backup history; without it Resume "
        "does nothing and scheduled backups stop",
    ),
    GuardedResource(
        "harvesterhci.io", "v1beta1", "settings", (HARVESTER,),
        status_means="the setting's configured condition",
    ),
    GuardedResource(
        "harvesterhci.io", "v1beta1", "keypairs", (HARVESTER,),
        status_means="the key's fingerprint and validity",
    ),
    GuardedResource(
        "harvesterhci.io", "v1beta1", "upgrades", (HARVESTER,),
        status_means="the upgrade's progress; without it Harvester's upgrade controller "
        "restarts a finished upgrade",
    ),
    GuardedResource(
        "network.harvesterhci.io", "v1beta1", "clusternetworks", (NETWORK_CONTROLLER,),
        status_means="the cluster network's Ready condition; without it its VM networks "
        "are marked not ready",
    ),
)  # fmt: skip


_DEFAULTS = {r.key: r for r in DEFAULT_TABLE}


class GuardTable:
    """The rows, looked up by group and resource."""

    def __init__(self, rows: Iterable[GuardedResource] = DEFAULT_TABLE) -> None:
        self.rows: tuple[GuardedResource, ...] = tuple(rows)
        self._by_key = {(r.group, r.resource): r for r in self.rows}
        if len(self._by_key) != len(self.rows):
            raise ValueError("the guard table names a resource twice")

    def find(self, group: str, resource: str) -> GuardedResource | None:
        return self._by_key.get((group, resource))

    def owners(self) -> dict[str, list[GuardedResource]]:
        """Each owner and the rows it owns, in table order."""
        owned: dict[str, list[GuardedResource]] = {}
        for row in self.rows:
            for owner in row.owners:
                owned.setdefault(owner, []).append(row)
        return owned

    def describe(self) -> str:
        return ", ".join(str(r) for r in self.rows) or "nothing"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GuardTable) and self.rows == other.rows

    def __hash__(self) -> int:
        return hash(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


# --- --guard-resource entries ------------------------------------------------------------

# A DNS-1123 subdomain (group), a lowercase plural (resource), a version like v1beta1.
_RESOURCE = re.compile(r"^(?P<resource>[a-z0-9]([-a-z0-9]*[a-z0-9])?)\.(?P<group>[a-z0-9]"
                       r"([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+)"
                       r"(/(?P<version>v[0-9]+((alpha|beta)[0-9]+)?))?$")  # fmt: skip
# What a Kubernetes user name in an owner may hold: no quotes, no control characters,
# nothing that the CEL string literal of a matchCondition would need escaped.
_USER = re.compile(r"^[A-Za-z0-9@._:\-]+$")
REMOVE_ALL = "-*"


@dataclass(frozen=True)
class Change:
    """One ``--guard-resource`` entry: add (or replace) a row, or remove one / all."""

    remove: bool
    key: str = ""  # resource.group; "" with remove: every row
    row: GuardedResource | None = None


def _row(text: str) -> GuardedResource:
    head, *options = text.split(";")
    match = _RESOURCE.match(head.strip())
    if not match:
        raise ValueError(
            f"{head!r} is not RESOURCE.GROUP/VERSION (for example ippools."
            "loadbalancer.harvesterhci.io/v1beta1)"
        )
    owners: list[str] = []
    kept: frozenset[Kept] = ALL_KEPT
    mode = Mode.REPAIR
    for option in options:
        name, sep, value = option.strip().partition("=")
        if not sep or not value:
            raise ValueError(f"{option!r} is not NAME=VALUE (owner=, keep= or mode=)")
        if name == "owner":
            if not _USER.match(value):
                raise ValueError(f"owner {value!r} is not a user name")
            owners.append(value)
        elif name == "keep":
            try:
                kept = frozenset(Kept(k) for k in value.split("|"))
            except ValueError:
                raise ValueError(
                    f"keep={value} names something else than {'|'.join(Kept)}"
                ) from None
        elif name == "mode":
            try:
                mode = Mode(value)
            except ValueError:
                raise ValueError(f"mode={value} is neither repair nor deny") from None
        else:
            raise ValueError(f"unknown option {name!r} (owner=, keep= or mode=)")
    if not owners:
        raise ValueError(
            f"{head!r} names no owner=USER: name the service account of the controller "
            "that writes its status"
        )
    version = match["version"]
    if not version:
        raise ValueError(f"{head!r} names no version (RESOURCE.GROUP/VERSION)")
    return GuardedResource(
        match["group"], version, match["resource"], tuple(dict.fromkeys(owners)), kept, mode
    )


def parse_change(entry: str) -> Change:
    """One entry of ``--guard-resource`` / ``BFF_GUARD_RESOURCES``.

    - ``-RESOURCE.GROUP``: take that row out of the table;
    - ``-*``: take every row out (start from an empty table);
    - ``RESOURCE.GROUP/VERSION;owner=USER[;owner=USER...][;keep=K|K...][;mode=repair|deny]``:
      add the row, or replace the row of the same resource. ``keep`` lists what an
      untrusted UPDATE may not drop or change, among ``status``, ``finalizers`` and
      ``ownerReferences`` (all three when left out); ``mode`` is ``repair`` unless given.
    """
    entry = entry.strip()
    if entry == REMOVE_ALL:
        return Change(remove=True)
    if entry.startswith("-"):
        key = entry[1:].strip()
        match = _RESOURCE.match(key)
        if not match or match["version"]:
            raise ValueError(f"{entry!r}: removing takes -RESOURCE.GROUP (no version)")
        return Change(remove=True, key=key)
    row = _row(entry.removeprefix("+"))
    return Change(remove=False, key=row.key, row=row)


def parse_changes(text: str) -> tuple[Change, ...]:
    """A comma-separated list of entries (the variable; a repeated flag is joined so)."""
    entries = [e for e in (part.strip() for part in text.split(",")) if e]
    if not entries:
        raise ValueError("no entry")
    return tuple(parse_change(e) for e in entries)


def apply_changes(
    changes: Sequence[Change], base: Iterable[GuardedResource] = DEFAULT_TABLE
) -> GuardTable:
    """The table ``base`` with ``changes`` applied in order."""
    rows: dict[str, GuardedResource] = {r.key: r for r in base}
    for change in changes:
        if change.remove and not change.key:
            rows.clear()
        elif change.remove:
            if change.key not in rows:
                raise ValueError(f"-{change.key}: the table has no such resource")
            del rows[change.key]
        else:
            assert change.row is not None
            # A default resource given again keeps its words for what its status holds.
            known = rows.get(change.key) or _DEFAULTS.get(change.key)
            row = change.row
            if known is not None and row.status_means == GuardedResource.status_means:
                row = replace(row, status_means=known.status_means)
            rows[change.key] = row
    return GuardTable(rows.values())


def table_from(entries: Sequence[str]) -> GuardTable:
    """The table the settings' ``--guard-resource`` entries make (empty: the default)."""
    return apply_changes([parse_change(e) for e in entries])
