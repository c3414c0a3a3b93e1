"""Discovery and health: ``/version``, ``/healthz``, and the group documents clients read
to find ``upgrades.harvesterhci.io/v1beta1`` before they call it."""

from __future__ import annotations

from aiohttp import web

from bff.sandbox.httpio import json_response
from bff.sandbox.resource import GROUP, JSON, KIND, PLURAL, SINGULAR, VERSION

__all__ = ["GROUPS", "KUBE_VERSION", "add_routes"]

KUBE_VERSION = {
    "major": "1",
    "minor": "36",
    "gitVersion": "v1.36.3",
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
    return json_response(KUBE_VERSION)


def group_document(name: str, version: str) -> JSON:
    gv = {"groupVersion": f"{name}/{version}", "version": version}
    return {"name": name, "versions": [gv], "preferredVersion": gv}


def _review(plural: str, kind: str) -> JSON:
    return {
        "name": plural,
        "singularName": plural.removesuffix("s"),
        "namespaced": False,
        "kind": kind,
        "verbs": ["create"],
    }


#: Every group the emulator serves, one version each, and its resources.
GROUPS: dict[str, tuple[str, list[JSON]]] = {
    "authentication.k8s.io": (
        "v1",
        [_review("selfsubjectreviews", "SelfSubjectReview"),
         _review("tokenreviews", "TokenReview")],
    ),
    "authorization.k8s.io": (
        "v1",
        [_review("selfsubjectaccessreviews", "SelfSubjectAccessReview"),
         _review("subjectaccessreviews", "SubjectAccessReview")],
    ),
    GROUP: (
        VERSION,
        [
            {
                "name": PLURAL,
                "singularName": SINGULAR,
                "namespaced": True,
                "kind": KIND,
                "verbs": ["delete", "deletecollection", "get", "list", "patch", "create",
                          "update", "watch"],
                "storageVersionHash": "5cx8pHt9LWU=",
            }
        ],
    ),
}  # fmt: skip


async def legacy_versions(request: web.Request) -> web.Response:
    """``/api``: the core group's versions. Of its resources the emulator has namespaces."""
    host = request.host
    return json_response(
        {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}],
        }
    )


_NAMESPACES: JSON = {
    "name": "namespaces",
    "singularName": "namespace",
    "namespaced": False,
    "kind": "Namespace",
    "verbs": ["get", "list"],
    "shortNames": ["ns"],
}


async def legacy_resources(request: web.Request) -> web.Response:
    """``/api/v1``: of the core resources, only the namespaces."""
    return json_response(
        {"kind": "APIResourceList", "groupVersion": "v1", "resources": [_NAMESPACES]}
    )


async def apis(request: web.Request) -> web.Response:
    return json_response(
        {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [group_document(name, v) for name, (v, _) in GROUPS.items()],
        }
    )


async def api_group(request: web.Request) -> web.Response:
    name = request.match_info["group"]
    if name not in GROUPS:
        raise web.HTTPNotFound
    version = GROUPS[name][0]
    return json_response({"kind": "APIGroup", "apiVersion": "v1", **group_document(name, version)})


async def api_resources(request: web.Request) -> web.Response:
    name, version = request.match_info["group"], request.match_info["version"]
    if name not in GROUPS or GROUPS[name][0] != version:
        raise web.HTTPNotFound
    return json_response(
        {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{name}/{version}",
            "resources": GROUPS[name][1],
        }
    )


def add_routes(router: web.UrlDispatcher) -> None:
    """Health, version and every discovery document."""
    router.add_get("/healthz", healthz)
    router.add_get("/livez", healthz)
    router.add_get("/readyz", healthz)
    router.add_get("/version", version_info)
    router.add_get("/version/", version_info)  # the generated clients ask with the slash
    router.add_get("/api", legacy_versions)
    router.add_get("/api/v1", legacy_resources)
    router.add_get("/apis", apis)
    router.add_get("/apis/{group}", api_group)
    router.add_get("/apis/{group}/{version}", api_resources)
