"""Emulator reads: discovery, health, GET, LIST with labelSelector, errors as Status objects,
over raw HTTP and through kubernetes-asyncio."""

from __future__ import annotations

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from tests.sandbox.emuclient import BASE, FAILED, IN_PROGRESS, NS, SUCCEEDED, Emu


async def test_health_and_version_need_no_token(emu: Emu) -> None:
    for path in ("/healthz", "/readyz", "/livez"):
        status, _, body = await emu.call("GET", path, token=None)
        assert (status, body) == (200, "ok")
    status, _, body = await emu.call("GET", "/version", token=None)
    assert status == 200
    assert body["major"] == "1"


async def test_discovery_lists_upgrades(emu: Emu) -> None:
    status, _, groups = await emu.call("GET", "/apis")
    assert status == 200
    assert "harvesterhci.io" in [g["name"] for g in groups["groups"]]
    status, _, group = await emu.call("GET", "/apis/harvesterhci.io")
    assert group["preferredVersion"]["groupVersion"] == "harvesterhci.io/v1beta1"
    status, _, resources = await emu.call("GET", "/apis/harvesterhci.io/v1beta1")
    (upgrades,) = resources["resources"]
    assert upgrades["name"] == "upgrades"
    assert upgrades["namespaced"] is True
    assert upgrades["kind"] == "Upgrade"
    assert {"get", "list", "watch", "patch", "update", "create", "delete"} <= set(upgrades["verbs"])


async def test_get_returns_the_seeded_object_with_server_fields(emu: Emu) -> None:
    status, _, obj = await emu.call("GET", f"{BASE}/{SUCCEEDED}")
    assert status == 200
    meta = obj["metadata"]
    assert meta["name"] == SUCCEEDED
    assert meta["generation"] == 1
    assert meta["uid"] != "00000000-0000-0000-0000-000000000000"
    assert int(meta["resourceVersion"]) > 0
    assert obj["status"]["conditions"][0] == {
        "lastUpdateTime": "2025-03-10T10:58:02Z",
        "status": "True",
        "type": "Completed",
    }


async def test_an_unknown_token_is_unauthorized(emu: Emu) -> None:
    for token in ("wrong", "sandbox-admin-but-not-quite"):
        status, _, body = await emu.call("GET", BASE, token=token)
        assert status == 401
        assert body == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "Unauthorized",
            "reason": "Unauthorized",
            "code": 401,
        }


async def test_no_token_is_anonymous_and_forbidden(emu: Emu) -> None:
    """As kube-apiserver with anonymous auth on (the default, and the real server's answer)."""
    status, _, body = await emu.call("GET", BASE, token=None)
    assert status == 403
    assert body["reason"] == "Forbidden"
    assert 'User "system:anonymous" cannot list resource "upgrades"' in body["message"]
    status, _, _ = await emu.call("GET", "/version", token=None)
    assert status == 200


async def test_list_carries_the_current_resource_version(emu: Emu) -> None:
    status, _, body = await emu.call("GET", BASE)
    assert status == 200
    assert body["kind"] == "UpgradeList"
    assert body["metadata"]["resourceVersion"] == str(emu.store.resource_version)
    assert [i["metadata"]["name"] for i in body["items"]] == sorted(
        [SUCCEEDED, IN_PROGRESS, FAILED]
    )


@pytest.mark.parametrize(
    ("selector", "names"),
    [
        ("harvesterhci.io/upgradeState=Succeeded", [SUCCEEDED]),
        ("harvesterhci.io/upgradeState in (Succeeded,Failed)", [FAILED, SUCCEEDED]),
        ("harvesterhci.io/latestUpgrade", [SUCCEEDED, IN_PROGRESS]),
        ("!harvesterhci.io/latestUpgrade", [FAILED]),
        ("harvesterhci.io/upgradeState!=Succeeded", [FAILED, IN_PROGRESS]),
    ],
)
async def test_list_filters_by_label_selector(emu: Emu, selector: str, names: list[str]) -> None:
    status, _, body = await emu.call("GET", f"{BASE}?labelSelector={selector}")
    assert status == 200
    assert sorted(i["metadata"]["name"] for i in body["items"]) == sorted(names)


async def test_a_bad_selector_is_bad_request(emu: Emu) -> None:
    status, _, body = await emu.call("GET", f"{BASE}?labelSelector=a%20in%20b")
    assert status == 400
    assert body["reason"] == "BadRequest"
    assert body["message"] == "unable to parse requirement: found 'b' expected: '('"


async def test_cluster_wide_list(emu: Emu) -> None:
    status, _, body = await emu.call("GET", "/apis/harvesterhci.io/v1beta1/upgrades")
    assert status == 200
    assert len(body["items"]) == 3


async def test_limit_and_continue_page_through(emu: Emu) -> None:
    _, _, first = await emu.call("GET", f"{BASE}?limit=2")
    assert len(first["items"]) == 2
    assert first["metadata"]["remainingItemCount"] == 1
    token = first["metadata"]["continue"]
    _status, _, second = await emu.call("GET", f"{BASE}?limit=2&continue={token}")
    assert [i["metadata"]["name"] for i in second["items"]] == [IN_PROGRESS]
    assert second["metadata"]["continue"] == ""


async def test_unknown_path_and_wrong_method_are_statuses(emu: Emu) -> None:
    status, _, body = await emu.call("GET", "/apis/harvesterhci.io/v1beta1/nothing")
    assert (status, body["reason"]) == (404, "NotFound")
    status, _, body = await emu.call("POST", f"{BASE}/{SUCCEEDED}", {})
    assert (status, body["reason"]) == (405, "MethodNotAllowed")


async def test_kubernetes_asyncio_get_and_list(kube: client.CustomObjectsApi) -> None:
    obj = await kube.get_namespaced_custom_object(
        "harvesterhci.io", "v1beta1", NS, "upgrades", SUCCEEDED
    )
    assert obj["metadata"]["labels"]["harvesterhci.io/upgradeState"] == "Succeeded"
    listing = await kube.list_namespaced_custom_object(
        "harvesterhci.io", "v1beta1", NS, "upgrades", label_selector="harvesterhci.io/latestUpgrade"
    )
    assert len(listing["items"]) == 2
    with pytest.raises(ApiException) as info:
        await kube.get_namespaced_custom_object("harvesterhci.io", "v1beta1", NS, "upgrades", "x")
    assert info.value.status == 404
