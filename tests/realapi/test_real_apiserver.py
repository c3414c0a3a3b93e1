"""The real API server harness, and ground truth for the sandbox emulator.

The first tests check the harness itself: the server is up, serves the Upgrade
CRD, holds the seeds, authenticates the static tokens and TokenRequest tokens,
and makes its 401/403 decisions from real RBAC objects.

The rest record what a real API server (upstream kube-apiserver, pinned in
``tests.support.real_apiserver``) does in the situations the
emulator is most likely to get wrong. Each asserts the observed status code
and message, so a change in upstream behaviour, or a harness mistake, shows up
here first. Everything goes through kubernetes-asyncio, the client the BFF uses.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client.rest import ApiException

from bff import captured
from tests.support.real_apiserver import (
    BFF_SERVICE_ACCOUNT,
    CONTROLLER_SERVICE_ACCOUNT,
    GROUP,
    KUBERNETES_VERSION,
    NAMESPACE,
    PLURAL,
    TOKENS,
    VERSION,
    RealApiServer,
    service_account_user,
    unavailable_reason,
)

pytestmark = pytest.mark.real_apiserver

REQUIRED = os.environ.get("BFF_REQUIRE_REAL_APISERVER") == "1"

# Skip the whole module with one line when Go or etcd is missing, before any
# fixture runs; CI sets BFF_REQUIRE_REAL_APISERVER=1 to make that a failure.
if (_why := unavailable_reason()) is not None and not REQUIRED:
    pytest.skip(f"real API server unavailable: {_why}", allow_module_level=True)

MERGE = "application/merge-patch+json"
SUCCEEDED = "hvst-upgrade-7xn6v"
SEED_NAMES = {"hvst-upgrade-7xn6v", "hvst-upgrade-fl4k2", "hvst-upgrade-zjft7"}


@pytest.fixture
def server(real_apiserver: RealApiServer) -> RealApiServer:
    return real_apiserver


@pytest.fixture(autouse=True)
def _fresh_seeds(server: RealApiServer) -> None:
    server.reset()


async def _api_client(
    server: RealApiServer, path: Path, *, token: str | None = None, client_cert: bool = False
) -> client.ApiClient:
    kubeconfig = server.kubeconfig(path, token=token, client_cert=client_cert)
    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    return client.ApiClient(configuration=configuration)


@pytest.fixture
async def admin(server: RealApiServer, tmp_path: Path) -> AsyncIterator[client.CustomObjectsApi]:
    """The system:masters client certificate."""
    async with await _api_client(server, tmp_path / "admin", client_cert=True) as api:
        yield client.CustomObjectsApi(api)


@pytest.fixture
async def viewer(server: RealApiServer, tmp_path: Path) -> AsyncIterator[client.CustomObjectsApi]:
    async with await _api_client(server, tmp_path / "viewer", token="sandbox-viewer") as api:
        yield client.CustomObjectsApi(api)


async def _get(api: client.CustomObjectsApi, name: str = SUCCEEDED) -> dict[str, Any]:
    obj: dict[str, Any] = await api.get_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURAL, name
    )
    return obj


async def _merge(api: client.CustomObjectsApi, body: Any, name: str = SUCCEEDED) -> dict[str, Any]:
    obj: dict[str, Any] = await api.patch_namespaced_custom_object(  # type: ignore[call-arg]
        GROUP, VERSION, NAMESPACE, PLURAL, name, body, _content_type=MERGE
    )
    return obj


async def _put(api: client.CustomObjectsApi, body: Any, name: str = SUCCEEDED) -> dict[str, Any]:
    obj: dict[str, Any] = await api.replace_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURAL, name, body
    )
    return obj


def _status(exc: pytest.ExceptionInfo[ApiException]) -> dict[str, Any]:
    """The ``Status`` object a failed request answered with."""
    body: dict[str, Any] = json.loads(exc.value.body)  # type: ignore[arg-type]
    assert body["kind"] == "Status"
    assert body["code"] == exc.value.status
    return body


# ---------------------------------------------------------------------------
# The harness


async def test_crd_is_served_in_discovery(admin: client.CustomObjectsApi) -> None:
    resources = await admin.get_api_resources(GROUP, VERSION)
    upgrades = [r for r in resources.resources if r.name == PLURAL]
    assert len(upgrades) == 1
    assert upgrades[0].kind == "Upgrade"
    assert upgrades[0].namespaced is True
    assert {"get", "list", "watch", "patch", "update"} <= set(upgrades[0].verbs)
    # No status subresource: that is the whole reason the BFF exists.
    assert not any(r.name == f"{PLURAL}/status" for r in resources.resources)


def test_discovery_and_readyz_are_a_full_servers(server: RealApiServer) -> None:
    # kube-apiserver serves root discovery and the core group, so stock kubectl
    # works without --raw.
    groups = server.request("GET", "/apis").body["groups"]
    assert GROUP in {g["name"] for g in groups}
    assert "v1" in server.request("GET", "/api").body["versions"]
    assert server.request("GET", "/readyz").status == 200
    assert server.request("GET", "/version").body["gitVersion"] == KUBERNETES_VERSION


def test_namespace_and_service_accounts_exist(server: RealApiServer) -> None:
    assert server.request("GET", f"/api/v1/namespaces/{NAMESPACE}").status == 200
    for namespace, name in (BFF_SERVICE_ACCOUNT, CONTROLLER_SERVICE_ACCOUNT):
        r = server.request("GET", f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}")
        assert r.status == 200, (name, r.body)


async def test_seeds_are_present_with_status(admin: client.CustomObjectsApi) -> None:
    listed = await admin.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL)
    by_name = {i["metadata"]["name"]: i for i in listed["items"]}
    assert set(by_name) == SEED_NAMES
    for obj in by_name.values():
        assert obj["status"]["conditions"]
        assert obj["metadata"]["finalizers"] == ["wrangler.cattle.io/harvester-upgrade-controller"]
        assert obj["metadata"]["uid"] != "00000000-0000-0000-0000-000000000000"
    assert by_name[SUCCEEDED]["metadata"]["labels"] == {
        "harvesterhci.io/latestUpgrade": "true",
        "harvesterhci.io/upgradeState": "Succeeded",
    }


async def test_reset_restores_exactly_the_seeds(
    server: RealApiServer, admin: client.CustomObjectsApi
) -> None:
    await _merge(admin, {"metadata": {"labels": {"harvesterhci.io/read-message": "true"}}})
    extra = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Upgrade",
        "metadata": {"name": "extra", "finalizers": ["example.com/hold"]},
        "spec": {"version": "v9"},
    }
    await admin.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, extra)
    await asyncio.to_thread(server.reset)
    listed = await admin.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL)
    assert {i["metadata"]["name"] for i in listed["items"]} == SEED_NAMES
    labels = (await _get(admin))["metadata"]["labels"]
    assert "harvesterhci.io/read-message" not in labels


async def test_viewer_can_list_but_not_patch(viewer: client.CustomObjectsApi) -> None:
    listed = await viewer.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL)
    assert len(listed["items"]) == 3
    with pytest.raises(ApiException) as exc:
        await _merge(viewer, {"metadata": {"labels": {"harvesterhci.io/read-message": "true"}}})
    assert exc.value.status == 403
    assert _status(exc) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f'upgrades.harvesterhci.io "{SUCCEEDED}" is forbidden: User "sandbox-viewer" '
        'cannot patch resource "upgrades" in API group "harvesterhci.io" in the namespace '
        '"harvester-system"',
        "reason": "Forbidden",
        "details": {"name": SUCCEEDED, "group": "harvesterhci.io", "kind": "upgrades"},
        "code": 403,
    }


async def test_unknown_token_is_401(server: RealApiServer, tmp_path: Path) -> None:
    async with await _api_client(server, tmp_path / "kc", token="not-a-token") as api:
        with pytest.raises(ApiException) as exc:
            await client.CustomObjectsApi(api).list_namespaced_custom_object(
                GROUP, VERSION, NAMESPACE, PLURAL
            )
    assert exc.value.status == 401
    assert _status(exc) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("sandbox-admin", 200),
        ("sandbox-viewer", 200),
        ("sandbox-controller", 200),
        ("sandbox-nobody", 403),
        (None, 403),  # anonymous: system:anonymous has no rights on upgrades
    ],
)
def test_token_table_for_list(server: RealApiServer, token: str | None, expected: int) -> None:
    r = server.request("GET", server.upgrades_path(), token=token, anonymous=token is None)
    assert r.status == expected


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("sandbox-admin", 200),
        ("sandbox-viewer", 403),
        ("sandbox-bff", 403),
        ("sandbox-controller", 200),
        ("sandbox-nobody", 403),
    ],
)
def test_token_table_for_put(server: RealApiServer, token: str, expected: int) -> None:
    current = server.request("GET", server.upgrades_path(SUCCEEDED)).body
    r = server.request("PUT", server.upgrades_path(SUCCEEDED), current, token=token)
    assert r.status == expected


def test_static_tokens_are_the_users_they_say(server: RealApiServer) -> None:
    for token, who in TOKENS.items():
        user = server.review_token(token)["user"]
        assert user["username"] == who.username
        assert user["groups"] == [*who.groups, "system:authenticated"]
        assert user.get("uid", "") == who.uid
    assert "authenticated" not in server.review_token("not-a-token")


def test_rights_come_from_rbac_objects_not_from_the_token(server: RealApiServer) -> None:
    """Deleting the viewer's binding takes its reads away; applying it back restores them."""
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "harness:upgrade-viewer"},
    }
    saved = server.request("GET", server.object_path(binding)).body
    assert saved["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "sandbox-viewer"}
    ]
    server.delete(binding)
    try:
        assert server.request("GET", server.upgrades_path(), token="sandbox-viewer").status == 403
    finally:
        server.apply({k: saved[k] for k in ("apiVersion", "kind", "roleRef", "subjects")}
                     | {"metadata": {"name": saved["metadata"]["name"]}})  # fmt: skip
    assert server.request("GET", server.upgrades_path(), token="sandbox-viewer").status == 200


def test_a_token_request_token_authenticates_as_the_service_account(
    server: RealApiServer,
) -> None:
    namespace, name = CONTROLLER_SERVICE_ACCOUNT
    token = server.create_token(namespace, name, seconds=600)
    user = server.review_token(token)["user"]
    assert user["username"] == service_account_user(namespace, name)
    assert "system:serviceaccounts:harvester-system" in user["groups"]
    # Same name, so the same RBAC bindings as the static controller token.
    assert server.request("GET", server.upgrades_path(), token=token).status == 200


async def test_masters_cert_can_impersonate_viewer(server: RealApiServer, tmp_path: Path) -> None:
    async with await _api_client(server, tmp_path / "kc", client_cert=True) as api:
        api.set_default_header("Impersonate-User", "sandbox-viewer")
        api.set_default_header("Impersonate-Group", "system:authenticated")
        crd = client.CustomObjectsApi(api)
        assert (await _get(crd))["metadata"]["name"] == SUCCEEDED
        with pytest.raises(ApiException) as exc:
            await _merge(crd, {"metadata": {"labels": {"harvesterhci.io/read-message": "true"}}})
    assert exc.value.status == 403
    assert 'User "sandbox-viewer" cannot patch resource "upgrades"' in _status(exc)["message"]


def test_bff_service_account_may_impersonate_but_viewer_may_not(server: RealApiServer) -> None:
    as_viewer = {
        "Impersonate-User": "sandbox-viewer",
        "Impersonate-Group": "system:authenticated",
        "Impersonate-Uid": "uid-sandbox-viewer",
        "Impersonate-Extra-Scopes": "upgrades",
    }
    path = server.upgrades_path(SUCCEEDED)
    assert server.request("GET", path, token="sandbox-bff", headers=as_viewer).status == 200
    patch = {"metadata": {"labels": {"harvesterhci.io/read-message": "true"}}}
    r = server.request(
        "PATCH", path, patch, content_type=MERGE, token="sandbox-bff", headers=as_viewer
    )
    assert r.status == 403  # the impersonated viewer's rights apply
    assert 'User "sandbox-viewer" cannot patch resource "upgrades"' in r.body["message"]

    r = server.request(
        "GET", path, token="sandbox-viewer", headers={"Impersonate-User": "sandbox-admin"}
    )
    assert r.status == 403
    # v1.36 tries constrained impersonation first, then the legacy verb; the
    # message names the first check.
    assert r.body["message"] == (
        f'upgrades.harvesterhci.io "{SUCCEEDED}" is forbidden: User "sandbox-viewer" cannot '
        'impersonate-on:user-info:get resource "upgrades" in API group "harvesterhci.io" in '
        'the namespace "harvester-system"'
    )


TOKENREVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"


def _token_review(token: str) -> dict[str, Any]:
    return {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "spec": {"token": token},
    }


def test_the_bff_may_create_token_reviews_and_the_viewer_may_not(server: RealApiServer) -> None:
    # The chart's impersonate mode grants the BFF's service account this.
    r = server.request("POST", TOKENREVIEWS, _token_review("sandbox-viewer"), token="sandbox-bff")
    assert r.status == 201
    assert r.body["status"]["authenticated"] is True
    assert r.body["status"]["user"]["username"] == "sandbox-viewer"
    r = server.request("POST", TOKENREVIEWS, _token_review("sandbox-admin"), token="sandbox-viewer")
    assert r.status == 403
    assert r.body["message"] == (
        'tokenreviews.authentication.k8s.io is forbidden: User "sandbox-viewer" cannot create '
        'resource "tokenreviews" in API group "authentication.k8s.io" at the cluster scope'
    )


def test_a_token_review_of_an_unknown_token_is_unauthenticated_not_an_error(
    server: RealApiServer,
) -> None:
    r = server.request("POST", TOKENREVIEWS, _token_review("bogus"), token="sandbox-bff")
    assert r.status == 201
    # authenticated is false, so omitted; the user is empty.
    assert r.body["status"] == {"user": {}, "error": "invalid bearer token"}


# ---------------------------------------------------------------------------
# Ground truth for the emulator: PUT


async def test_put_without_status_wipes_status(admin: client.CustomObjectsApi) -> None:
    body = await _get(admin)
    del body["status"]
    result = await _put(admin, body)
    assert "status" not in result
    assert "status" not in await _get(admin)
    # Removing status is a change outside metadata, so generation goes up.
    assert result["metadata"]["generation"] == 2


async def test_put_with_stale_status_replaces_status(admin: client.CustomObjectsApi) -> None:
    body = await _get(admin)
    body["status"] = {"conditions": [{"type": "Completed", "status": "Unknown"}]}
    result = await _put(admin, body)
    assert result["status"] == {"conditions": [{"type": "Completed", "status": "Unknown"}]}


async def test_put_without_resource_version_is_422(admin: client.CustomObjectsApi) -> None:
    body = await _get(admin)
    del body["metadata"]["resourceVersion"]
    with pytest.raises(ApiException) as exc:
        await _put(admin, body)
    assert exc.value.status == 422
    status = _status(exc)
    assert status["reason"] == "Invalid"
    assert status["message"] == (
        f'upgrades.harvesterhci.io "{SUCCEEDED}" is invalid: metadata.resourceVersion: '
        "Invalid value: 0: must be specified for an update"
    )
    assert status["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": "Invalid value: 0: must be specified for an update",
            "field": "metadata.resourceVersion",
        }
    ]


CONFLICT_MESSAGE = (
    f'Operation cannot be fulfilled on upgrades.harvesterhci.io "{SUCCEEDED}": the object has '
    "been modified; please apply your changes to the latest version and try again"
)


async def test_put_with_stale_resource_version_is_409(admin: client.CustomObjectsApi) -> None:
    stale = await _get(admin)
    await _merge(admin, {"metadata": {"labels": {"bump": "1"}}})
    with pytest.raises(ApiException) as exc:
        await _put(admin, stale)
    assert exc.value.status == 409
    status = _status(exc)
    assert status["reason"] == "Conflict"
    assert status["message"] == CONFLICT_MESSAGE
    assert status["details"] == {"name": SUCCEEDED, "group": "harvesterhci.io", "kind": "upgrades"}


async def test_put_with_other_uid_is_409(admin: client.CustomObjectsApi) -> None:
    body = await _get(admin)
    body["metadata"]["uid"] = "00000000-0000-0000-0000-000000000000"
    with pytest.raises(ApiException) as exc:
        await _put(admin, body)
    assert exc.value.status == 409
    message = _status(exc)["message"]
    assert message.startswith(
        f'Operation cannot be fulfilled on upgrades.harvesterhci.io "{SUCCEEDED}": '
        "StorageError: invalid object, Code: 4"
    )
    assert "Precondition failed: UID in precondition: 00000000-0000-0000-0000-000000000000" in (
        message
    )


def _client_body(version: str) -> dict[str, Any]:
    return captured.client_body(version)


def test_v104_dismiss_body_as_captured_is_409(server: RealApiServer) -> None:
    # Its resourceVersion "123456" is not the live one.
    r = server.request("PUT", server.upgrades_path(SUCCEEDED), _client_body("v1.0.4"))
    assert r.status == 409
    assert r.body["message"] == CONFLICT_MESSAGE


def test_v104_dismiss_body_wipes_status_and_finalizers(server: RealApiServer) -> None:
    """The bug: the v1.0.4 body, sent straight to the API with a live version."""
    live = server.request("GET", server.upgrades_path(SUCCEEDED)).body
    body = _client_body("v1.0.4")
    body["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
    r = server.request("PUT", server.upgrades_path(SUCCEEDED), body)
    assert r.status == 200
    assert "status" not in r.body
    assert "finalizers" not in r.body["metadata"]  # the body has none, so PUT drops them
    assert r.body["metadata"]["labels"]["harvesterhci.io/read-message"] == "true"
    assert r.body["metadata"]["generation"] == 2
    # Steve's extra top-level fields are pruned, each with a warning.
    assert set(r.body) == {"apiVersion", "kind", "metadata", "spec"}
    assert r.headers["Warning"] == (
        '299 - "unknown field \\"id\\"", 299 - "unknown field \\"type\\""'
    )


def test_v105_dismiss_body_as_captured_is_409_on_uid(server: RealApiServer) -> None:
    live = server.request("GET", server.upgrades_path(SUCCEEDED)).body
    body = _client_body("v1.0.5")
    body["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
    r = server.request("PUT", server.upgrades_path(SUCCEEDED), body)
    assert r.status == 409
    assert (
        "Precondition failed: UID in precondition: 00000000-0000-0000-0000-000000000000"
        in (r.body["message"])
    )


def test_v105_dismiss_body_keeps_the_status_it_carries(server: RealApiServer) -> None:
    live = server.request("GET", server.upgrades_path(SUCCEEDED)).body
    body = _client_body("v1.0.5")
    body["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
    body["metadata"]["uid"] = live["metadata"]["uid"]
    r = server.request("PUT", server.upgrades_path(SUCCEEDED), body)
    assert r.status == 200
    assert r.body["status"] == live["status"]
    assert r.body["metadata"]["finalizers"] == live["metadata"]["finalizers"]
    # Server-set fields in the body are ignored, not applied.
    assert r.body["metadata"]["generation"] == 1
    assert r.body["metadata"]["creationTimestamp"] == live["metadata"]["creationTimestamp"]
    assert set(r.body) == {"apiVersion", "kind", "metadata", "spec", "status"}
    assert r.headers["Warning"] == (
        '299 - "unknown field \\"id\\"", 299 - "unknown field \\"links\\"", '
        '299 - "unknown field \\"type\\""'
    )


# ---------------------------------------------------------------------------
# Ground truth: merge patch


async def test_merge_patch_null_deletes_a_label(admin: client.CustomObjectsApi) -> None:
    result = await _merge(admin, {"metadata": {"labels": {"harvesterhci.io/latestUpgrade": None}}})
    assert result["metadata"]["labels"] == {"harvesterhci.io/upgradeState": "Succeeded"}
    assert result["status"]["conditions"]  # untouched


async def test_merge_patch_resource_version_is_a_precondition(
    admin: client.CustomObjectsApi,
) -> None:
    before = await _get(admin)
    stale_rv = before["metadata"]["resourceVersion"]
    await _merge(admin, {"metadata": {"labels": {"bump": "1"}}})
    patch = {
        "metadata": {
            "labels": {"harvesterhci.io/read-message": "true"},
            "resourceVersion": stale_rv,
        }
    }
    with pytest.raises(ApiException) as exc:
        await _merge(admin, patch)
    assert exc.value.status == 409
    assert _status(exc)["reason"] == "Conflict"
    assert _status(exc)["message"] == CONFLICT_MESSAGE
    assert "harvesterhci.io/read-message" not in (await _get(admin))["metadata"]["labels"]

    current_rv = (await _get(admin))["metadata"]["resourceVersion"]
    patch["metadata"]["resourceVersion"] = current_rv
    result = await _merge(admin, patch)
    assert result["metadata"]["labels"]["harvesterhci.io/read-message"] == "true"
    assert int(result["metadata"]["resourceVersion"]) > int(current_rv)
    assert result["status"] == before["status"]


async def test_merge_patch_with_unparsable_resource_version_is_500(
    admin: client.CustomObjectsApi,
) -> None:
    with pytest.raises(ApiException) as exc:
        await _merge(admin, {"metadata": {"resourceVersion": "abc"}})
    assert exc.value.status == 500
    assert _status(exc)["message"] == 'strconv.ParseUint: parsing "abc": invalid syntax'


async def test_merge_patch_uid_is_not_a_precondition(admin: client.CustomObjectsApi) -> None:
    # Unlike resourceVersion, a uid in a merge patch is an attempted change.
    with pytest.raises(ApiException) as exc:
        await _merge(admin, {"metadata": {"uid": "00000000-0000-0000-0000-000000000000"}})
    assert exc.value.status == 422
    assert _status(exc)["message"] == (
        f'Upgrade.harvesterhci.io "{SUCCEEDED}" is invalid: metadata.uid: Invalid value: '
        '"00000000-0000-0000-0000-000000000000": field is immutable'
    )


async def test_strategic_merge_patch_is_415(admin: client.CustomObjectsApi) -> None:
    with pytest.raises(ApiException) as exc:
        await admin.patch_namespaced_custom_object(  # type: ignore[call-arg]
            GROUP,
            VERSION,
            NAMESPACE,
            PLURAL,
            SUCCEEDED,
            {"metadata": {"labels": {"x": "1"}}},
            _content_type="application/strategic-merge-patch+json",
        )
    assert exc.value.status == 415
    assert _status(exc) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "the body of the request was in an unknown format - accepted media types "
        "include: application/json-patch+json, application/merge-patch+json, "
        "application/apply-patch+yaml",
        "reason": "UnsupportedMediaType",
        "code": 415,
    }


async def test_json_patch_is_accepted(admin: client.CustomObjectsApi) -> None:
    result = await admin.patch_namespaced_custom_object(  # type: ignore[call-arg]
        GROUP,
        VERSION,
        NAMESPACE,
        PLURAL,
        SUCCEEDED,
        [{"op": "add", "path": "/metadata/labels/x", "value": "1"}],
        _content_type="application/json-patch+json",
    )
    assert result["metadata"]["labels"]["x"] == "1"


async def test_failed_json_patch_test_op_is_422(admin: client.CustomObjectsApi) -> None:
    with pytest.raises(ApiException) as exc:
        await admin.patch_namespaced_custom_object(  # type: ignore[call-arg]
            GROUP,
            VERSION,
            NAMESPACE,
            PLURAL,
            SUCCEEDED,
            [{"op": "test", "path": "/metadata/labels/x", "value": "2"}],
            _content_type="application/json-patch+json",
        )
    assert exc.value.status == 422
    assert _status(exc)["message"] == (
        "the server rejected our request due to an error in our request"
    )


LABEL_VALUE_RULE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


async def test_invalid_label_value_is_422(admin: client.CustomObjectsApi) -> None:
    with pytest.raises(ApiException) as exc:
        await _merge(admin, {"metadata": {"labels": {"harvesterhci.io/read-message": "yes!"}}})
    assert exc.value.status == 422
    status = _status(exc)
    assert status["reason"] == "Invalid"
    # Validation errors name the kind, not the resource.
    assert status["message"] == (
        f'Upgrade.harvesterhci.io "{SUCCEEDED}" is invalid: metadata.labels: '
        f'Invalid value: "yes!": {LABEL_VALUE_RULE}'
    )
    assert status["details"]["kind"] == "Upgrade"
    # The same cause is listed several times (three, in v0.36.3).
    causes = status["details"]["causes"]
    assert len(causes) >= 1
    assert all(
        c
        == {
            "reason": "FieldValueInvalid",
            "message": f'Invalid value: "yes!": {LABEL_VALUE_RULE}',
            "field": "metadata.labels",
        }
        for c in causes
    )


async def test_invalid_label_key_is_422(admin: client.CustomObjectsApi) -> None:
    with pytest.raises(ApiException) as exc:
        await _merge(admin, {"metadata": {"labels": {"bad key": "v"}}})
    assert exc.value.status == 422
    assert _status(exc)["message"] == (
        f'Upgrade.harvesterhci.io "{SUCCEEDED}" is invalid: metadata.labels: Invalid value: '
        "\"bad key\": name part must consist of alphanumeric characters, '-', '_' or '.', and "
        "must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
        "'123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
    )


async def test_non_string_label_value_is_422(admin: client.CustomObjectsApi) -> None:
    with pytest.raises(ApiException) as exc:
        await _merge(admin, {"metadata": {"labels": {"x": True}}})
    assert exc.value.status == 422
    message = _status(exc)["message"]
    # The message embeds the whole patched object; only its frame is stable.
    assert message.startswith(' "" is invalid: patch: Invalid value: "{')
    assert message.endswith(
        '": json: cannot unmarshal bool into Go struct field ObjectMeta.labels of type string'
    )


async def test_invalid_spec_type_is_422(admin: client.CustomObjectsApi) -> None:
    with pytest.raises(ApiException) as exc:
        await _merge(admin, {"spec": {"logEnabled": "yes"}})
    assert exc.value.status == 422
    assert _status(exc)["message"] == (
        f'Upgrade.harvesterhci.io "{SUCCEEDED}" is invalid: spec.logEnabled: Invalid value: '
        '"string": spec.logEnabled in body must be of type boolean: "string"'
    )


def test_unknown_field_is_pruned_with_a_warning(server: RealApiServer) -> None:
    r = server.request(
        "PATCH", server.upgrades_path(SUCCEEDED), {"spec": {"foo": "bar"}}, content_type=MERGE
    )
    assert r.status == 200
    assert "foo" not in r.body["spec"]
    assert r.headers["Warning"] == '299 - "unknown field \\"spec.foo\\""'


async def test_label_selector_filters_and_bad_selector_is_400(
    admin: client.CustomObjectsApi,
) -> None:
    listed = await admin.list_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURAL, label_selector="harvesterhci.io/upgradeState=Succeeded"
    )
    assert [i["metadata"]["name"] for i in listed["items"]] == [SUCCEEDED]
    with pytest.raises(ApiException) as exc:
        await admin.list_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, PLURAL, label_selector="a===b"
        )
    assert exc.value.status == 400
    assert _status(exc)["message"] == "unable to parse requirement: found '=', expected: identifier"


# ---------------------------------------------------------------------------
# Ground truth: generation


async def test_generation_counts_every_change_outside_metadata(
    admin: client.CustomObjectsApi,
) -> None:
    # With no status subresource, status is part of the main resource: a
    # status-only change bumps generation just like a spec change. Labels and
    # annotations do not.
    assert (await _get(admin))["metadata"]["generation"] == 1
    after_status = await _merge(admin, {"status": {"previousVersion": "v1.4.3"}})
    assert after_status["metadata"]["generation"] == 2
    after_label = await _merge(
        admin, {"metadata": {"labels": {"harvesterhci.io/read-message": "true"}}}
    )
    assert after_label["metadata"]["generation"] == 2
    after_annotation = await _merge(admin, {"metadata": {"annotations": {"x": "1"}}})
    assert after_annotation["metadata"]["generation"] == 2
    after_spec = await _merge(admin, {"spec": {"version": "v1.5.1"}})
    assert after_spec["metadata"]["generation"] == 3
    unchanged = await _merge(admin, {"spec": {"version": "v1.5.1"}})
    assert unchanged["metadata"]["generation"] == 3
    assert unchanged["metadata"]["resourceVersion"] == after_spec["metadata"]["resourceVersion"]


# ---------------------------------------------------------------------------
# Ground truth: watch


TOO_OLD = re.compile(r"too old resource version: 1 \(\d+\)")


def test_watch_from_expired_version_is_an_error_event(server: RealApiServer) -> None:
    # The watch cache starts at the revision the CRD's storage was created at,
    # so revision 1 is always older than its window: no compaction needed.
    # The answer is HTTP 200 with one ERROR event, not an HTTP 410.
    r = server.request(
        "GET", server.upgrades_path() + "?watch=true&resourceVersion=1&timeoutSeconds=5"
    )
    assert r.status == 200
    assert r.body["type"] == "ERROR"
    event = r.body["object"]
    assert event["kind"] == "Status"
    assert event["code"] == 410
    assert event["reason"] == "Expired"
    assert TOO_OLD.fullmatch(event["message"])


def test_list_at_compacted_version_is_http_410(server: RealApiServer) -> None:
    path = server.upgrades_path() + "?resourceVersion=1&resourceVersionMatch=Exact"
    server.compact_etcd()
    r = server.request("GET", path)
    assert r.status == 410
    assert r.body["reason"] == "Expired"
    assert r.body["message"] == "The resourceVersion for the provided list is too old."


def test_watch_from_future_version_waits_quietly(server: RealApiServer) -> None:
    r = server.request(
        "GET", server.upgrades_path() + "?watch=true&resourceVersion=999999&timeoutSeconds=1"
    )
    assert r.status == 200
    assert r.body is None  # no events at all until the timeout


def test_list_at_future_version_is_504_after_a_wait(server: RealApiServer) -> None:
    r = server.request("GET", server.upgrades_path() + "?resourceVersion=999999", timeout=20)
    assert r.status == 504
    assert r.body["reason"] == "Timeout"
    assert re.fullmatch(
        r"Timeout: Too large resource version: 999999, current: \d+", r.body["message"]
    )
    assert r.body["details"]["retryAfterSeconds"] == 1


async def _watch_from_revision_1(
    api: client.CustomObjectsApi, **kwargs: Any
) -> tuple[ApiException, int]:
    """Watch from an expired version; the client's exception and its request count."""
    calls = 0

    @functools.wraps(api.list_namespaced_custom_object)
    async def listing(*args: Any, **kw: Any) -> Any:
        nonlocal calls
        calls += 1
        return await api.list_namespaced_custom_object(*args, **kw)

    async with watch.Watch() as w:
        try:
            async with asyncio.timeout(20):
                async for _ in w.stream(
                    listing, GROUP, VERSION, NAMESPACE, PLURAL, resource_version="1", **kwargs
                ):
                    pass
        except ApiException as exc:
            return exc, calls
    raise AssertionError("the watch ended without an error")


async def test_kubernetes_asyncio_watch_raises_410(admin: client.CustomObjectsApi) -> None:
    # With timeout_seconds the client raises on the first ERROR event.
    exc, calls = await _watch_from_revision_1(admin, timeout_seconds=5)
    assert calls == 1
    assert exc.status == 410
    assert re.fullmatch(r"Expired: too old resource version: 1 \(\d+\)", exc.reason)  # type: ignore[arg-type]
    assert exc.body is None


async def test_kubernetes_asyncio_watch_forever_retries_once_then_raises_410(
    admin: client.CustomObjectsApi,
) -> None:
    # Without timeout_seconds it reconnects once, from the same expired
    # version, and raises on the second ERROR event.
    exc, calls = await _watch_from_revision_1(admin)
    assert calls == 2
    assert exc.status == 410


async def test_watch_sees_a_label_patch(admin: client.CustomObjectsApi) -> None:
    listed = await admin.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL)
    rv = listed["metadata"]["resourceVersion"]
    await _merge(admin, {"metadata": {"labels": {"harvesterhci.io/read-message": "true"}}})
    events = []
    async with watch.Watch() as w, asyncio.timeout(20):
        async for event in w.stream(
            admin.list_namespaced_custom_object,
            GROUP,
            VERSION,
            NAMESPACE,
            PLURAL,
            resource_version=rv,
            label_selector="harvesterhci.io/read-message=true",
            timeout_seconds=2,
        ):
            events.append((event["type"], event["raw_object"]["metadata"]["name"]))
    # Read until the server ends the watch (2 s), so the connection is not cut mid-answer.
    # An object that starts to match the selector is reported as ADDED.
    assert events == [("ADDED", SUCCEEDED)]
