"""bff.kube.reviewers: the questions the BFF asks the API server, answered by the
emulator (which answers them as kube-apiserver does, from its sandbox users and
RBAC): who a token is, and whether a caller may read or patch Upgrades."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bff import kube
from bff.identities import TokenCaller
from bff.sandbox.emulator import create_emulator_app
from bff.sandbox.kubeconfig import write_kubeconfig
from tests.support.backends import NAMESPACE


@pytest.fixture
async def upstream(aiohttp_server: Callable[..., Any], tmp_path: Path) -> AsyncIterator[Any]:
    emulator = await aiohttp_server(create_emulator_app())
    url = str(emulator.make_url("")).rstrip("/")
    config = write_kubeconfig(tmp_path / "k", url, token="sandbox-bff")
    async with kube.connect(kube.UpstreamOptions(kubeconfig=str(config)), impersonate=True) as up:
        yield up


async def test_a_token_is_reviewed_into_the_user_it_belongs_to(upstream: Any) -> None:
    viewer = await upstream.reviewer.review("sandbox-viewer")
    assert viewer is not None
    assert viewer.username == "sandbox-viewer"
    assert "system:authenticated" in viewer.groups
    assert await upstream.reviewer.review("not-a-token") is None


async def test_access_is_what_rbac_grants_asked_either_way(upstream: Any) -> None:
    access = upstream.access
    viewer = await upstream.reviewer.review("sandbox-viewer")
    nobody = await upstream.reviewer.review("sandbox-nobody")
    assert await access.subject_review(viewer, "list", NAMESPACE)
    assert not await access.subject_review(viewer, "patch", NAMESPACE)
    assert not await access.subject_review(nobody, "list", NAMESPACE)
    # The same question asked with the caller's own token.
    assert await access.self_review(TokenCaller("sandbox-viewer"), "get", NAMESPACE)
    assert not await access.self_review(TokenCaller("sandbox-nobody"), "get", NAMESPACE)
