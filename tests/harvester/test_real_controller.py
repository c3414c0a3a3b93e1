"""The dashboard's "Dismiss it" against Harvester's real upgrade controller (v1.6.0).

On a real kube-apiserver, with the real controller running as Harvester's
ServiceAccount and real Steve in front of the API server:

- the v1.0.4 body PUT straight to the API server makes the controller
  re-initialise the finished upgrade: the bug, asserted on the objects
  (conditions, ``upgradeState``, a new UpgradeLog, ``latestUpgrade`` moved off
  the upgrade in progress);
- the same body PUT through real Steve does the same;
- the same body through the BFF (passthrough, Steve item path) leaves status,
  finalizers, ``latestUpgrade`` and ``upgradeState`` alone, observed after the
  controller has handled the write;
- so do the v1.0.4 and v1.0.5 bodies through the BFF in Rancher mode (the Steve
  item path under ``/k8s/clusters/local``, a Rancher token), whose calls go
  through the simulated Rancher's cluster proxy and reach the API server as
  the Rancher user, impersonated, with that user's RBAC;
- with the BFF's webhook registered, the body through real Steve is repaired
  and the controller does not re-initialise.

"After the controller has handled the write" is :meth:`HarvesterStack.barrier`,
never a sleep.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from bff.doctor.upgrades import damage
from tests.harvester.conftest import (
    RANCHER_TOKEN,
    RANCHER_USER,
    Bff,
    SimulatedRancher,
    dismiss_body,
    overlay_configuration,
)
from tests.support.harvester import (
    FINALIZER,
    LATEST_LABEL,
    SERVER_VERSION,
    STATE_LABEL,
    HarvesterStack,
)
from tests.support.real_apiserver import RealApiServer

pytestmark = pytest.mark.real_apiserver

SUCCEEDED = "hvst-upgrade-7xn6v"
FAILED = "hvst-upgrade-fl4k2"
IN_PROGRESS = "hvst-upgrade-zjft7"
READ_MESSAGE = "harvesterhci.io/read-message"
UPGRADE_LABEL = "harvesterhci.io/upgrade"
STEVE_ITEM = "/v1/harvesterhci.io.upgrades/harvester-system/"
BFF_STEVE_ITEM = "/v1/harvester/harvesterhci.io.upgrades/harvester-system/"
#: The same item as the dashboard reaches it through Rancher (cluster ``local``).
RANCHER_CLUSTER = "/k8s/clusters/local"


def get(real: RealApiServer, name: str) -> dict[str, Any]:
    r = real.request("GET", real.upgrades_path(name))
    assert r.status == 200, (r.status, r.body)
    return dict(r.body)


def everything(real: RealApiServer) -> dict[str, dict[str, Any]]:
    r = real.request("GET", real.upgrades_path())
    assert r.status == 200, r.body
    return {i["metadata"]["name"]: i for i in r.body["items"]}


def upgrade_logs(real: RealApiServer) -> list[dict[str, Any]]:
    r = real.request(
        "GET", f"/apis/harvesterhci.io/v1beta1/namespaces/{real.namespace}/upgradelogs"
    )
    assert r.status == 200, r.body
    return list(r.body["items"])


def conditions(obj: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c["status"] for c in (obj.get("status") or {}).get("conditions") or []}


def settle(stack: HarvesterStack) -> None:
    """Until the controller has handled the write and every write of its own it led to."""
    stack.settle()


def assert_reinitialised(stack: HarvesterStack, before: dict[str, dict[str, Any]]) -> None:
    """The finished upgrade was taken for a new one, as ``OnChanged``/``initStatus`` do."""
    real = stack.real
    obj = get(real, SUCCEEDED)
    labels = obj["metadata"]["labels"]
    assert conditions(obj) == {"Completed": "Unknown", "LogReady": "Unknown"}, obj.get("status")
    assert labels[STATE_LABEL] == "PreparingLoggingInfra"
    assert labels[LATEST_LABEL] == "true"
    # resetLatestUpgradeLabel took the label off the upgrade that was in progress.
    assert LATEST_LABEL in before[IN_PROGRESS]["metadata"]["labels"]
    assert LATEST_LABEL not in get(real, IN_PROGRESS)["metadata"]["labels"]
    assert obj["status"]["previousVersion"] == SERVER_VERSION
    assert obj["status"]["upgradeLog"] == f"{SUCCEEDED}-upgradelog"
    (log,) = upgrade_logs(real)
    assert log["metadata"]["name"] == f"{SUCCEEDED}-upgradelog"
    assert log["metadata"]["labels"][UPGRADE_LABEL] == SUCCEEDED
    assert [o["uid"] for o in log["metadata"]["ownerReferences"]] == [obj["metadata"]["uid"]]
    # The finished upgrade's own record (node statuses, repo info, image) is gone.
    for key in ("nodeStatuses", "repoInfo", "imageID", "singleNode"):
        assert key not in obj["status"], key


def assert_untouched(
    stack: HarvesterStack, before: dict[str, dict[str, Any]], *, read: str = SUCCEEDED
) -> None:
    """Only ``read``'s read-message label changed; the controller changed nothing."""
    after = everything(stack.real)
    assert set(after) == set(before)
    for name, old in before.items():
        new = after[name]
        assert new.get("status") == old.get("status"), name
        assert new["metadata"].get("finalizers") == old["metadata"].get("finalizers"), name
        expected = dict(old["metadata"]["labels"])
        if name == read:
            expected[READ_MESSAGE] = "true"
        assert new["metadata"]["labels"] == expected, name
    assert upgrade_logs(stack.real) == []


def http(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)  # noqa: S310
    req.add_header("Accept", "application/json")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as err:
        with err:
            status, raw = err.code, err.read()
    return status, json.loads(raw) if raw else None


# --------------------------------------------------------------------------


def test_seeds_are_left_alone_by_the_controller(harvester: HarvesterStack) -> None:
    """The baseline: two finished upgrades and one in progress, settled and unchanged."""
    real = harvester.real
    seeds = {s["metadata"]["name"]: s for s in real.seed_objects()}
    settle(harvester)
    now = everything(real)
    assert set(now) == {SUCCEEDED, FAILED, IN_PROGRESS}
    for name, seed in seeds.items():
        assert now[name]["status"] == seed["status"], name
        assert now[name]["metadata"]["labels"] == seed["metadata"]["labels"], name
        assert READ_MESSAGE not in now[name]["metadata"]["labels"]
        assert now[name]["metadata"]["finalizers"] == [FINALIZER]
        assert damage(now[name]) is None, name  # doctor finds nothing wrong
    assert upgrade_logs(real) == []


def test_v104_body_straight_to_the_api_server_reinitialises(harvester: HarvesterStack) -> None:
    real = harvester.real
    before = everything(real)
    body = dismiss_body(harvester, "v1.0.4", SUCCEEDED)
    r = real.request("PUT", real.upgrades_path(SUCCEEDED), body, token="sandbox-admin")
    assert r.status == 200, r.body
    # The Upgrade CRD has no status subresource: the PUT replaced the whole
    # object, so status and the controller's finalizer went with it.
    assert "status" not in r.body
    assert "finalizers" not in r.body["metadata"]
    # harvester-upgrade-bff doctor's signatures (bff/doctor/upgrades.py), on the real damage.
    wiped = damage(r.body)
    assert wiped is not None
    assert wiped[0].startswith(f"Upgrade {SUCCEEDED}: its status was wiped (read-message true")
    settle(harvester)
    assert_reinitialised(harvester, before)
    restarted = damage(get(real, SUCCEEDED))
    assert restarted is not None
    assert restarted[0].startswith(
        f"Upgrade {SUCCEEDED}: a dismissed upgrade is running again (read-message true, "
        "Completed Unknown, state PreparingLoggingInfra)"
    )
    # The upgrade the controller took latestUpgrade from is still consistent.
    assert damage(get(real, IN_PROGRESS)) is None


def test_v104_body_through_real_steve_reinitialises(harvester: HarvesterStack) -> None:
    real = harvester.real
    before = everything(real)
    status, answer = harvester.steve(
        "PUT", STEVE_ITEM + SUCCEEDED, dismiss_body(harvester, "v1.0.4", SUCCEEDED)
    )
    assert status == 200, answer
    assert not (answer.get("status") or {}).get("conditions"), answer.get("status")
    settle(harvester)
    assert_reinitialised(harvester, before)


def test_v104_body_through_the_bff_leaves_the_upgrade_alone(
    harvester: HarvesterStack, bff_process: Callable[..., Bff]
) -> None:
    real = harvester.real
    bff = bff_process()
    before = everything(real)
    status, answer = http(
        "PUT", bff.url + BFF_STEVE_ITEM + SUCCEEDED, dismiss_body(harvester, "v1.0.4", SUCCEEDED),
        {"Authorization": "Bearer sandbox-admin"},
    )  # fmt: skip
    assert status == 200, answer
    assert answer["metadata"]["labels"][READ_MESSAGE] == "true"
    assert answer["status"] == before[SUCCEEDED]["status"]
    # The BFF's write reached the API server before it answered; the
    # barrier proves the controller has handled it.
    settle(harvester)
    assert_untouched(harvester, before)


@pytest.mark.parametrize("version", ["v1.0.4", "v1.0.5"])
def test_body_through_the_bff_in_rancher_mode_leaves_the_upgrade_alone(
    version: str,
    harvester: HarvesterStack,
    rancher: SimulatedRancher,
    bff_process: Callable[..., Bff],
) -> None:
    """The extension's body on the BFF's Rancher-layout Steve item path, with a Rancher
    token: the BFF reads and writes through the simulated Rancher, which reaches the
    API server as the Rancher user (impersonated; that user may patch Upgrades but not
    update them), and the controller leaves the finished upgrade alone."""
    real = harvester.real
    bff = bff_process(args=("--rancher-url", rancher.url, "--rancher-ca-bundle",
                            str(rancher.ca_file), "--cluster", "local"))  # fmt: skip
    before = everything(real)
    status, answer = http(
        "PUT", bff.url + RANCHER_CLUSTER + BFF_STEVE_ITEM + SUCCEEDED,
        dismiss_body(harvester, version, SUCCEEDED), {"Authorization": f"Bearer {RANCHER_TOKEN}"},
    )  # fmt: skip
    assert status == 200, answer
    assert answer["metadata"]["labels"][READ_MESSAGE] == "true"
    assert answer["status"] == before[SUCCEEDED]["status"]
    # Each of the BFF's calls went through Rancher's proxy of "local" as the
    # Rancher user, and its one write was a patch the API server accepted.
    item = RANCHER_CLUSTER + real.upgrades_path(SUCCEEDED)
    calls = [(f.method, f.path, f.cluster, f.user, f.status) for f in rancher.forwarded()]
    assert calls == [
        ("GET", item, "local", RANCHER_USER.id, 200),
        ("PATCH", item, "local", RANCHER_USER.id, 200),
    ]
    # The BFF's write reached the API server before it answered; the
    # barrier proves the controller has handled it.
    settle(harvester)
    assert_untouched(harvester, before)


def _wait_until_consulted(real: RealApiServer, timeout: float = 30.0) -> None:
    """The API server picks webhook configurations up from an informer: wait, boundedly."""
    deadline = time.monotonic() + timeout
    while True:
        r = real.request(
            "PATCH", real.upgrades_path(SUCCEEDED) + "?dryRun=All", {"status": None},
            content_type="application/merge-patch+json", token="sandbox-admin",
        )  # fmt: skip
        if "harvester-upgrade-bff" in r.headers.get("Warning", ""):
            return
        assert time.monotonic() < deadline, f"the webhook was not consulted within {timeout}s"
        time.sleep(0.1)


def test_v104_body_through_real_steve_with_the_webhook_is_repaired(
    harvester: HarvesterStack, bff_process: Callable[..., Bff]
) -> None:
    real = harvester.real
    bff = bff_process(webhook=True)
    real.apply(overlay_configuration(bff.webhook_url, real.ca_bundle))
    _wait_until_consulted(real)
    before = everything(real)
    status, answer = harvester.steve(
        "PUT", STEVE_ITEM + SUCCEEDED, dismiss_body(harvester, "v1.0.4", SUCCEEDED)
    )
    assert status == 200, answer
    assert answer["metadata"]["labels"][READ_MESSAGE] == "true"
    settle(harvester)
    assert_untouched(harvester, before)


def test_v105_body_from_real_steve_through_the_bff_writes_only_the_label(
    harvester: HarvesterStack, bff_process: Callable[..., Bff]
) -> None:
    """v1.0.5's own save() of real Steve's item sends everything back (Steve's own
    fields included); the BFF answers Changed and the API server records one write,
    of the one label."""
    real = harvester.real
    bff = bff_process()
    before = everything(real)
    body = dismiss_body(harvester, "v1.0.5", SUCCEEDED)
    assert body["status"]["conditions"], "v1.0.5 sends the status back"
    assert body["metadata"]["finalizers"] == [FINALIZER]
    assert {"fields", "state", "relationships"} <= set(body["metadata"])
    assert body["links"]["update"].startswith(harvester.steve_url)
    req = urllib.request.Request(  # noqa: S310
        bff.url + BFF_STEVE_ITEM + SUCCEEDED, data=json.dumps(body).encode(), method="PUT",
        headers={"Authorization": "Bearer sandbox-admin", "Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
        assert resp.status == 200
        assert resp.headers["X-Upgrade-Bff-Changed"] == "true"
    settle(harvester)
    assert_untouched(harvester, before)
    old_entries = before[SUCCEEDED]["metadata"]["managedFields"]
    new_entries = [
        e for e in get(real, SUCCEEDED)["metadata"]["managedFields"] if e not in old_entries
    ]
    assert [e["fieldsV1"] for e in new_entries] == [
        {"f:metadata": {"f:labels": {f"f:{READ_MESSAGE}": {}}}}
    ]
