"""``bff/steve.py``'s rendering against real Steve, field by field.

The same Upgrade, read by the same caller (the admin, and the viewer who may
only get, list and watch Upgrades), from the BFF's Steve paths (passthrough,
in its own process; with the read cache off, answers rendered by
``bff/steve.py`` from the API server's; with it on and synced, the cache's own
rendering in ``bff/cache.py``) and from real Steve (the version Harvester v1.6.0 embeds,
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


# The groups the API server gives each token (its --token-auth-file); it adds
# system:authenticated itself, to an impersonated user too.
ADMIN = Caller("sandbox-admin", "sandbox-admin", ("system:masters",))
VIEWER = Caller("sandbox-viewer", "sandbox-viewer", ())


@dataclass(frozen=True)
class Kept:
    """A difference kept on purpose: leaves whose dotted path matches ``pattern``."""

    pattern: str
    reason: str
    #: Which shapes it shows in ("item", "collection") and for which callers.
    where: frozenset[str] = frozenset({"item", "collection"})
    callers: frozenset[str] = frozenset({"sandbox-admin", "sandbox-viewer"})
    #: False: allowed, but it need not show on every read.
    always: bool = True


ITEM = r"(data\.\d+\.)?"  # an item, or an item of a collection
BOTH = frozenset({"sandbox-admin", "sandbox-viewer"})
# fmt: off
KEPT: tuple[Kept, ...] = (
    Kept(ITEM + r"links\.self",
         "Steve's links are absolute, built from the Host it was reached at, and a "
         "stand-alone Steve serves /v1/<type> where Harvester's router adds "
         "/v1/harvester; the BFF's links are the same paths, relative, so they resolve "
         "against whatever origin (Rancher's, the BFF's) the dashboard called"),
    Kept(ITEM + r"links\.update",
         "Steve gives an update link only to callers RBAC lets update; the BFF gives it "
         "to every caller and leaves the decision to the API server, which refuses the "
         "viewer's PUT with 403",
         callers=BOTH),
    Kept(ITEM + r"links\.view",
         "Steve links the raw API object (/apis/...); the BFF does not serve that path"),
    Kept(ITEM + r"links\.remove",
         "Steve offers DELETE to callers allowed to delete; the BFF serves no DELETE",
         callers=frozenset({"sandbox-admin"})),
    Kept(ITEM + r"metadata\.fields\.\d+",
         "Steve's table columns (the CRD's printer columns: name, age); the age changes "
         "with every read and the dashboard's upgrade flow does not read them"),
    Kept(ITEM + r"metadata\.relationships",
         "Steve's relationships (null for an Upgrade); not rendered by the BFF"),
    Kept(ITEM + r"metadata\.state\.(name|message|error|transitioning)",
         "Steve's summary of the object (wrangler's summarizer: active / activating, "
         "error, transitioning); not reproduced by the BFF"),
    Kept(ITEM + r"status\.conditions\.\d+\.(error|transitioning)",
         "Steve's per-condition summary flags; not reproduced by the BFF"),
    Kept(ITEM + r"status\.conditions\.\d+\.lastUpdateTime",
         "Steve fills an absent lastUpdateTime with \"\" (the upgrade in progress has "
         "conditions without one); the BFF passes conditions on as stored",
         where=frozenset({"collection"})),
    Kept(r"revision",
         "each side's revision is the resourceVersion its own list or watch of the "
         "namespace reached; resourceVersions are cluster-wide, so two up-to-date "
         "readers can report different ones when other objects changed in between",
         where=frozenset({"collection"}), always=False),
    Kept(r"actions",
         "Steve's collection-level actions (empty); the BFF's collection has none",
         where=frozenset({"collection"})),
    Kept(r"createTypes\.harvesterhci\.io\.upgrade",
         "Steve lists the types the caller may create (the admin only); the BFF does not "
         "serve the create POST (Rancher/Harvester does)",
         where=frozenset({"collection"}), callers=frozenset({"sandbox-admin"})),
)
# fmt: on


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
    stale = [
        k.pattern for k in kept if k.always and not any(re.fullmatch(k.pattern, p) for p in found)
    ]
    assert not unexplained, json.dumps(
        {p: [None if x is MISSING else x for x in v] for p, v in unexplained.items()}, indent=1
    )
    assert not stale, f"kept differences that no longer show: {stale}"


def started(bff_process: Callable[..., Bff], read_cache: str) -> Bff:
    bff = bff_process(args=("--read-cache", read_cache))
    bff.wait_ready()
    return bff


@pytest.mark.parametrize("read_cache", ["off", "on"], ids=lambda v: f"cache-{v}")
@pytest.mark.parametrize("caller", [ADMIN, VIEWER], ids=lambda c: c.user)
def test_item_as_real_steve_renders_it(
    harvester: HarvesterStack, bff_process: Callable[..., Bff], caller: Caller, read_cache: str
) -> None:
    bff = started(bff_process, read_cache)
    path = f"/v1/harvester/harvesterhci.io.upgrades/harvester-system/{SUCCEEDED}"
    status, ours = get(bff.url + path, {"Authorization": f"Bearer {caller.token}"})
    assert status == 200, ours
    status, theirs = harvester.steve(
        "GET", f"/v1/harvesterhci.io.upgrades/harvester-system/{SUCCEEDED}",
        user=caller.user, groups=caller.groups,
    )  # fmt: skip
    assert status == 200, theirs
    check("item", caller, ours, theirs)


@pytest.mark.parametrize("read_cache", ["off", "on"], ids=lambda v: f"cache-{v}")
@pytest.mark.parametrize("caller", [ADMIN, VIEWER], ids=lambda c: c.user)
def test_collection_as_real_steve_renders_it(
    harvester: HarvesterStack, bff_process: Callable[..., Bff], caller: Caller, read_cache: str
) -> None:
    bff = started(bff_process, read_cache)
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
