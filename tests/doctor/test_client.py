"""Doctor's door (bff/doctor/client.py): only reads, access reviews and dry-run writes leave.

The rule itself, request by request; and over real HTTP to a loopback server that
records what arrives: a write without ``dryRun=All`` is refused before it leaves
the process (the server sees nothing), the same write with it goes out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from kubernetes_asyncio import client as k8s

from bff.doctor.client import DoctorClient, RequestRefused, check

UPGRADE = "/apis/harvesterhci.io/v1beta1/namespaces/harvester-system/upgrades/hvst-upgrade-7xn6v"
SAR = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
SSAR = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
REVIEW = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": {}}
SELF_REVIEW = {**REVIEW, "kind": "SelfSubjectAccessReview"}


@pytest.mark.parametrize(
    ("method", "path", "query", "body", "rule"),
    [
        ("GET", UPGRADE, {}, None, "read"),
        ("GET", UPGRADE.rsplit("/", 1)[0], {"labelSelector": "a=b", "limit": "5"}, None, "read"),
        ("POST", SAR, {}, REVIEW, "access review"),
        ("POST", SSAR, {}, SELF_REVIEW, "access review"),
        ("PUT", UPGRADE, {"dryRun": "All"}, {"kind": "Upgrade"}, "dry-run write"),
        ("PATCH", UPGRADE, {"dryRun": "All"}, {"status": None}, "dry-run write"),
    ],
)
def test_what_may_leave(
    method: str, path: str, query: dict[str, str], body: Any, rule: str
) -> None:
    assert check(method, path, query, body) == rule


@pytest.mark.parametrize(
    ("method", "path", "query", "body"),
    [
        ("PUT", UPGRADE, {}, {"kind": "Upgrade"}),
        ("PATCH", UPGRADE, {}, {"status": None}),
        ("PUT", UPGRADE, {"dryRun": "all"}, {}),  # the API server takes only "All"
        ("PUT", UPGRADE, {"dryRun": ""}, {}),
        ("DELETE", UPGRADE, {}, None),
        ("DELETE", UPGRADE, {"dryRun": "All"}, None),
        ("POST", UPGRADE.rsplit("/", 1)[0], {}, {"kind": "Upgrade"}),
        ("POST", UPGRADE.rsplit("/", 1)[0], {"dryRun": "All"}, {"kind": "Upgrade"}),
        ("POST", "/api/v1/namespaces/a/pods/p/exec", {"dryRun": "All"}, None),
        ("PUT", "/api/v1/namespaces/a/services/s/proxy/x", {"dryRun": "All"}, {}),
        ("PATCH", "/api/v1/namespaces/a/pods/p/proxy", {"dryRun": "All"}, {}),
        ("POST", SAR, {}, SELF_REVIEW),  # the wrong kind for the path
        ("POST", SAR, {}, {"apiVersion": "v1", "kind": "Secret"}),
        ("POST", "/apis/authentication.k8s.io/v1/tokenreviews", {}, {"kind": "TokenReview"}),
        ("GET", UPGRADE, {"watch": "true"}, None),
        ("GET", "/apis/../api/v1/secrets", {}, None),
        ("GET", "/api/v1/namespaces/a%2Fb", {}, None),
        ("GET", "https://elsewhere.example/api", {}, None),
    ],
)
def test_what_is_refused(method: str, path: str, query: dict[str, str], body: Any) -> None:
    with pytest.raises(RequestRefused):
        check(method, path, query, body)


@pytest.fixture
async def recorded(aiohttp_server: Callable[..., Any]) -> tuple[TestServer, list[str]]:
    seen: list[str] = []

    async def any_request(request: web.Request) -> web.Response:
        seen.append(f"{request.method} {request.path_qs} {request.headers.get('Authorization')}")
        return web.json_response({"kind": "Upgrade", "metadata": {"name": "x"}})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", any_request)
    server: TestServer = await aiohttp_server(app)
    return server, seen


def _configuration(server: TestServer) -> Any:
    configuration = k8s.Configuration()
    configuration.host = str(server.make_url("")).rstrip("/")
    # As kubernetes-asyncio's kubeconfig loader leaves a token.
    configuration.api_key = {"BearerToken": "Bearer doctor-token"}
    return configuration


async def test_a_real_write_is_refused_before_it_leaves_the_process(
    recorded: tuple[TestServer, list[str]],
) -> None:
    server, seen = recorded
    async with DoctorClient(_configuration(server)) as client:
        for method in ("PUT", "PATCH", "POST", "DELETE"):
            with pytest.raises(RequestRefused, match="would change the cluster"):
                await client.request(method, UPGRADE, body={"metadata": {}})
        assert client.sent == []
    assert seen == []


async def test_a_dry_run_write_and_a_read_go_out(recorded: tuple[TestServer, list[str]]) -> None:
    server, seen = recorded
    async with DoctorClient(_configuration(server)) as client:
        answer = await client.request("PUT", UPGRADE, query={"dryRun": "All"}, body={"a": 1})
        assert answer.status == 200
        assert (await client.get(UPGRADE)).body["kind"] == "Upgrade"
    assert seen == [
        f"PUT {UPGRADE}?dryRun=All Bearer doctor-token",
        f"GET {UPGRADE} Bearer doctor-token",
    ]
