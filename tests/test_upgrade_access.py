"""``GET /api/{version}/upgrades/access``: what the caller may do, asked of the API server.

The page enables Dismiss only for a caller who may patch Upgrades. The answer comes
from access reviews (a SelfSubjectAccessReview with the caller's own token, or a
SubjectAccessReview for the impersonated user), on the emulator and on the real
kube-apiserver; with or without the read cache; never a write; 401 and 403 as a list
read would answer them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from bff.identities import AuthMode
from tests.conftest import BFF_TOKEN, Stack
from tests.support.backends import NAMESPACE, Backend

PATH = "/api/v1.0.5/upgrades/access"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def reviews(stack: Stack, since: int = 0) -> list[Any]:
    return [r for r in stack.recorder.requests[since:] if "accessreviews" in r.path]


@pytest.mark.parametrize("read_cache", [True, False])
@pytest.mark.parametrize(("token", "patch"), [("sandbox-admin", True), ("sandbox-viewer", False)])
async def test_the_answer_is_the_api_servers_decision_for_this_caller(
    backend: Backend,
    stack_factory: Callable[..., Awaitable[Stack]],
    read_cache: bool,
    token: str,
    patch: bool,
) -> None:
    stack = await stack_factory(backend, read_cache=read_cache)
    before = len(stack.recorder.requests)
    for version in ("v1.0.5", "v1.0.4"):
        answer = await stack.client.get(f"/api/{version}/upgrades/access", headers=bearer(token))
        assert answer.status == 200, await answer.text()
        assert await answer.json() == {"type": "access", "namespace": NAMESPACE, "patch": patch}
    asked = reviews(stack, before)
    assert asked, "no access review was asked"
    assert {r.path for r in asked} == {"/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"}
    assert all(r.headers["Authorization"] == f"Bearer {token}" for r in asked)
    verbs = [r.body["spec"]["resourceAttributes"]["verb"] for r in asked]
    assert set(verbs) == {"list", "patch"}
    assert all(r.body["spec"]["resourceAttributes"]["namespace"] == NAMESPACE for r in asked)
    # Reviews are questions: nothing but them went upstream for the caller, nothing was written.
    callers = [r for r in stack.recorder.requests[before:] if r.headers.get("Authorization")
               != BFF_TOKEN]  # fmt: skip
    assert callers == asked
    assert stack.upstream_writes() == []


@pytest.mark.parametrize(("token", "status"), [("sandbox-nobody", 403), ("no-such-token", 401)])
async def test_a_caller_who_may_not_read_is_refused_as_a_list_would_be(
    backend: Backend, stack: Stack, token: str, status: int
) -> None:
    answer = await stack.client.get(PATH, headers=bearer(token))
    assert answer.status == status
    body = await answer.json()
    assert (body["type"], body["status"]) == ("error", status)
    listed = await stack.client.get("/api/v1.0.5/upgrades", headers=bearer(token))
    assert listed.status == status


async def test_without_a_credential_nothing_is_asked(emulator_stack: Stack) -> None:
    before = len(emulator_stack.recorder.requests)
    answer = await emulator_stack.client.get(PATH)
    assert answer.status == 401
    assert reviews(emulator_stack, before) == []


async def test_impersonate_mode_asks_for_the_reviewed_user(
    backend: Backend, stack_factory: Callable[..., Awaitable[Stack]]
) -> None:
    stack = await stack_factory(backend, auth_mode=AuthMode.IMPERSONATE)
    for token, patch in (("sandbox-admin", True), ("sandbox-viewer", False)):
        before = len(stack.recorder.requests)
        answer = await stack.client.get(PATH, headers=bearer(token))
        assert answer.status == 200, await answer.text()
        assert (await answer.json())["patch"] is patch
        asked = reviews(stack, before)
        assert {r.path.rsplit("/", 1)[1] for r in asked} == {"subjectaccessreviews"}
        assert {r.body["spec"]["user"] for r in asked} == {token}
        assert all(r.headers["Authorization"] == BFF_TOKEN for r in asked)
    assert stack.upstream_writes() == []
