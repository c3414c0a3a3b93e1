"""Discovery and health: ``/version``, ``/healthz``, and the group documents clients read
to find ``upgrades.harvesterhci.io/v1beta1`` before they call it."""

from __future__ import annotations

from aiohttp import web

from bff.sandbox.resource import API_VERSION, GROUP, JSON, KIND, PLURAL, VERSION

__all__ = ["KUBE_VERSION"]

KUBE_VERSION = {
    "major": "1",
    "minor": "33",
    "gitVersion": "v1.33.0",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-04-23T00:00:00Z",
    "goVersion": "go1.24.2",
    "compiler": "gc",
    "platform": "linux/amd64",
}


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def version_info(request: web.Request) -> web.Response:
    return web.json_response(KUBE_VERSION)


def group_document(name: str, version: str) -> JSON:
    gv = {"groupVersion": f"{name}/{version}", "version": version}
    return {"name": name, "versions": [gv], "preferredVersion": gv}


async def apis(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [
                group_document("authentication.k8s.io", "v1"),
                group_document(GROUP, VERSION),
            ],
        }
    )


async def api_group(request: web.Request) -> web.Response:
    return web.json_response(
        {"kind": "APIGroup", "apiVersion": "v1", **group_document(GROUP, VERSION)}
    )


async def api_resources(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": API_VERSION,
            "resources": [
                {
                    "name": PLURAL,
                    "singularName": "upgrade",
                    "namespaced": True,
                    "kind": KIND,
                    "verbs": [
                        "delete",
                        "deletecollection",
                        "get",
                        "list",
                        "patch",
                        "create",
                        "update",
                        "watch",
                    ],
                    "storageVersionHash": "5cx8pHt9LWU=",
                }
            ],
        }
    )


async def auth_group(request: web.Request) -> web.Response:
    return web.json_response(
        {"kind": "APIGroup", "apiVersion": "v1", **group_document("authentication.k8s.io", "v1")}
    )


async def auth_resources(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": "authentication.k8s.io/v1",
            "resources": [
                {
                    "name": "tokenreviews",
                    "singularName": "tokenreview",
                    "namespaced": False,
                    "kind": "TokenReview",
                    "verbs": ["create"],
                }
            ],
        }
    )
