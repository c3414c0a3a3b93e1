"""The dashboard's v1.0.4 IPPool edit through real Steve, with the guard: the edit lands,
the allocations stay.

The IPPool CRD (``bff/captured/crds``) is installed on the real Harvester stack's API
server and the seed pool created as its owning controller would (its status is the
pool's IP allocations). Real Steve serves it; the extension's own v1.0.4 model edits
its description and ``save()`` PUTs the whole object back through real Steve. Without
the guard that PUT stores no status; with the BFF's webhook registered the
description changes and status, finalizers and owner references come back byte for
byte.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bff import captured
from bff.admission.resources import LOAD_BALANCER
from tests.harvester.conftest import Bff, overlay_configuration
from tests.support import shell
from tests.support.harvester import HarvesterStack
from tests.support.real_apiserver import CRD_TIMEOUT, RealApiServer

pytestmark = pytest.mark.real_apiserver

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
POOLS = "/apis/loadbalancer.harvesterhci.io/v1beta1/ippools"
STEVE_POOLS = "/v1/loadbalancer.harvesterhci.io.ippools"
FINALIZER = "example.com/allocator-cleanup"
OWNER = {
    "apiVersion": "harvesterhci.io/v1beta1",
    "kind": "Setting",
    "name": "vip-pools",
    "uid": "4b6d2d7e-0000-4000-8000-0000000000aa",
}


def _as_owner() -> dict[str, str]:
    return {"Impersonate-User": LOAD_BALANCER, "Impersonate-Group": "system:masters"}


def _until(what: str, ready: Callable[[], bool], timeout: float = CRD_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, f"{what} within {timeout}s"
        time.sleep(0.1)


@pytest.fixture
def pool(harvester: HarvesterStack) -> Iterator[dict[str, Any]]:
    real = harvester.real
    (crd,) = [c for c in captured.guarded_crds() if c["spec"]["names"]["plural"] == "ippools"]
    r = real.request("POST", CRDS, crd)
    assert r.status in (201, 409), r.body
    _until("the IPPool API served", lambda: real.request("GET", POOLS).status == 200)
    seed = captured.guarded_object("ippool")
    seed["metadata"]["finalizers"] = [FINALIZER]
    seed["metadata"]["ownerReferences"] = [OWNER]
    r = real.request("POST", POOLS, seed, headers=_as_owner())
    assert r.status == 201, r.body
    name = seed["metadata"]["name"]
    _until(
        "Steve serving the pool", lambda: harvester.steve("GET", f"{STEVE_POOLS}/{name}")[0] == 200
    )
    try:
        yield real.request("GET", f"{POOLS}/{name}").body
    finally:
        real.request(
            "PATCH", f"{POOLS}/{name}", {"metadata": {"finalizers": None}},
            content_type="application/merge-patch+json",
        )  # fmt: skip
        real.request("DELETE", f"{POOLS}/{name}")
        real.request("DELETE", f"{CRDS}/{crd['metadata']['name']}")
        _until("the IPPool API gone", lambda: real.request("GET", POOLS).status == 404)


def _edit_through_steve(harvester: HarvesterStack, name: str) -> dict[str, Any]:
    """What the dashboard does: GET Steve's item, edit the description, v1.0.4's save()."""
    status, item = harvester.steve("GET", f"{STEVE_POOLS}/{name}?exclude=metadata.managedFields")
    assert status == 200, item
    edit = (shell.set_field("spec.description", "edited in the dashboard"),)
    body = shell.saved_body("v1.0.4", "ippool", item, edit=edit)
    assert "status" not in body
    assert "finalizers" not in body["metadata"]
    status, answer = harvester.steve("PUT", f"{STEVE_POOLS}/{name}", body)
    assert status == 200, answer
    return dict(answer)


def _stored(real: RealApiServer, name: str) -> dict[str, Any]:
    r = real.request("GET", f"{POOLS}/{name}")
    assert r.status == 200, r.body
    return dict(r.body)


def test_without_the_guard_the_edit_through_steve_loses_the_allocations(
    harvester: HarvesterStack, pool: dict[str, Any]
) -> None:
    name = pool["metadata"]["name"]
    _edit_through_steve(harvester, name)
    after = _stored(harvester.real, name)
    assert after["spec"]["description"] == "edited in the dashboard"
    assert "status" not in after
    assert "finalizers" not in after["metadata"]


def test_with_the_guard_the_edit_through_steve_keeps_the_allocations(
    harvester: HarvesterStack, pool: dict[str, Any], bff_process: Callable[..., Bff]
) -> None:
    real = harvester.real
    name = pool["metadata"]["name"]
    bff = bff_process(webhook=True)
    configuration = overlay_configuration(bff.webhook_url, real.ca_bundle)
    real.apply(configuration)
    try:
        _until(
            "the webhook consulted",
            lambda: "harvester-upgrade-bff" in real.request(
                "PATCH", f"{POOLS}/{name}?dryRun=All", {"status": None},
                content_type="application/merge-patch+json",
            ).headers.get("Warning", ""),
        )  # fmt: skip
        _edit_through_steve(harvester, name)
        after = _stored(real, name)
    finally:
        real.delete(configuration)
    assert after["spec"]["description"] == "edited in the dashboard"
    assert after["status"] == pool["status"]
    assert after["metadata"]["finalizers"] == [FINALIZER]
    assert after["metadata"]["ownerReferences"] == [OWNER]
