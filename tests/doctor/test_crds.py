"""bff.doctor.crds: the guarded resources are the webhook's rules (else the default table),
and each is judged by its CRD as a loopback stand-in for the API server serves it, through
doctor's real client: missing, its version not served, a status subresource (the guard
not needed), or none (the guard needed). On a real kube-apiserver with Harvester's CRDs:
tests/doctor/test_doctor_real_apiserver.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from kubernetes_asyncio import client as k8s

from bff.admission.resources import GuardTable
from bff.doctor import crds
from bff.doctor.client import DoctorClient
from bff.doctor.release import Release
from bff.identities import AuthMode

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def crd(version: str, *, served: bool = True, status: bool = False) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": version, "served": served, "storage": True}
    if status:
        entry["subresources"] = {"status": {}}
    return {"kind": "CustomResourceDefinition", "spec": {"versions": [entry]}}


def release(rules: list[dict[str, Any]] | None) -> Release:
    configuration = None
    if rules is not None:
        configuration = {"webhooks": [{"name": "only", "rules": rules}]}
    return Release(
        name="bff", namespace="harvester-system", upgrades_namespace="harvester-system",
        deployment=None, webhook_configuration=configuration, service_account="bff",
        auth_mode=AuthMode.PASSTHROUGH, read_cache=True, rancher=False, served_namespace=None,
    )  # fmt: skip


RULES = [
    {"apiGroups": ["harvesterhci.io"], "apiVersions": ["v1beta1"],
     "resources": ["upgrades", "upgrades/status", "settings"]},
    {"apiGroups": ["loadbalancer.harvesterhci.io"], "apiVersions": ["v1beta1"],
     "resources": ["ippools"]},
]  # fmt: skip


def test_the_guarded_resources_are_the_webhooks_rules_else_the_table() -> None:
    assert [g.name for g in crds.guarded(release(RULES))] == [
        "upgrades.harvesterhci.io",
        "settings.harvesterhci.io",
        "ippools.loadbalancer.harvesterhci.io",
    ]
    assert [g.name for g in crds.guarded(release(None))] == [
        f"{row.resource}.{row.group}" for row in GuardTable().rows
    ]


async def _check(aiohttp_server: Callable[..., Any], served: dict[str, dict[str, Any]]) -> Any:
    async def answer(request: web.Request) -> web.Response:
        body = served.get(request.match_info["name"])
        return web.json_response(body or {"kind": "Status"}, status=200 if body else 404)

    app = web.Application()
    app.router.add_get(CRDS + "/{name}", answer)
    server: TestServer = await aiohttp_server(app)
    configuration = k8s.Configuration(host=str(server.make_url("")).rstrip("/"))
    async with DoctorClient(configuration) as client:
        return await crds.check(client, release(RULES))


async def test_every_crd_without_status_is_healthy(aiohttp_server: Callable[..., Any]) -> None:
    found = await _check(aiohttp_server, {
        "upgrades.harvesterhci.io": crd("v1beta1"),
        "settings.harvesterhci.io": crd("v1beta1"),
        "ippools.loadbalancer.harvesterhci.io": crd("v1beta1"),
    })  # fmt: skip
    assert found.status == "ok"
    assert found.summary == (
        "the 3 guarded CRDs exist and each lacks a status subresource, so the guard is needed"
    )


async def test_a_status_subresource_says_the_guard_is_not_needed_there(
    aiohttp_server: Callable[..., Any],
) -> None:
    found = await _check(aiohttp_server, {
        "upgrades.harvesterhci.io": crd("v1beta1"),
        "settings.harvesterhci.io": crd("v1beta1", status=True),
        "ippools.loadbalancer.harvesterhci.io": crd("v1beta1"),
    })  # fmt: skip
    assert found.status == "ok"
    assert found.summary.endswith(
        "2 lack a status subresource; guard not needed for settings.harvesterhci.io"
    )


async def test_a_missing_crd_or_version_is_a_problem(aiohttp_server: Callable[..., Any]) -> None:
    found = await _check(aiohttp_server, {
        "upgrades.harvesterhci.io": crd("v1beta1"),
        "settings.harvesterhci.io": crd("v1beta1", served=False),
    })  # fmt: skip
    assert found.status == "problem"
    assert found.summary == (
        "2 guarded resource(s) not served by this cluster: settings.harvesterhci.io/v1beta1, "
        "ippools.loadbalancer.harvesterhci.io"
    )
    assert "ippools.loadbalancer.harvesterhci.io: no such CRD" in found.details
