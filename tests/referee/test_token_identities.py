"""Who the tokens are, and what a TokenReview says, asserted the same way on both servers.

The sandbox emulator and the real kube-apiserver (static token file) must agree on
every token the suite uses, or a test that passes on one would be judging another
user on the other.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.backends import Backend

TOKENREVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"
TOKENS = ("sandbox-admin", "sandbox-viewer", "sandbox-bff", "sandbox-controller", "sandbox-nobody")


async def review(backend: Backend, token: str, *, as_token: str = "sandbox-bff") -> Any:
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
            "spec": {"token": token}}  # fmt: skip
    status, answer = await backend.call("POST", TOKENREVIEWS, body, token=as_token)
    assert status == 201, answer
    return answer["status"]


@pytest.mark.parametrize("token", TOKENS)
async def test_each_token_is_the_same_user_on_both_servers(backend: Backend, token: str) -> None:
    status = await review(backend, token)
    assert status["authenticated"] is True
    user = status["user"]
    expected: dict[str, tuple[str, tuple[str, ...]]] = {
        "sandbox-admin": ("sandbox-admin", ("system:masters", "system:authenticated")),
        "sandbox-viewer": ("sandbox-viewer", ("system:authenticated",)),
        "sandbox-nobody": ("sandbox-nobody", ("system:authenticated",)),
        "sandbox-bff": (
            "system:serviceaccount:harvester-system:harvester-upgrade-bff",
            sa_groups := ("system:serviceaccounts", "system:serviceaccounts:harvester-system",
                          "system:authenticated"),
        ),
        "sandbox-controller": ("system:serviceaccount:harvester-system:harvester", sa_groups),
    }  # fmt: skip
    name, groups = expected[token]
    assert user["username"] == name
    assert tuple(user["groups"]) == groups
    # Service accounts carry a uid (the BFF sends it on as Impersonate-Uid).
    assert bool(user.get("uid")) == (token in ("sandbox-bff", "sandbox-controller"))


async def test_an_unknown_token_is_not_authenticated(backend: Backend) -> None:
    status = await review(backend, "not-a-token")
    assert not status.get("authenticated")
    assert not status.get("user")


async def test_only_the_bff_and_admin_may_create_token_reviews(backend: Backend) -> None:
    assert (await review(backend, "sandbox-viewer", as_token="sandbox-admin"))["authenticated"]
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
            "spec": {"token": "sandbox-admin"}}  # fmt: skip
    status, answer = await backend.call("POST", TOKENREVIEWS, body, token="sandbox-viewer")
    assert status == 403
    assert answer["reason"] == "Forbidden"
    assert answer["message"] == (
        'tokenreviews.authentication.k8s.io is forbidden: User "sandbox-viewer" cannot create '
        'resource "tokenreviews" in API group "authentication.k8s.io" at the cluster scope'
    )
