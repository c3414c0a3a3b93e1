"""The access reviews the read cache asks, answered the same by the emulator and kube-apiserver.

SelfSubjectAccessReview (with the caller's own token) and SubjectAccessReview
(with the BFF's identity, about another user): the same ``status.allowed`` for
each identity and verb, and the same refusals of who may not ask.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.backends import NAMESPACE, Backend

SSAR = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
SAR = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
VERBS = ("get", "list", "watch", "patch", "update", "delete")


def _attributes(verb: str) -> dict[str, str]:
    return {"group": "harvesterhci.io", "version": "v1beta1", "resource": "upgrades",
            "verb": verb, "namespace": NAMESPACE}  # fmt: skip


def _self_review(verb: str) -> dict[str, Any]:
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": _attributes(verb)}}  # fmt: skip


def _review(user: str, verb: str, groups: tuple[str, ...] = ()) -> dict[str, Any]:
    spec: dict[str, Any] = {"user": user, "resourceAttributes": _attributes(verb)}
    if groups:
        spec["groups"] = list(groups)
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": spec}  # fmt: skip


EXPECTED = {
    "sandbox-viewer": {"get", "list", "watch"},
    "sandbox-nobody": set(),
}


@pytest.mark.parametrize("token", sorted(EXPECTED))
async def test_self_subject_access_reviews(backend: Backend, token: str) -> None:
    allowed = set()
    for verb in VERBS:
        status, body = await backend.call("POST", SSAR, _self_review(verb), token=token)
        assert status == 201, body
        assert body["kind"] == "SelfSubjectAccessReview"
        if body["status"]["allowed"]:
            allowed.add(verb)
    assert allowed == EXPECTED[token]


async def test_an_unknown_token_cannot_ask(backend: Backend) -> None:
    status, body = await backend.call("POST", SSAR, _self_review("get"), token="no-such-token")
    assert status == 401
    assert body["reason"] == "Unauthorized"


@pytest.mark.parametrize("user", sorted(EXPECTED))
async def test_subject_access_reviews_by_the_bff(backend: Backend, user: str) -> None:
    allowed = set()
    for verb in VERBS:
        review = _review(user, verb, ("system:authenticated",))
        status, body = await backend.call("POST", SAR, review, token="sandbox-bff")
        assert status == 201, body
        assert body["kind"] == "SubjectAccessReview"
        if body["status"].get("allowed"):
            allowed.add(verb)
    assert allowed == EXPECTED[user]


async def test_a_user_without_the_right_cannot_ask_about_others(backend: Backend) -> None:
    status, body = await backend.call(
        "POST", SAR, _review("sandbox-viewer", "get"), token="sandbox-viewer"
    )
    assert status == 403
    assert body["message"] == (
        'subjectaccessreviews.authorization.k8s.io is forbidden: User "sandbox-viewer" '
        'cannot create resource "subjectaccessreviews" in API group "authorization.k8s.io" '
        "at the cluster scope"
    )
