"""Emulator Upgrade handlers: GET, LIST (selectors, all namespaces, paging), create, PUT
(whole-object replace, optimistic lock) and merge patch, over raw HTTP and through
kubernetes-asyncio; each answer as kube-apiserver gives it."""

from __future__ import annotations

import copy

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from bff import captured
from tests.support.backends import (
    BASE,
    FAILED,
    IN_PROGRESS,
    MERGE,
    NS,
    SUCCEEDED,
    EmulatorBackend,
    new_upgrade,
)

READ = "harvesterhci.io/read-message"


async def test_get_returns_the_seeded_object_with_server_fields(emu: EmulatorBackend) -> None:
    status, _, obj = await emu.request("GET", f"{BASE}/{SUCCEEDED}")
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


async def test_list_carries_the_current_resource_version(emu: EmulatorBackend) -> None:
    status, _, body = await emu.request("GET", BASE)
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
async def test_list_filters_by_label_selector(
    emu: EmulatorBackend, selector: str, names: list[str]
) -> None:
    status, _, body = await emu.request("GET", f"{BASE}?labelSelector={selector}")
    assert status == 200
    assert sorted(i["metadata"]["name"] for i in body["items"]) == sorted(names)


async def test_a_bad_selector_is_bad_request(emu: EmulatorBackend) -> None:
    status, _, body = await emu.request("GET", f"{BASE}?labelSelector=a%20in%20b")
    assert status == 400
    assert body["reason"] == "BadRequest"
    assert body["message"] == "unable to parse requirement: found 'b' expected: '('"


async def test_cluster_wide_list(emu: EmulatorBackend) -> None:
    status, _, body = await emu.request("GET", "/apis/harvesterhci.io/v1beta1/upgrades")
    assert status == 200
    assert len(body["items"]) == 3


async def test_limit_and_continue_page_through(emu: EmulatorBackend) -> None:
    _, _, first = await emu.request("GET", f"{BASE}?limit=2")
    assert len(first["items"]) == 2
    assert first["metadata"]["remainingItemCount"] == 1
    token = first["metadata"]["continue"]
    _status, _, second = await emu.request("GET", f"{BASE}?limit=2&continue={token}")
    assert [i["metadata"]["name"] for i in second["items"]] == [IN_PROGRESS]
    assert second["metadata"]["continue"] == ""


async def test_unknown_path_and_wrong_method_are_statuses(emu: EmulatorBackend) -> None:
    status, _, body = await emu.request("GET", "/apis/harvesterhci.io/v1beta1/nothing")
    assert (status, body["reason"]) == (404, "NotFound")
    status, _, body = await emu.request("POST", f"{BASE}/{SUCCEEDED}", {})
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


async def test_create_assigns_server_fields_and_keeps_status(emu: EmulatorBackend) -> None:
    before = emu.store.resource_version
    status, _, obj = await emu.request("POST", BASE, new_upgrade())
    assert status == 201
    meta = obj["metadata"]
    assert meta["name"].startswith("hvst-upgrade-")
    assert len(meta["name"]) == len("hvst-upgrade-") + 5
    assert set(meta["name"][-5:]) <= set("bcdfghjklmnpqrstvwxz2456789")
    assert meta["generation"] == 1
    assert meta["namespace"] == NS
    assert meta["resourceVersion"] == str(before + 1)
    assert meta["uid"]
    assert meta["creationTimestamp"].endswith("Z")
    assert obj["status"] == {"previousVersion": "v1.5.0"}
    assert obj["spec"]["logEnabled"] is True  # the CRD's default


async def test_create_twice_is_already_exists(emu: EmulatorBackend) -> None:
    status, _, body = await emu.request("POST", BASE, new_upgrade(name=SUCCEEDED))
    assert status == 409
    assert body["reason"] == "AlreadyExists"
    assert body["message"] == f'upgrades.harvesterhci.io "{SUCCEEDED}" already exists'


async def test_put_replaces_status_too(emu: EmulatorBackend) -> None:
    """The bug this project exists for: a PUT without status wipes it."""
    body = captured.client_body("v1.0.4")
    live = emu.live(SUCCEEDED)
    body["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
    status, headers, obj = await emu.request("PUT", f"{BASE}/{SUCCEEDED}", body)
    assert status == 200
    assert "status" not in obj
    assert "status" not in emu.live(SUCCEEDED)
    assert obj["metadata"]["labels"]["harvesterhci.io/read-message"] == "true"
    assert obj["metadata"]["uid"] == live["metadata"]["uid"]
    assert obj["metadata"]["creationTimestamp"] == live["metadata"]["creationTimestamp"]
    # status changed and there is no status subresource, so generation moves
    assert obj["metadata"]["generation"] == 2
    # the Steve fields are pruned, with a warning each
    assert "id" not in obj
    assert headers.getall("Warning") == ['299 - "unknown field \\"id\\""',
                                         '299 - "unknown field \\"type\\""']  # fmt: skip


async def test_put_with_a_stale_resource_version_is_a_conflict(emu: EmulatorBackend) -> None:
    live = emu.live(SUCCEEDED)
    stale = copy.deepcopy(live)
    stale["metadata"]["resourceVersion"] = "1"
    status, _, body = await emu.request("PUT", f"{BASE}/{SUCCEEDED}", stale)
    assert status == 409
    assert body["message"] == (
        f'Operation cannot be fulfilled on upgrades.harvesterhci.io "{SUCCEEDED}": the object '
        "has been modified; please apply your changes to the latest version and try again"
    )
    assert body["details"] == {"name": SUCCEEDED, "group": "harvesterhci.io", "kind": "upgrades"}
    assert emu.live(SUCCEEDED) == live


async def test_put_without_resource_version_is_invalid(emu: EmulatorBackend) -> None:
    body = emu.live(SUCCEEDED)
    del body["metadata"]["resourceVersion"]
    status, _, answer = await emu.request("PUT", f"{BASE}/{SUCCEEDED}", body)
    assert status == 422
    assert answer["message"] == (
        f'upgrades.harvesterhci.io "{SUCCEEDED}" is invalid: metadata.resourceVersion: '
        "Invalid value: 0x0: must be specified for an update"
    )


async def test_put_name_must_match_url(emu: EmulatorBackend) -> None:
    body = emu.live(SUCCEEDED)
    status, _, answer = await emu.request("PUT", f"{BASE}/{IN_PROGRESS}", body)
    assert status == 400
    assert answer["message"] == (
        f"the name of the object ({SUCCEEDED}) does not match the name on the URL ({IN_PROGRESS})"
    )


async def test_put_with_another_uid_fails_its_precondition(emu: EmulatorBackend) -> None:
    body = emu.live(SUCCEEDED)
    uid = body["metadata"]["uid"]
    body["metadata"]["uid"] = "11111111-1111-1111-1111-111111111111"
    status, _, answer = await emu.request("PUT", f"{BASE}/{SUCCEEDED}", body)
    assert status == 409
    assert answer["message"].endswith(
        "Precondition failed: UID in precondition: 11111111-1111-1111-1111-111111111111, "
        f"UID in object meta: {uid}"
    )


async def test_label_merge_patch_keeps_status_byte_for_byte(emu: EmulatorBackend) -> None:
    live = emu.live(SUCCEEDED)
    patch = {"metadata": {"labels": {READ: "true"},
                          "resourceVersion": live["metadata"]["resourceVersion"]}}  # fmt: skip
    status, _, obj = await emu.request("PATCH", f"{BASE}/{SUCCEEDED}", patch, content_type=MERGE)
    assert status == 200
    assert obj["status"] == live["status"]
    assert obj["metadata"]["labels"][READ] == "true"
    assert obj["metadata"]["generation"] == live["metadata"]["generation"]


async def test_merge_patch_null_deletes(emu: EmulatorBackend) -> None:
    patch = {"metadata": {"labels": {"harvesterhci.io/latestUpgrade": None}},
             "status": {"nodeStatuses": None}}  # fmt: skip
    status, _, obj = await emu.request("PATCH", f"{BASE}/{SUCCEEDED}", patch, content_type=MERGE)
    assert status == 200
    assert "harvesterhci.io/latestUpgrade" not in obj["metadata"]["labels"]
    assert "nodeStatuses" not in obj["status"]
    assert obj["metadata"]["generation"] == 2


async def test_stale_resource_version_in_a_merge_patch_is_a_conflict(emu: EmulatorBackend) -> None:
    patch = {"metadata": {"labels": {READ: "true"}, "resourceVersion": "1"}}
    status, _, body = await emu.request("PATCH", f"{BASE}/{SUCCEEDED}", patch, content_type=MERGE)
    assert status == 409
    assert body["reason"] == "Conflict"
    assert READ not in emu.live(SUCCEEDED)["metadata"]["labels"]


async def test_patch_of_a_missing_object_is_not_found(emu: EmulatorBackend) -> None:
    status, _, body = await emu.request("PATCH", f"{BASE}/nope", {}, content_type=MERGE)
    assert (status, body["message"]) == (404, 'upgrades.harvesterhci.io "nope" not found')


async def test_patch_cannot_rename(emu: EmulatorBackend) -> None:
    patch = {"metadata": {"name": "other"}}
    status, _, body = await emu.request("PATCH", f"{BASE}/{SUCCEEDED}", patch, content_type=MERGE)
    assert status == 400
    assert "does not match the name on the URL" in body["message"]


async def test_non_object_merge_patch_is_bad_request(emu: EmulatorBackend) -> None:
    status, _, body = await emu.request("PATCH", f"{BASE}/{SUCCEEDED}", [1], content_type=MERGE)
    assert (status, body["message"]) == (400, "Invalid JSON Patch")


@pytest.mark.parametrize(
    "media",
    ["application/strategic-merge-patch+json", "application/apply-patch+yaml", "text/plain"],
)
async def test_other_patch_types_are_unsupported(emu: EmulatorBackend, media: str) -> None:
    status, _, body = await emu.request("PATCH", f"{BASE}/{SUCCEEDED}", {}, content_type=media)
    assert status == 415
    assert body["reason"] == "UnsupportedMediaType"
    assert body["message"] == (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    )


async def test_kubernetes_asyncio_merge_patch(
    emu: EmulatorBackend, kube: client.CustomObjectsApi
) -> None:
    live = emu.live(SUCCEEDED)
    patch = {"metadata": {"labels": {READ: "true"},
                          "resourceVersion": live["metadata"]["resourceVersion"]}}  # fmt: skip
    obj = await kube.patch_namespaced_custom_object(  # type: ignore[call-arg]
        "harvesterhci.io", "v1beta1", NS, "upgrades", SUCCEEDED, patch,
        _content_type="application/merge-patch+json",
    )  # fmt: skip
    assert obj["metadata"]["labels"][READ] == "true"
    assert obj["status"] == live["status"]
    with pytest.raises(ApiException) as info:
        await kube.patch_namespaced_custom_object(  # type: ignore[call-arg]
            "harvesterhci.io", "v1beta1", NS, "upgrades", SUCCEEDED, patch,
            _content_type="application/merge-patch+json",
        )  # fmt: skip
    assert info.value.status == 409


async def test_answers_are_typed_application_json_exactly(emu: EmulatorBackend) -> None:
    """As kube-apiserver types them: no charset parameter for a client to match."""
    for path in (f"{BASE}/{SUCCEEDED}", f"{BASE}/hvst-upgrade-nope", "/apis", "/openapi/v3"):
        _, headers, _ = await emu.request("GET", path)
        assert headers["Content-Type"] == "application/json", path
