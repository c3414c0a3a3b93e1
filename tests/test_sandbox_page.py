"""The page's sandbox-only extras, over HTTP: present in the sandbox, absent from ``serve``.

``harvester-upgrade-bff sandbox`` marks the page and adds ``sandbox/page.json`` (the
tokens) and ``sandbox/direct-put/{namespace}/{name}`` (extension v1.0.4's body PUT
straight to the emulator: the bug, on purpose). The BFF as ``serve`` builds it has
none of them. The direct PUT uses the caller's own token, so the emulator's RBAC
decides, and bad input is refused before anything reaches the emulator.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aiohttp
import pytest

from bff.demo import legacy_dismiss_body
from bff.sandbox.page import MARKER
from bff.sandbox.runner import Sandbox, running
from bff.settings import Settings
from tests.support.backends import (
    FAILED,
    NAMESPACE,
    SUCCEEDED,
    EmulatorBackend,
    sandbox_emulator,
)

KUBE_PATH = f"/apis/harvesterhci.io/v1beta1/namespaces/{NAMESPACE}/upgrades"
ADMIN = {"Authorization": "Bearer sandbox-admin"}


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with running(Settings(port=0), kube_port=0, interval=0) as started:
        yield started


@pytest.fixture
async def cluster(sandbox: Sandbox) -> AsyncIterator[EmulatorBackend]:
    """The sandbox's emulator, read straight (not through the BFF) as sandbox-admin."""
    async with sandbox_emulator(sandbox) as backend:
        yield backend


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as opened:
        yield opened


async def fetch(
    session: aiohttp.ClientSession, method: str, url: str, **kwargs: Any
) -> tuple[int, Any]:
    async with session.request(method, url, **kwargs) as response:
        text = await response.text()
        try:
            return response.status, json.loads(text)
        except ValueError:
            return response.status, text


async def direct_put(
    session: aiohttp.ClientSession, sandbox: Sandbox, live: dict[str, Any]
) -> tuple[int, Any]:
    """The page's "Direct PUT to the cluster" button: v1.0.4's body for the finished seed."""
    return await fetch(
        session,
        "POST",
        f"{sandbox.bff_url}/sandbox/direct-put/{NAMESPACE}/{SUCCEEDED}",
        json=legacy_dismiss_body(live),
        headers=ADMIN,
    )


async def test_serve_has_no_sandbox_marker_or_routes(emulator_stack: Any) -> None:
    client = emulator_stack.client
    index = await client.get("/")
    assert index.status == 200
    assert MARKER.decode() not in await index.text()
    assert "harvester-upgrade-bff-sandbox" not in await index.text()
    assert (await client.get("/sandbox/page.json", headers=ADMIN)).status == 404
    put = await client.post(
        f"/sandbox/direct-put/{NAMESPACE}/{SUCCEEDED}", json={"metadata": {}}, headers=ADMIN
    )
    assert put.status in (404, 405)
    assert emulator_stack.upstream_writes() == []


async def test_the_sandbox_marks_its_page_and_lists_its_tokens(
    sandbox: Sandbox, session: aiohttp.ClientSession
) -> None:
    status, page = await fetch(session, "GET", sandbox.bff_url + "/")
    assert status == 200
    assert page.count(MARKER.decode()) == 1
    assert page.index(MARKER.decode()) < page.index("</head>")
    status, listed = await fetch(session, "GET", sandbox.bff_url + "/sandbox/page.json")
    assert status == 200
    assert [t["token"] for t in listed["tokens"]] == ["sandbox-admin", "sandbox-viewer"]
    assert listed["guard"] is False
    # Only the page itself is marked.
    status, api_page = await fetch(session, "GET", sandbox.bff_url + "/static/api.html")
    assert status == 200
    assert MARKER.decode() not in api_page


async def test_direct_put_is_the_bug(
    sandbox: Sandbox, cluster: EmulatorBackend, session: aiohttp.ClientSession
) -> None:
    live = await cluster.read(SUCCEEDED)
    status, answer = await direct_put(session, sandbox, live)
    assert status == 200, answer
    assert answer["request"] == f"PUT {KUBE_PATH}/{SUCCEEDED}"
    assert answer["before"]["status"] == live["status"]
    assert "status" not in answer["stored"]
    assert answer["reinitialisations"] == {"before": 0, "after": 1}
    assert answer["after"]["metadata"]["labels"]["harvesterhci.io/upgradeState"] == (
        "PreparingLoggingInfra"
    )
    assert sandbox.controller.reinitialised == [SUCCEEDED]


@pytest.mark.parametrize(
    ("path", "headers", "body", "status", "code"),
    [
        (f"{NAMESPACE}/Not-A-Name", ADMIN, {}, 400, "InvalidName"),
        (f"{NAMESPACE}/{FAILED}", {}, {}, 401, "Unauthorized"),
        (f"{NAMESPACE}/{FAILED}", ADMIN, "[1, 2]", 400, "InvalidBody"),
        (f"{NAMESPACE}/{FAILED}", ADMIN, "not json", 400, "InvalidBody"),
        (
            f"{NAMESPACE}/{FAILED}",
            {"Authorization": "Bearer sandbox-viewer"},
            None,
            403,
            "Forbidden",
        ),
        (f"{NAMESPACE}/hvst-upgrade-none", ADMIN, {}, 404, "NotFound"),
    ],
)
async def test_direct_put_refusals_change_nothing(
    sandbox: Sandbox,
    cluster: EmulatorBackend,
    session: aiohttp.ClientSession,
    path: str,
    headers: dict[str, str],
    body: Any,
    status: int,
    code: str,
) -> None:
    before = await cluster.read(FAILED)
    if body is None:
        body = json.dumps(legacy_dismiss_body(before))
    elif not isinstance(body, str):
        body = json.dumps(body)
    got, answer = await fetch(
        session,
        "POST",
        f"{sandbox.bff_url}/sandbox/direct-put/{path}",
        data=body,
        headers={**headers, "Content-Type": "application/json"},
    )
    assert (got, answer["type"], answer["code"]) == (status, "error", code)
    assert await cluster.read(FAILED) == before
    assert sandbox.controller.reinitialisations == 0


async def test_the_sandbox_extras_follow_the_base_path(session: aiohttp.ClientSession) -> None:
    settings = replace(Settings(port=0), base_path="/harvester-upgrade-bff")
    async with running(settings, kube_port=0, interval=0) as sandbox:
        assert sandbox.bff_url.endswith("/harvester-upgrade-bff")
        status, page = await fetch(session, "GET", sandbox.bff_url + "/")
        assert status == 200
        assert MARKER.decode() in page
        status, _ = await fetch(session, "GET", sandbox.bff_url + "/sandbox/page.json")
        assert status == 200


async def test_with_the_guard_on_the_direct_put_is_repaired(session: aiohttp.ClientSession) -> None:
    settings = replace(Settings(port=0), webhook_port=0)
    async with running(settings, kube_port=0, interval=0) as sandbox:
        _, listed = await fetch(session, "GET", sandbox.bff_url + "/sandbox/page.json")
        assert listed["guard"] is True
        async with sandbox_emulator(sandbox) as cluster:
            live = await cluster.read(SUCCEEDED)
        status, answer = await direct_put(session, sandbox, live)
        assert status == 200, answer
        assert answer["guard"] is True
        assert answer["stored"]["status"] == live["status"]
        assert answer["after"]["status"] == live["status"]
        assert answer["reinitialisations"] == {"before": 0, "after": 0}
        assert any("the cluster guard kept the current status" in w for w in answer["warnings"])
        assert sandbox.controller.reinitialised == []


async def test_the_v104_ippool_edit_loses_allocations_without_the_guard_and_keeps_them_with_it(
    session: aiohttp.ClientSession,
) -> None:
    for webhook_port in (None, 0):
        settings = replace(Settings(port=0), webhook_port=webhook_port)
        async with running(settings, kube_port=0, interval=0) as sandbox:
            url = sandbox.bff_url + "/sandbox/ippool-edit"
            status, answer = await fetch(session, "POST", url, headers=ADMIN)
            assert status == 200, answer
            assert (
                answer["request"]
                == "PUT /apis/loadbalancer.harvesterhci.io/v1beta1/ippools/vip-pool"
            )
            assert answer["before"]["status"]["allocated"]
            assert answer["after"]["spec"]["description"] == "edited on the page"
            if webhook_port is None:
                assert answer["guard"] is False
                assert "status" not in answer["after"]
            else:
                assert answer["guard"] is True
                assert answer["after"]["status"] == answer["before"]["status"]
                assert any("IPPool vip-pool" in w for w in answer["warnings"])
            status, _ = await fetch(session, "POST", url)
            assert status == 401
