"""A simulated Rancher: its cluster proxy, and Steve's create of an Upgrade.

What it does, as Rancher does it:

* It authenticates Rancher tokens (``token-<id>:<secret>``), sent as
  ``Authorization: Bearer`` or as the ``R_SESS`` cookie. An unknown or missing
  token is a 401. A cookie-authenticated request that changes something needs
  ``X-API-CSRF`` equal to the ``CSRF`` cookie (403 otherwise).
* ``/k8s/clusters/<id>/<path>`` is forwarded to that cluster's API server as
  Rancher's own identity (its service account's token) with ``Impersonate-User``,
  ``Impersonate-Group`` and ``Impersonate-Extra-*`` for the Rancher user. The
  caller's credential and any ``Impersonate-*`` header the caller sent are not
  forwarded. An id Rancher does not know is a 404; so is any other path.
* Steve's collection POST ``[/k8s/clusters/<id>]/v1/harvester/harvesterhci.io.upgrades/<ns>``
  (the dashboard's Upgrade button) creates the Upgrade as the user and answers
  it Steve-shaped, 201. Without the prefix it is the ``local`` cluster.
* ``GET /ping`` answers ``pong`` without a token.

The emulator does the authorisation: the Rancher users and what they may do
are rows of its table (:mod:`bff.sandbox.users`). Every request that
reached a cluster is kept in :data:`RANCHER_RECORD`, for tests.
"""

from __future__ import annotations

import hmac
import json
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, MultiMapping

from bff.abandoned import Dropped
from bff.sandbox.users import (
    ALL_AUTHENTICATED,
    RANCHER_ADMIN,
    RANCHER_VIEWER,
)

__all__ = [
    "RANCHER_RECORD",
    "RANCHER_SERVICE_TOKEN",
    "RANCHER_TOKENS",
    "Forwarded",
    "RancherUser",
    "Upstream",
    "create_rancher_app",
]

#: The token the simulated Rancher presents to the clusters it proxies.
RANCHER_SERVICE_TOKEN = "sandbox-rancher"
STEVE_UPGRADES = "/v1/harvester/harvesterhci.io.upgrades"
STEVE_TYPE = "harvesterhci.io.upgrade"
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Response headers passed back from the cluster; nothing else.
_PASSED_BACK = ("Content-Type", "Warning", "Retry-After", "Audit-Id")


@dataclass(frozen=True)
class RancherUser:
    """A Rancher user, as Rancher impersonates it on a cluster."""

    id: str
    username: str
    groups: tuple[str, ...] = ("system:cattle:authenticated",)

    def impersonation(self) -> CIMultiDict[str]:
        headers: CIMultiDict[str] = CIMultiDict()
        headers["Impersonate-User"] = self.id
        for group in (*self.groups, ALL_AUTHENTICATED):
            headers.add("Impersonate-Group", group)
        headers["Impersonate-Extra-Principalid"] = f"local://{self.id}"
        headers["Impersonate-Extra-Username"] = self.username
        return headers


RANCHER_TOKENS: Mapping[str, RancherUser] = {
    "token-sbadm:sandboxrancheradminsecret": RancherUser(RANCHER_ADMIN, "admin"),
    "token-sbvwr:sandboxrancherviewersecret": RancherUser(RANCHER_VIEWER, "viewer"),
}


@dataclass(frozen=True)
class Upstream:
    """One cluster behind the proxy: its API server's URL and how to trust it."""

    url: str
    ssl: ssl.SSLContext | None = None
    #: The proxy's own bearer token on that cluster.
    token: str = RANCHER_SERVICE_TOKEN


@dataclass(frozen=True)
class Forwarded:
    """One request the proxy sent to a cluster (never a token)."""

    method: str
    #: The path as the caller sent it, ``/k8s/clusters/<id>/...`` or a Steve path.
    path: str
    cluster: str
    user: str
    status: int


@dataclass
class Record:
    forwarded: list[Forwarded] = field(default_factory=list)

    def paths(self) -> list[str]:
        return [f.path for f in self.forwarded]

    def clear(self) -> None:
        self.forwarded.clear()


RANCHER_RECORD = web.AppKey("rancher_record", Record)
_CLUSTERS = web.AppKey("rancher_clusters", dict[str, Upstream])
_SESSION = web.AppKey("rancher_session", aiohttp.ClientSession)
_DROPPED = web.AppKey("rancher_dropped", Dropped)


def _error(status: int, code: str, message: str) -> web.Response:
    body = {"type": "error", "status": str(status), "code": code, "message": message}
    return web.json_response(body, status=status)


class _Refused(Exception):
    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


def _authenticate(request: web.Request) -> RancherUser:
    header = request.headers.get("Authorization", "")
    from_cookie = not header
    scheme, _, token = header.partition(" ")
    if from_cookie:
        token = request.cookies.get("R_SESS", "")
    elif scheme.lower() != "bearer":
        token = ""
    user = RANCHER_TOKENS.get(token.strip())
    if user is None:
        raise _Refused(_error(401, "Unauthorized", "must authenticate"))
    if from_cookie and request.method in _UNSAFE:
        sent = request.headers.get("X-API-CSRF", "").encode()
        expected = request.cookies.get("CSRF", "").encode()
        if not sent or not hmac.compare_digest(sent, expected):
            raise _Refused(_error(403, "InvalidCSRFToken", "Invalid CSRF token"))
    return user


def _cluster(request: web.Request, cluster: str) -> Upstream:
    upstream = request.app[_CLUSTERS].get(cluster)
    if upstream is None:
        message = f'clusters.management.cattle.io "{cluster[:63]}" not found'
        raise _Refused(_error(404, "NotFound", message))
    return upstream


async def _send(
    request: web.Request,
    user: RancherUser,
    cluster: str,
    method: str,
    path: str,
    body: bytes | None,
    content_type: str | None,
    query: MultiMapping[str] | None = None,
) -> aiohttp.ClientResponse:
    upstream = _cluster(request, cluster)
    headers = user.impersonation()
    headers["Authorization"] = f"Bearer {upstream.token}"
    headers["Accept"] = request.headers.get("Accept", "application/json")
    if content_type:
        headers["Content-Type"] = content_type
    response = await request.app[_SESSION].request(
        method,
        upstream.url.rstrip("/") + path,
        params=query,
        data=body,
        headers=headers,
        ssl=upstream.ssl or False,
    )
    request.app[RANCHER_RECORD].forwarded.append(
        Forwarded(method, request.path, cluster, user.id, response.status)
    )
    return response


async def _proxy(request: web.Request) -> web.StreamResponse:
    try:
        user = _authenticate(request)
        cluster = request.match_info["cluster"]
        _cluster(request, cluster)
    except _Refused as refused:
        return refused.response
    tail = request.match_info["tail"]
    body = await request.read() if request.can_read_body else None
    content_type = request.headers.get("Content-Type") if body else None
    async with await _send(request, user, cluster, request.method, "/" + tail, body,
                           content_type, request.query) as upstream:  # fmt: skip
        response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
        for name in _PASSED_BACK:
            for value in upstream.headers.getall(name, []):
                response.headers.add(name, value)
        return await request.app[_DROPPED].relay(request, response, upstream)


async def _steve_create(request: web.Request) -> web.Response:
    """Steve's POST to the namespace path of a collection: create, as the user."""
    try:
        user = _authenticate(request)
        cluster = request.match_info.get("cluster", "local")
        _cluster(request, cluster)
    except _Refused as refused:
        return refused.response
    namespace = request.match_info["namespace"]
    try:
        given = json.loads(await request.read())
    except ValueError:
        return _error(400, "InvalidBodyContent", "the request body is not JSON")
    if not isinstance(given, dict):
        return _error(422, "InvalidFormat", "the request body is not an object")
    obj: dict[str, Any] = {k: v for k, v in given.items() if k not in ("type", "id", "links")}
    obj["apiVersion"] = "harvesterhci.io/v1beta1"
    obj["kind"] = "Upgrade"
    path = f"/apis/harvesterhci.io/v1beta1/namespaces/{namespace}/upgrades"
    body = json.dumps(obj).encode()
    async with await _send(request, user, cluster, "POST", path, body,
                           "application/json") as upstream:  # fmt: skip
        answer = await upstream.json(content_type=None)
        if upstream.status != 201 or not isinstance(answer, dict):
            message = answer.get("message", "") if isinstance(answer, dict) else ""
            reason = answer.get("reason", "") if isinstance(answer, dict) else ""
            return _error(upstream.status, str(reason or "ServerError"), str(message))
    meta = answer.get("metadata", {})
    item_id = f"{meta.get('namespace', namespace)}/{meta.get('name', '')}"
    base = request.path.rsplit("/", 1)[0]
    self_url = f"{request.scheme}://{request.host}{base}/{item_id}"
    answer.update(id=item_id, type=STEVE_TYPE,
                  links={"self": self_url, "update": self_url, "remove": self_url,
                         "view": self_url})  # fmt: skip
    return web.json_response(answer, status=201)


async def _ping(request: web.Request) -> web.Response:
    return web.Response(text="pong")


async def _not_found(request: web.Request) -> web.Response:
    return _error(404, "NotFound", "not found")


def create_rancher_app(clusters: Mapping[str, Upstream]) -> web.Application:
    """The simulated Rancher, proxying ``clusters`` (id -> the cluster's API server)."""
    app = web.Application(client_max_size=8 * 1024**2)
    app[_CLUSTERS] = dict(clusters)
    app[RANCHER_RECORD] = Record()

    async def session(app: web.Application) -> Any:
        async with aiohttp.ClientSession(trust_env=False) as opened:
            app[_SESSION] = opened
            app[_DROPPED] = Dropped()
            yield
            await app[_DROPPED].wait()

    app.cleanup_ctx.append(session)
    r = app.router
    r.add_get("/ping", _ping)
    r.add_post(STEVE_UPGRADES + "/{namespace}", _steve_create)
    r.add_post("/k8s/clusters/{cluster}" + STEVE_UPGRADES + "/{namespace}", _steve_create)
    r.add_route("*", "/k8s/clusters/{cluster}/{tail:.*}", _proxy)
    r.add_route("*", "/{tail:.*}", _not_found)
    return app
