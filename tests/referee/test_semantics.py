"""The referee: the API semantics the BFF relies on, asserted the same way on both servers.

Every test here runs against the sandbox emulator and against a real
kube-apiserver with one set of expectations (status, reason and,
where the wording matters to a client, the message). A test that passes on
the real server and fails on the emulator is a bug in the emulator.
"""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import pytest

from bff import captured
from tests.support.backends import IN_PROGRESS, MERGE, NAMESPACE, SUCCEEDED, Backend

READ = "harvesterhci.io/read-message"


def resource_version(obj: dict[str, Any]) -> str:
    return str(obj["metadata"]["resourceVersion"])


def v104_body(live: dict[str, Any]) -> dict[str, Any]:
    body = captured.client_body("v1.0.4")
    body["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
    return body


async def test_put_without_status_wipes_status(backend: Backend) -> None:
    live = await backend.read(SUCCEEDED)
    status, body = await backend.call("PUT", backend.path(SUCCEEDED), v104_body(live))
    assert status == 200
    assert "status" not in body
    assert "finalizers" not in body["metadata"]
    assert "id" not in body, "unknown fields are pruned"
    assert body["metadata"]["generation"] == live["metadata"]["generation"] + 1


async def test_put_without_resource_version_is_422(backend: Backend) -> None:
    live = await backend.read(SUCCEEDED)
    del live["metadata"]["resourceVersion"]
    status, body = await backend.call("PUT", backend.path(SUCCEEDED), live)
    assert status == 422
    assert body["reason"] == "Invalid"
    assert "metadata.resourceVersion: Invalid value: 0" in body["message"]
    assert body["message"].endswith("must be specified for an update")


async def test_put_with_stale_resource_version_is_409(backend: Backend) -> None:
    stale = captured.client_body("v1.0.4")
    status, body = await backend.call("PUT", backend.path(SUCCEEDED), stale)
    assert status == 409
    assert body["reason"] == "Conflict"
    assert body["message"] == (
        f'Operation cannot be fulfilled on upgrades.harvesterhci.io "{SUCCEEDED}": the object '
        "has been modified; please apply your changes to the latest version and try again"
    )


async def test_put_with_another_uid_is_409(backend: Backend) -> None:
    live = await backend.read(SUCCEEDED)
    live["metadata"]["uid"] = "11111111-2222-3333-4444-555555555555"
    status, body = await backend.call("PUT", backend.path(SUCCEEDED), live)
    assert status == 409
    assert body["reason"] == "Conflict"
    assert "Precondition failed: UID in precondition" in body["message"]


async def test_merge_patch_null_deletes_a_label(backend: Backend) -> None:
    patched = await backend.merge_patch(
        SUCCEEDED, {"metadata": {"labels": {"harvesterhci.io/latestUpgrade": None}}}
    )
    assert "harvesterhci.io/latestUpgrade" not in patched["metadata"]["labels"]


async def test_resource_version_in_a_merge_patch_is_a_precondition(backend: Backend) -> None:
    live = await backend.read(SUCCEEDED)
    await backend.merge_patch(SUCCEEDED, {"metadata": {"annotations": {"touch": "1"}}})
    stale = {"metadata": {"labels": {READ: "true"}, "resourceVersion": resource_version(live)}}
    status, body = await backend.call("PATCH", backend.path(SUCCEEDED), stale, content_type=MERGE)
    assert status == 409
    assert body["reason"] == "Conflict"
    current = await backend.read(SUCCEEDED)
    fresh = {"metadata": {"labels": {READ: "true"}, "resourceVersion": resource_version(current)}}
    status, body = await backend.call("PATCH", backend.path(SUCCEEDED), fresh, content_type=MERGE)
    assert status == 200
    assert body["metadata"]["labels"][READ] == "true"
    assert body["status"] == current["status"]
    assert body["metadata"]["generation"] == current["metadata"]["generation"]


async def test_an_unparsable_resource_version_in_a_merge_patch_is_500(backend: Backend) -> None:
    """A quirk of the real server (etcd3 storage's ParseUint error); the BFF never sends one."""
    status, body = await backend.call(
        "PATCH",
        backend.path(SUCCEEDED),
        {"metadata": {"resourceVersion": "abc"}},
        content_type=MERGE,
    )
    assert status == 500
    assert body["message"] == 'strconv.ParseUint: parsing "abc": invalid syntax'


async def test_strategic_merge_patch_is_415(backend: Backend) -> None:
    status, body = await backend.call(
        "PATCH",
        backend.path(SUCCEEDED),
        {"metadata": {"labels": {READ: "true"}}},
        content_type="application/strategic-merge-patch+json",
    )
    assert status == 415
    assert body["reason"] == "UnsupportedMediaType"
    assert body["message"] == (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    )


async def test_failed_json_patch_test_is_422(backend: Backend) -> None:
    status, body = await backend.call(
        "PATCH",
        backend.path(SUCCEEDED),
        [{"op": "test", "path": "/spec/version", "value": "v0"}],
        content_type="application/json-patch+json",
    )
    assert status == 422
    assert body["message"].startswith("the server rejected our request due to an error")


@pytest.mark.parametrize(
    ("labels", "needle"),
    [
        ({READ: "yes!"}, 'metadata.labels: Invalid value: "yes!": a valid label must be'),
        ({"bad key": "x"}, 'metadata.labels: Invalid value: "bad key": name part must consist'),
    ],
)
async def test_invalid_labels_are_422(
    backend: Backend, labels: dict[str, str], needle: str
) -> None:
    status, body = await backend.call(
        "PATCH", backend.path(SUCCEEDED), {"metadata": {"labels": labels}}, content_type=MERGE
    )
    assert status == 422
    assert body["reason"] == "Invalid"
    assert body["message"].startswith(f'Upgrade.harvesterhci.io "{SUCCEEDED}" is invalid: ')
    assert needle in body["message"]


async def test_generation_counts_changes_outside_metadata(backend: Backend) -> None:
    live = await backend.read(IN_PROGRESS)
    generation = live["metadata"]["generation"]
    labelled = await backend.merge_patch(IN_PROGRESS, {"metadata": {"labels": {"x": "1"}}})
    assert labelled["metadata"]["generation"] == generation
    noop = await backend.merge_patch(IN_PROGRESS, {"metadata": {"labels": {"x": "1"}}})
    assert noop["metadata"]["resourceVersion"] == labelled["metadata"]["resourceVersion"]
    statused = await backend.merge_patch(IN_PROGRESS, {"status": {"previousVersion": "v0"}})
    assert statused["metadata"]["generation"] == generation + 1


async def test_not_found_is_a_status(backend: Backend) -> None:
    status, body = await backend.call("GET", backend.path("nope"))
    assert status == 404
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'upgrades.harvesterhci.io "nope" not found',
        "reason": "NotFound",
        "details": {"name": "nope", "group": "harvesterhci.io", "kind": "upgrades"},
        "code": 404,
    }


async def test_authentication_and_authorisation(backend: Backend) -> None:
    status, body = await backend.call("GET", backend.path(), token="bogus")
    assert (status, body["reason"]) == (401, "Unauthorized")
    status, body = await backend.call("GET", backend.path(), token=None)
    assert (status, body["reason"]) == (403, "Forbidden")
    status, body = await backend.call(
        "PATCH", backend.path(SUCCEEDED), {"metadata": {"labels": {READ: "true"}}},
        token="sandbox-viewer", content_type=MERGE,
    )  # fmt: skip
    assert status == 403
    assert body["message"] == (
        f'upgrades.harvesterhci.io "{SUCCEEDED}" is forbidden: User "sandbox-viewer" cannot '
        'patch resource "upgrades" in API group "harvesterhci.io" in the namespace '
        f'"{NAMESPACE}"'
    )


async def test_label_selectors(backend: Backend) -> None:
    status, body = await backend.call(
        "GET", backend.path() + "?labelSelector=harvesterhci.io%2FupgradeState%3DFailed"
    )
    assert status == 200
    assert [i["metadata"]["labels"]["harvesterhci.io/upgradeState"] for i in body["items"]] == [
        "Failed"
    ]
    status, body = await backend.call("GET", backend.path() + "?labelSelector=a%3D%3D%3Db")
    assert status == 400
    assert body["reason"] == "BadRequest"


async def test_watch_from_an_expired_version_is_an_error_event(backend: Backend) -> None:
    url = backend.url + backend.path() + "?watch=true&resourceVersion=1&timeoutSeconds=2"
    async with backend.session.get(
        url, headers={"Authorization": "Bearer sandbox-admin"}, ssl=backend.ssl_context or False
    ) as response:
        assert response.status == 200
        line = await asyncio.wait_for(response.content.readline(), 5)
        # The error ends the watch: read to its end, so the connection is not cut mid-answer.
        assert await asyncio.wait_for(response.read(), 5) == b""
    event = json.loads(line)
    assert event["type"] == "ERROR"
    assert event["object"]["code"] == 410
    assert event["object"]["reason"] == "Expired"
    assert event["object"]["message"].startswith("too old resource version: 1 (")


async def test_create_keeps_status_and_generates_names(backend: Backend) -> None:
    live = await backend.read(SUCCEEDED)
    fresh = copy.deepcopy(live)
    fresh["metadata"] = {"generateName": "hvst-upgrade-", "labels": {"a": "b"}}
    status, body = await backend.call("POST", backend.path(), fresh)
    assert status == 201
    assert body["metadata"]["name"].startswith("hvst-upgrade-")
    assert len(body["metadata"]["name"]) == len("hvst-upgrade-") + 5
    assert body["status"] == live["status"]
    assert body["metadata"]["generation"] == 1
