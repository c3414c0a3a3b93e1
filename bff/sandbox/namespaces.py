"""The core ``namespaces`` the emulator has: a fixed few, read-only.

kubectl reads ``/api/v1/namespaces/<ns>`` after a 404 to tell "no such object" from "no
such namespace", so the namespaces must exist as they do on a cluster. They are made
once per emulator, with the store's first revision.
"""

from __future__ import annotations

import uuid

from aiohttp import web

from bff.sandbox.httpio import json_response
from bff.sandbox.keys import EMULATOR_STORE
from bff.sandbox.resource import JSON, NAMESPACES
from bff.sandbox.status import StatusError
from bff.sandbox.store import now_rfc3339

__all__ = ["NAMES", "add_routes"]

NAMES = NAMESPACES
_NAMESPACES = web.AppKey("emulator_namespaces", dict)


def _namespace(name: str, revision: int) -> JSON:
    return {
        "kind": "Namespace",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "uid": str(uuid.uuid4()),
            "resourceVersion": str(revision),
            "creationTimestamp": now_rfc3339(),
            "labels": {"kubernetes.io/metadata.name": name},
        },
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def _all(request: web.Request) -> dict[str, JSON]:
    namespaces: dict[str, JSON] = request.app[_NAMESPACES]
    if not namespaces:
        revision = request.app[EMULATOR_STORE].history_start
        namespaces.update({n: _namespace(n, revision) for n in NAMES})
    return namespaces


async def get(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    namespace = _all(request).get(name)
    if namespace is None:
        raise StatusError.not_found(name, resource="namespaces", group="")
    return json_response(namespace)


async def list_all(request: web.Request) -> web.Response:
    revision = request.app[EMULATOR_STORE].resource_version
    return json_response(
        {
            "kind": "NamespaceList",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": str(revision)},
            "items": [_all(request)[n] for n in sorted(_all(request))],
        }
    )


def add_routes(app: web.Application) -> None:
    app[_NAMESPACES] = {}
    app.router.add_get("/api/v1/namespaces", list_all)
    app.router.add_get("/api/v1/namespaces/{name}", get)
