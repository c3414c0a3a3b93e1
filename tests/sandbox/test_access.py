"""Emulator access control: authentication (token, anonymous), RBAC by user and group, 403
messages, impersonation (allowed and refused) and TokenReview."""

from __future__ import annotations

import pytest

from bff.sandbox.emulator import EMULATOR_JOURNAL
from bff.sandbox.users import BFF_SERVICE_ACCOUNT
from tests.sandbox.test_protobuf import CAN_I, WHOAMI
from tests.support.backends import (
    BASE,
    MERGE,
    NS,
    SUCCEEDED,
    EmulatorBackend,
)

PATCH = {"metadata": {"labels": {"harvesterhci.io/read-message": "true"}}}


async def test_an_unknown_token_is_unauthorized(emu: EmulatorBackend) -> None:
    for token in ("wrong", "sandbox-admin-but-not-quite"):
        status, _, body = await emu.request("GET", BASE, token=token)
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


async def test_no_token_is_anonymous_and_forbidden(emu: EmulatorBackend) -> None:
    """As kube-apiserver with anonymous auth on (the default, and the real server's answer)."""
    status, _, body = await emu.request("GET", BASE, token=None)
    assert status == 403
    assert body["reason"] == "Forbidden"
    assert 'User "system:anonymous" cannot list resource "upgrades"' in body["message"]
    status, _, _ = await emu.request("GET", "/version", token=None)
    assert status == 200


async def test_viewer_reads_but_cannot_patch(emu: EmulatorBackend) -> None:
    status, _, _ = await emu.request("GET", f"{BASE}/{SUCCEEDED}", token="sandbox-viewer")
    assert status == 200
    status, _, body = await emu.request(
        "PATCH", f"{BASE}/{SUCCEEDED}", PATCH, token="sandbox-viewer", content_type=MERGE
    )
    assert status == 403
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f'upgrades.harvesterhci.io "{SUCCEEDED}" is forbidden: User "sandbox-viewer" '
        'cannot patch resource "upgrades" in API group "harvesterhci.io" in the namespace '
        f'"{NS}"',
        "reason": "Forbidden",
        "details": {"name": SUCCEEDED, "group": "harvesterhci.io", "kind": "upgrades"},
        "code": 403,
    }


async def test_nobody_cannot_list_and_the_message_has_no_name(emu: EmulatorBackend) -> None:
    status, _, body = await emu.request("GET", BASE, token="sandbox-nobody")
    assert status == 403
    assert body["message"] == (
        'upgrades.harvesterhci.io is forbidden: User "sandbox-nobody" cannot list resource '
        f'"upgrades" in API group "harvesterhci.io" in the namespace "{NS}"'
    )
    status, _, body = await emu.request(
        "GET", "/apis/harvesterhci.io/v1beta1/upgrades", token="sandbox-nobody"
    )
    assert body["message"].endswith("at the cluster scope")


@pytest.mark.parametrize(
    ("token", "verb", "allowed"),
    [
        ("sandbox-bff", "PATCH", True),
        ("sandbox-bff", "PUT", False),
        ("sandbox-controller", "PUT", True),
        ("sandbox-controller", "DELETE", False),
        ("sandbox-admin", "DELETE", True),
    ],
)
async def test_rbac_table(emu: EmulatorBackend, token: str, verb: str, allowed: bool) -> None:
    body = emu.live(SUCCEEDED) if verb == "PUT" else PATCH if verb == "PATCH" else None
    status, _, _ = await emu.request(
        verb, f"{BASE}/{SUCCEEDED}", body, token=token,
        content_type=MERGE if verb == "PATCH" else "application/json",
    )  # fmt: skip
    assert (status != 403) is allowed


async def test_impersonated_user_is_authorised_as_themselves(emu: EmulatorBackend) -> None:
    headers = {"Impersonate-User": "sandbox-viewer", "Impersonate-Group": "system:authenticated"}
    status, _, _ = await emu.request(
        "GET", f"{BASE}/{SUCCEEDED}", token="sandbox-bff", headers=headers
    )
    assert status == 200
    status, _, body = await emu.request(
        "PATCH", f"{BASE}/{SUCCEEDED}", PATCH, token="sandbox-bff", headers=headers,
        content_type=MERGE,
    )  # fmt: skip
    assert status == 403
    assert 'User "sandbox-viewer" cannot patch' in body["message"]

    assert emu.app[EMULATOR_JOURNAL].entries[-1].user == "sandbox-viewer"


async def test_impersonating_masters_through_the_bff_account_works(emu: EmulatorBackend) -> None:
    headers = {"Impersonate-User": "sandbox-admin", "Impersonate-Group": "system:masters"}
    status, _, _ = await emu.request(
        "DELETE", f"{BASE}/{SUCCEEDED}", token="sandbox-bff", headers=headers
    )
    assert status == 200


async def test_only_some_may_impersonate(emu: EmulatorBackend) -> None:
    headers = {"Impersonate-User": "sandbox-admin"}
    status, _, body = await emu.request("GET", BASE, token="sandbox-viewer", headers=headers)
    assert status == 403
    assert body["message"] == (
        'users "sandbox-admin" is forbidden: User "sandbox-viewer" cannot impersonate resource '
        '"users" in API group "" at the cluster scope'
    )
    assert body["details"] == {"name": "sandbox-admin", "kind": "users"}


async def test_group_without_user_is_refused(emu: EmulatorBackend) -> None:
    status, _, body = await emu.request(
        "GET", BASE, token="sandbox-bff", headers={"Impersonate-Group": "system:masters"}
    )
    assert status == 500
    assert "without impersonating a user" in body


async def test_token_review(emu: EmulatorBackend) -> None:
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
              "spec": {"token": "sandbox-viewer"}}  # fmt: skip
    path = "/apis/authentication.k8s.io/v1/tokenreviews"
    status, _, body = await emu.request("POST", path, review, token="sandbox-bff")
    assert status == 201
    assert body["status"] == {
        "authenticated": True,
        "user": {"username": "sandbox-viewer", "groups": ["system:authenticated"]},
    }
    review["spec"] = {"token": "nope"}
    status, _, body = await emu.request("POST", path, review, token="sandbox-bff")
    assert (status, body["status"]) == (201, {"user": {}})
    status, _, body = await emu.request("POST", path, review, token="sandbox-viewer")
    assert status == 403
    assert body["message"] == (
        'tokenreviews.authentication.k8s.io is forbidden: User "sandbox-viewer" cannot create '
        'resource "tokenreviews" in API group "authentication.k8s.io" at the cluster scope'
    )


async def test_bff_identity_is_a_service_account(emu: EmulatorBackend) -> None:
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
              "spec": {"token": "sandbox-bff"}}  # fmt: skip
    _, _, body = await emu.request(
        "POST", "/apis/authentication.k8s.io/v1/tokenreviews", review, token="sandbox-bff"
    )
    user = body["status"]["user"]
    assert user["username"] == BFF_SERVICE_ACCOUNT
    assert "system:serviceaccounts:harvester-system" in user["groups"]


SSAR = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"


@pytest.mark.parametrize(
    ("token", "verb", "allowed"),
    [("sandbox-admin", "patch", True), ("sandbox-viewer", "patch", False),
     ("sandbox-viewer", "list", True), ("sandbox-nobody", "get", False)],
)  # fmt: skip
async def test_self_subject_access_review(
    emu: EmulatorBackend, token: str, verb: str, allowed: bool
) -> None:
    attributes = {"namespace": NS, "verb": verb, "group": "harvesterhci.io", "resource": "upgrades"}
    body = {"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
            "spec": {"resourceAttributes": attributes}}  # fmt: skip
    status, _, answer = await emu.request("POST", SSAR, body, token=token)
    assert status == 201, answer
    assert answer == {**body, "metadata": {}, "status": {"allowed": allowed}}


async def test_self_subject_access_review_from_kubectl_protobuf(emu: EmulatorBackend) -> None:
    status, _, answer = await emu.request(
        "POST", SSAR, raw=CAN_I, content_type="application/vnd.kubernetes.protobuf",
        token="sandbox-viewer",
    )  # fmt: skip
    assert status == 201, answer
    assert answer["status"] == {"allowed": False}
    assert answer["spec"]["resourceAttributes"]["verb"] == "patch"


async def test_a_review_without_attributes_is_invalid_as_the_server_words_it(
    emu: EmulatorBackend,
) -> None:
    status, _, answer = await emu.request("POST", SSAR, {"spec": {}}, token="sandbox-viewer")
    assert status == 422
    assert answer["message"] == (
        '.authorization.k8s.io "" is invalid: spec.resourceAttributes: Invalid value: null: '
        "exactly one of nonResourceAttributes or resourceAttributes must be specified"
    )
    assert answer["details"] == {
        "group": "authorization.k8s.io",
        "causes": [
            {
                "reason": "FieldValueInvalid",
                "message": "Invalid value: null: exactly one of nonResourceAttributes or "
                "resourceAttributes must be specified",
                "field": "spec.resourceAttributes",
            }
        ],
    }


@pytest.mark.parametrize("protobuf", [False, True])
async def test_self_subject_review_says_who_is_asking(emu: EmulatorBackend, protobuf: bool) -> None:
    path = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
    if protobuf:
        status, _, answer = await emu.request(
            "POST", path, raw=WHOAMI, content_type="application/vnd.kubernetes.protobuf",
            token="sandbox-viewer",
        )  # fmt: skip
    else:
        status, _, answer = await emu.request("POST", path, {}, token="sandbox-viewer")
    assert status == 201, answer
    assert answer["kind"] == "SelfSubjectReview"
    assert answer["status"] == {
        "userInfo": {"username": "sandbox-viewer", "groups": ["system:authenticated"]}
    }


async def test_anonymous_may_not_review(emu: EmulatorBackend) -> None:
    status, _, answer = await emu.request("POST", SSAR, {"spec": {}}, token=None)
    assert status == 403
    assert answer["message"] == (
        'selfsubjectaccessreviews.authorization.k8s.io is forbidden: User "system:anonymous" '
        'cannot create resource "selfsubjectaccessreviews" in API group '
        '"authorization.k8s.io" at the cluster scope'
    )
