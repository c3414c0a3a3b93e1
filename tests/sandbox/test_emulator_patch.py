"""Emulator PATCH: merge patch (RFC 7396, resourceVersion precondition), JSON patch (RFC
6902), and the 415 a custom resource gives to strategic merge patch."""

from __future__ import annotations

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from tests.sandbox.emuclient import BASE, JSON_PATCH, MERGE, NS, SUCCEEDED, Emu

READ = "harvesterhci.io/read-message"


async def test_label_merge_patch_keeps_status_byte_for_byte(emu: Emu) -> None:
    live = emu.live(SUCCEEDED)
    patch = {"metadata": {"labels": {READ: "true"},
                          "resourceVersion": live["metadata"]["resourceVersion"]}}  # fmt: skip
    status, _, obj = await emu.call("PATCH", f"{BASE}/{SUCCEEDED}", patch, content_type=MERGE)
    assert status == 200
    assert obj["status"] == live["status"]
    assert obj["metadata"]["labels"][READ] == "true"
    assert obj["metadata"]["generation"] == live["metadata"]["generation"]


async def test_merge_patch_null_deletes(emu: Emu) -> None:
    patch = {"metadata": {"labels": {"harvesterhci.io/latestUpgrade": None}},
             "status": {"nodeStatuses": None}}  # fmt: skip
    status, _, obj = await emu.call("PATCH", f"{BASE}/{SUCCEEDED}", patch, content_type=MERGE)
    assert status == 200
    assert "harvesterhci.io/latestUpgrade" not in obj["metadata"]["labels"]
    assert "nodeStatuses" not in obj["status"]
    assert obj["metadata"]["generation"] == 2


async def test_stale_resource_version_in_a_merge_patch_is_a_conflict(emu: Emu) -> None:
    patch = {"metadata": {"labels": {READ: "true"}, "resourceVersion": "1"}}
    status, _, body = await emu.call("PATCH", f"{BASE}/{SUCCEEDED}", patch, content_type=MERGE)
    assert status == 409
    assert body["reason"] == "Conflict"
    assert READ not in emu.live(SUCCEEDED)["metadata"]["labels"]


async def test_patch_of_a_missing_object_is_not_found(emu: Emu) -> None:
    status, _, body = await emu.call("PATCH", f"{BASE}/nope", {}, content_type=MERGE)
    assert (status, body["message"]) == (404, 'upgrades.harvesterhci.io "nope" not found')


async def test_patch_cannot_rename(emu: Emu) -> None:
    patch = {"metadata": {"name": "other"}}
    status, _, body = await emu.call("PATCH", f"{BASE}/{SUCCEEDED}", patch, content_type=MERGE)
    assert status == 400
    assert "does not match the name on the URL" in body["message"]


async def test_non_object_merge_patch_is_bad_request(emu: Emu) -> None:
    status, _, body = await emu.call("PATCH", f"{BASE}/{SUCCEEDED}", [1], content_type=MERGE)
    assert (status, body["message"]) == (400, "Invalid JSON Patch")


async def test_json_patch_applies_operations(emu: Emu) -> None:
    ops = [
        {"op": "test", "path": "/metadata/labels/harvesterhci.io~1upgradeState",
         "value": "Succeeded"},
        {"op": "add", "path": "/metadata/labels/harvesterhci.io~1read-message", "value": "true"},
    ]  # fmt: skip
    status, _, obj = await emu.call("PATCH", f"{BASE}/{SUCCEEDED}", ops, content_type=JSON_PATCH)
    assert status == 200
    assert obj["metadata"]["labels"][READ] == "true"


async def test_failed_json_patch_test_is_unprocessable(emu: Emu) -> None:
    ops = [{"op": "test", "path": "/spec/version", "value": "v9"}]
    status, _, body = await emu.call("PATCH", f"{BASE}/{SUCCEEDED}", ops, content_type=JSON_PATCH)
    assert status == 422
    assert body["message"] == "the server rejected our request due to an error in our request"
    assert body["details"]["causes"] == [
        {"reason": "UnexpectedServerResponse",
         "message": "testing value /spec/version failed: test failed"}
    ]  # fmt: skip


@pytest.mark.parametrize(
    "media",
    ["application/strategic-merge-patch+json", "application/apply-patch+yaml", "text/plain"],
)
async def test_other_patch_types_are_unsupported(emu: Emu, media: str) -> None:
    status, _, body = await emu.call("PATCH", f"{BASE}/{SUCCEEDED}", {}, content_type=media)
    assert status == 415
    assert body["reason"] == "UnsupportedMediaType"
    assert body["message"] == (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    )


async def test_kubernetes_asyncio_merge_patch(emu: Emu, kube: client.CustomObjectsApi) -> None:
    live = emu.live(SUCCEEDED)
    patch = {"metadata": {"labels": {READ: "true"},
                          "resourceVersion": live["metadata"]["resourceVersion"]}}  # fmt: skip
    obj = await kube.patch_namespaced_custom_object(
        "harvesterhci.io", "v1beta1", NS, "upgrades", SUCCEEDED, patch,
        _content_type="application/merge-patch+json",
    )  # fmt: skip
    assert obj["metadata"]["labels"][READ] == "true"
    assert obj["status"] == live["status"]
    with pytest.raises(ApiException) as info:
        await kube.patch_namespaced_custom_object(
            "harvesterhci.io", "v1beta1", NS, "upgrades", SUCCEEDED, patch,
            _content_type="application/merge-patch+json",
        )  # fmt: skip
    assert info.value.status == 409
