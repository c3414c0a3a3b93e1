"""``bff/steve.py``'s rendering against real Steve, field by field.

The same Upgrade, read by the same caller (the admin, and the viewer who may
only get, list and watch Upgrades), from the BFF's Steve paths (passthrough,
in its own process) and from real Steve (the version Harvester v1.6.0 embeds,
header authentication naming the caller), as an item and as a collection.

Every leaf where the two differ must be one of :data:`KEPT`, each with the
reason it is kept; a kept difference that no longer shows fails too, so the
list stays true.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.harvester.conftest import Bff
from tests.support.harvester import HarvesterStack

pytestmark = pytest.mark.real_apiserver

SUCCEEDED = "hvst-upgrade-7xn6v"
MISSING = object()


@dataclass(frozen=True)
class Caller:
    token: str
    user: str
    groups: tuple[str, ...]


ADMIN = Caller("sandbox-admin", "sandbox-admin", ("system:masters", "system:authenticated"))
VIEWER = Caller("sandbox-viewer", "sandbox-viewer", ("system:authenticated",))


@dataclass(frozen=True)
class Kept:
    """A difference kept on purpose: leaves whose dotted path matches ``pattern``."""

    pattern: str
    reason: str
    #: Which shapes it shows in ("item", "collection") and for which callers.
    where: frozenset[str] = frozenset({"item", "collection"})
    callers: frozenset[str] = frozenset({"sandbox-admin", "sandbox-viewer"})


KEPT: tuple[Kept, ...] = ()


def leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every leaf of a JSON value with its dotted path (list items by index)."""
    if isinstance(value, dict) and value:
        for k, v in value.items():
            yield from leaves(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list) and value:
        for i, v in enumerate(value):
            yield from leaves(v, f"{path}.{i}")
    else:
        yield path, value


def differences(ours: Any, theirs: Any) -> dict[str, tuple[Any, Any]]:
    a, b = dict(leaves(ours)), dict(leaves(theirs))
    return {
        p: (a.get(p, MISSING), b.get(p, MISSING))
        for p in sorted(set(a) | set(b))
        if a.get(p, MISSING) != b.get(p, MISSING)
    }


def get(url: str, headers: dict[str, str]) -> tuple[int, Any]:
    req = urllib.request.Request(url, headers={"Accept": "application/json", **headers})  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        with err:
            return err.code, json.loads(err.read() or b"null")


def check(shape: str, caller: Caller, ours: Any, theirs: Any) -> None:
    found = differences(ours, theirs)
    kept = [k for k in KEPT if shape in k.where and caller.token in k.callers]
    unexplained = {
        p: v for p, v in found.items() if not any(re.fullmatch(k.pattern, p) for k in kept)
    }
    stale = [k.pattern for k in kept if not any(re.fullmatch(k.pattern, p) for p in found)]
    assert not unexplained, json.dumps(
        {p: [None if x is MISSING else x for x in v] for p, v in unexplained.items()}, indent=1
    )
    assert not stale, f"kept differences that no longer show: {stale}"


@pytest.mark.parametrize("caller", [ADMIN, VIEWER], ids=lambda c: c.user)
def test_item_as_real_steve_renders_it(
    harvester: HarvesterStack, bff_process: Callable[..., Bff], caller: Caller
) -> None:
    bff = bff_process()
    path = f"/v1/harvester/harvesterhci.io.upgrades/harvester-system/{SUCCEEDED}"
    status, ours = get(bff.url + path, {"Authorization": f"Bearer {caller.token}"})
    assert status == 200, ours
    status, theirs = harvester.steve(
        "GET", f"/v1/harvesterhci.io.upgrades/harvester-system/{SUCCEEDED}",
        user=caller.user, groups=caller.groups,
    )  # fmt: skip
    assert status == 200, theirs
    check("item", caller, ours, theirs)


@pytest.mark.parametrize("caller", [ADMIN, VIEWER], ids=lambda c: c.user)
def test_collection_as_real_steve_renders_it(
    harvester: HarvesterStack, bff_process: Callable[..., Bff], caller: Caller
) -> None:
    bff = bff_process()
    status, ours = get(
        bff.url + "/v1/harvester/harvesterhci.io.upgrades/harvester-system",
        {"Authorization": f"Bearer {caller.token}"},
    )
    assert status == 200, ours
    status, theirs = harvester.steve(
        "GET", "/v1/harvesterhci.io.upgrades/harvester-system", user=caller.user,
        groups=caller.groups,
    )  # fmt: skip
    assert status == 200, theirs
    check("collection", caller, ours, theirs)
