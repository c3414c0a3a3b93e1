"""The guard table end to end on a real kube-apiserver serving the seven real CRDs.

The six CRDs of ``bff/captured/crds`` are installed beside the harness's Upgrade
CRD; one object of each kind is created as its owning controller (the Upgrade is
the harness's seed), with a finalizer and an owner reference added; ``serve`` runs
with its webhook port and the chart's MutatingWebhookConfiguration
(``deploy/manifests/none-certmanager.yaml``) points at it. Then, for each of the seven resources:

- the body the dashboard extension v1.0.4 saves after an edit
  (:func:`tests.support.v104_save.v104_saved_body`), PUT by an untrusted user, keeps
  status byte for byte, finalizers and owner references, and the edit is applied;
- the owning controller's identity (impersonated by the harness admin) still changes
  status, and a differently spelt identity cannot;
- with the BFF stopped and ``failurePolicy: Fail``, untrusted writes are refused and
  the owners' writes pass (the API server evaluates the ``matchConditions`` itself).

And the stated intent (the annotation) removes a finalizer, a CREATE's forged
status is not stored, and a deletionTimestamp an untrusted writer sets is taken out
(kube-apiserver itself answers 422 "field is immutable" to such an UPDATE).
"""

from __future__ import annotations

import copy
import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bff import captured
from bff.admission.guard import INTENT_ANNOTATION
from bff.admission.resources import DEFAULT_TABLE, GuardedResource
from tests.admission.test_real_apiserver_guard import Bff, overlay_configuration
from tests.support.real_apiserver import CRD_TIMEOUT, RealApiServer, Response
from tests.support.v104_save import form_edit, v104_saved_body

pytestmark = pytest.mark.real_apiserver

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
FINALIZER = "example.com/cleanup"
OWNER_REF = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "name": "guard-test-owner",
    "uid": "0b8e6a4e-7f0c-4d55-9f0e-1d7a2c3b4e5f",
}
UPGRADE = "hvst-upgrade-7xn6v"
MASTERS = "system:masters"


@dataclass(frozen=True)
class Target:
    """One guarded object: its row, Steve type and URL path."""

    kind: str
    row: GuardedResource
    path: str

    @property
    def steve_type(self) -> str:
        return f"{self.row.group}.{self.kind}"


def _row(group: str, resource: str) -> GuardedResource:
    (row,) = [r for r in DEFAULT_TABLE if (r.group, r.resource) == (group, resource)]
    return row


def _path(obj: dict[str, Any], resource: str) -> str:
    meta = obj["metadata"]
    ns = f"namespaces/{meta['namespace']}/" if meta.get("namespace") else ""
    return f"/apis/{obj['apiVersion']}/{ns}{resource}/{meta['name']}"


def _warning(response: Response) -> str:
    """The answer's Warning header(s), as the client prints them."""
    return next((v for k, v in response.headers.items() if k.lower() == "warning"), "")


def _as(user: str) -> dict[str, str]:
    # The harness admin impersonates; the group gives the user the right to write.
    return {"Impersonate-User": user, "Impersonate-Group": MASTERS}


class Cluster:
    def __init__(self, real: RealApiServer) -> None:
        self.real = real
        self.targets: dict[str, Target] = {}

    def get(self, target: Target) -> dict[str, Any]:
        r = self.real.request("GET", target.path)
        assert r.status == 200, r.body
        body: dict[str, Any] = r.body
        return body

    def put(self, target: Target, body: Any, user: str | None = None) -> Response:
        return self.real.request("PUT", target.path, body, headers=_as(user) if user else None)

    def patch(self, target: Target, body: Any, user: str | None = None) -> Response:
        return self.real.request(
            "PATCH",
            target.path,
            body,
            content_type="application/merge-patch+json",
            headers=_as(user) if user else None,
        )


def _install_crds(real: RealApiServer) -> None:
    for crd in captured.guarded_crds():
        r = real.request("POST", CRDS, crd)
        assert r.status in (201, 409), r.body
    deadline = time.monotonic() + CRD_TIMEOUT
    for crd in captured.guarded_crds():
        spec = crd["spec"]
        path = f"/apis/{spec['group']}/v1beta1/{spec['names']['plural']}"
        while real.request("GET", path).status != 200:
            assert time.monotonic() < deadline, f"{path} not served"
            time.sleep(0.05)


def _remove_crds(real: RealApiServer) -> None:
    """Leave the shared API server as the harness made it: only the Upgrade CRD (other
    suites read its discovery, e.g. kubectl api-resources)."""
    for crd in captured.guarded_crds():
        r = real.request("DELETE", f"{CRDS}/{crd['metadata']['name']}")
        assert r.status in (200, 202, 404), r.body
    deadline = time.monotonic() + CRD_TIMEOUT
    for crd in captured.guarded_crds():
        spec = crd["spec"]
        path = f"/apis/{spec['group']}/v1beta1/{spec['names']['plural']}"
        while real.request("GET", path).status != 404:
            assert time.monotonic() < deadline, f"{path} still served"
            time.sleep(0.05)


def _create_seeds(cluster: Cluster) -> None:
    for kind in captured.GUARDED_KINDS:
        obj = captured.guarded_object(kind)
        obj["metadata"].setdefault("finalizers", []).append(FINALIZER)
        obj["metadata"]["ownerReferences"] = [OWNER_REF]
        group = obj["apiVersion"].split("/")[0]
        plural = f"{kind}s" if not kind.endswith("s") else kind
        row = _row(group, plural)
        target = Target(kind, row, _path(obj, plural))
        collection = target.path.rsplit("/", 1)[0]
        # Created as its controller would: the owner may write status.
        r = cluster.real.request("POST", collection, obj, headers=_as(row.owners[0]))
        assert r.status == 201, r.body
        cluster.targets[kind] = target
    upgrade = Target(
        "upgrade",
        _row("harvesterhci.io", "upgrades"),
        cluster.real.upgrades_path(UPGRADE),
    )
    live = cluster.get(upgrade)
    live["metadata"]["finalizers"].append(FINALIZER)
    live["metadata"]["ownerReferences"] = [OWNER_REF]
    assert cluster.put(upgrade, live).status == 200
    cluster.targets["upgrade"] = upgrade


def _delete_seeds(cluster: Cluster) -> None:
    for kind, target in cluster.targets.items():
        if kind == "upgrade":
            continue  # the harness's reset() puts its seed back
        cluster.patch(target, {"metadata": {"finalizers": None}})
        cluster.real.request("DELETE", target.path)


def _consulted(cluster: Cluster) -> bool:
    target = cluster.targets["ippool"]
    r = cluster.real.request(
        "PATCH",
        target.path + "?dryRun=All",
        {"status": None},
        content_type="application/merge-patch+json",
    )
    return r.status == 200 and "harvester-upgrade-bff" in _warning(r)


@pytest.fixture(scope="module")
def guarded(
    real_apiserver: RealApiServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Bff, Cluster]]:
    real_apiserver.reset()
    _install_crds(real_apiserver)
    cluster = Cluster(real_apiserver)
    directory: Path = tmp_path_factory.mktemp("guard-table")
    bff = Bff(real_apiserver, directory)
    configuration = overlay_configuration(bff.webhook_url, real_apiserver.ca_bundle)
    try:
        _create_seeds(cluster)
        real_apiserver.apply(configuration)
        deadline = time.monotonic() + 10
        while not _consulted(cluster):
            assert time.monotonic() < deadline, "the API server never called the webhook"
            time.sleep(0.1)
        yield bff, cluster
    finally:
        bff.stop()
        real_apiserver.delete(configuration)
        _delete_seeds(cluster)
        _remove_crds(real_apiserver)
        real_apiserver.reset()


KINDS = ["upgrade", *captured.GUARDED_KINDS]


def _server_json(value: Any) -> str:
    """A value serialised as kube-apiserver serialises it (compact, keys as sent)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@pytest.mark.parametrize("kind", KINDS)
def test_the_v104_save_keeps_status_finalizers_and_owners_and_applies_the_edit(
    guarded: tuple[Bff, Cluster], kind: str
) -> None:
    _, cluster = guarded
    target = cluster.targets[kind]
    before = cluster.get(target)
    body = v104_saved_body(target.steve_type, before, edit=form_edit(before, "by-the-form"))
    assert "status" not in body
    assert "finalizers" not in body["metadata"]
    done = cluster.put(target, body)
    assert done.status == 200, done.body
    warning = _warning(done)
    assert f"harvester-upgrade-bff: {before['kind']} " in warning
    assert "this write would have removed its status" in warning
    after = cluster.get(target)
    assert _server_json(after["status"]) == _server_json(before["status"])
    assert after["metadata"]["finalizers"] == before["metadata"]["finalizers"]
    assert after["metadata"]["ownerReferences"] == [OWNER_REF]
    assert after["metadata"]["labels"]["example.com/edited"] == "by-the-form"
    if "description" in (before.get("spec") or {}):
        assert after["spec"]["description"] == "edited in the form"


# Each rewrite writes a time no earlier one wrote, so every rewrite is a change.
_STAMPS = itertools.count(1)


def _status_rewrite(cluster: Cluster, target: Target, user: str) -> tuple[Response, str]:
    live = cluster.get(target)
    stamp = f"2030-01-01T00:{next(_STAMPS) % 3600 // 60:02d}:{next(_STAMPS) % 60:02d}Z"
    live["status"]["conditions"][0]["lastUpdateTime"] = stamp
    return cluster.put(target, live, user=user), stamp


@pytest.mark.parametrize("kind", KINDS)
def test_the_owner_changes_status_and_a_differently_spelt_identity_cannot(
    guarded: tuple[Bff, Cluster], kind: str
) -> None:
    _, cluster = guarded
    target = cluster.targets[kind]
    (owner,) = target.row.owners
    done, stamp = _status_rewrite(cluster, target, owner)
    assert done.status == 200, done.body
    assert "harvester-upgrade-bff" not in _warning(done)
    assert cluster.get(target)["status"]["conditions"][0]["lastUpdateTime"] == stamp
    for spelt in (owner + "s", owner.replace("harvester-system", "harvester-systen")):
        before = cluster.get(target)["status"]
        done, _ = _status_rewrite(cluster, target, spelt)
        assert done.status == 200, done.body
        assert "this write would have changed its status" in _warning(done)
        assert cluster.get(target)["status"] == before


def test_another_resources_owner_is_reviewed(guarded: tuple[Bff, Cluster]) -> None:
    _, cluster = guarded
    target = cluster.targets["ippool"]
    before = cluster.get(target)["status"]
    harvester = cluster.targets["setting"].row.owners[0]
    done, _ = _status_rewrite(cluster, target, harvester)
    assert done.status == 200
    assert "this write would have changed its status" in _warning(done)
    assert cluster.get(target)["status"] == before


def test_a_finalizer_goes_only_with_the_stated_intent(guarded: tuple[Bff, Cluster]) -> None:
    _, cluster = guarded
    target = cluster.targets["schedulevmbackup"]
    done = cluster.patch(target, {"metadata": {"finalizers": [FINALIZER]}})
    assert done.status == 200
    assert "dropped finalizer wrangler.cattle.io/schedule-vm-bakcup-controller" in (_warning(done))
    assert len(cluster.get(target)["metadata"]["finalizers"]) == 2
    done = cluster.patch(
        target,
        {
            "metadata": {
                "finalizers": [FINALIZER],
                "annotations": {INTENT_ANNOTATION: "finalizers"},
            }
        },
    )
    assert done.status == 200, done.body
    assert "finalizers changed as the write's" in _warning(done)
    after = cluster.get(target)
    assert after["metadata"]["finalizers"] == [FINALIZER]
    # The statement stays on the object; sending it back unchanged states nothing.
    assert after["metadata"]["annotations"][INTENT_ANNOTATION] == "finalizers"
    done = cluster.put(target, v104_saved_body(target.steve_type, after))
    assert done.status == 200
    assert cluster.get(target)["metadata"]["finalizers"] == [FINALIZER]
    assert "removed its status" in _warning(done)
    # The status stayed: the annotation named finalizers only.
    assert after["status"]["vmbackupInfo"]


def test_a_create_with_a_forged_status_is_stored_without_it(
    guarded: tuple[Bff, Cluster],
) -> None:
    _, cluster = guarded
    obj = captured.guarded_object("ippool")
    obj["metadata"]["name"] = "forged-pool"
    collection = "/apis/loadbalancer.harvesterhci.io/v1beta1/ippools"
    done = cluster.real.request("POST", collection, obj)
    try:
        assert done.status == 201, done.body
        assert "created it with a status of its own" in _warning(done)
        assert "status" not in done.body
    finally:
        cluster.real.request("DELETE", f"{collection}/forged-pool")


def test_a_deletion_timestamp_is_taken_out_and_the_rest_applies(
    guarded: tuple[Bff, Cluster],
) -> None:
    _, cluster = guarded
    target = cluster.targets["keypair"]
    live = cluster.get(target)
    forged = copy.deepcopy(live)
    forged["metadata"]["deletionTimestamp"] = "2030-01-01T00:00:00Z"
    forged["metadata"]["labels"] = {"example.com/after-deletion-attempt": "yes"}
    # What kube-apiserver itself does with it (the owner's write skips the webhook).
    done = cluster.put(target, forged, user=target.row.owners[0])
    assert done.status == 422
    assert "metadata.deletionTimestamp" in done.body["message"]
    assert "field is immutable" in done.body["message"]
    done = cluster.put(target, forged)
    assert done.status == 200, done.body
    assert "set metadata.deletionTimestamp" in _warning(done)
    after = cluster.get(target)
    assert "deletionTimestamp" not in after["metadata"]
    assert after["metadata"]["labels"] == {"example.com/after-deletion-attempt": "yes"}


# Last: it stops the BFF for the rest of the module.
@pytest.mark.parametrize("kind", KINDS)
def test_with_the_webhook_down_others_are_refused_and_owners_pass(
    guarded: tuple[Bff, Cluster], kind: str
) -> None:
    bff, cluster = guarded
    bff.stop()
    target = cluster.targets[kind]
    done = cluster.patch(target, {"metadata": {"labels": {"example.com/x": "y"}}})
    assert done.status == 500, done.body
    assert (
        'failed calling webhook "guard.harvester-upgrade-bff.harvesterhci.io"'
        in (done.body["message"])
    )
    # A differently spelt owner is refused too; the owner itself never waits.
    (owner,) = target.row.owners
    done, _ = _status_rewrite(cluster, target, owner + "s")
    assert done.status == 500
    done, stamp = _status_rewrite(cluster, target, owner)
    assert done.status == 200, done.body
    assert cluster.get(target)["status"]["conditions"][0]["lastUpdateTime"] == stamp
