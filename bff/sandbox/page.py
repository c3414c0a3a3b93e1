"""What the page gets only in the sandbox: the tokens to choose from, and the bug on a button.

``install`` adds to the BFF's app, in the sandbox only (``serve`` never calls it):

- a marker in the served page (``<meta name="harvester-upgrade-bff-sandbox">``), so the
  page knows, without a request that would fail in production, that it may ask for
- ``GET {base}/sandbox/page.json``: the sandbox tokens and what each may do, and whether
  the cluster guard is on;
- ``POST {base}/sandbox/direct-put/{namespace}/{name}``: takes the body extension
  v1.0.4 would PUT and sends it straight to the API emulator as that PUT, with the
  caller's own bearer token, bypassing the BFF. That is the bug: the answer shows the
  object before, as stored, and after the simulated controller has seen it, with the
  controller's re-initialisation count and log lines.

The BFF itself never makes this write; it is the emulator's client here, as the
dashboard is a cluster's.
"""

from __future__ import annotations

import logging
import ssl
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

from bff.names import is_dns1123_label
from bff.sandbox.controller import SimulatedController
from bff.sandbox.legacy_save import steve_item, v104_body

__all__ = ["MARKER", "TOKENS", "install"]

MARKER = b'<meta name="harvester-upgrade-bff-sandbox" content="sandbox/page.json">'
TOKENS = (
    {"token": "sandbox-admin", "can": "every verb"},
    {"token": "sandbox-viewer", "can": "get, list and watch only"},
)
UPGRADES = "/apis/harvesterhci.io/v1beta1/namespaces/{namespace}/upgrades/{name}"
#: The seeded IPPool the page's "v1.0.4 IPPool edit" saves (bff/captured/guarded/ippool.json).
IPPOOL = "/apis/loadbalancer.harvesterhci.io/v1beta1/ippools/vip-pool"
_SESSION = web.AppKey("sandbox_page_session", aiohttp.ClientSession)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ControllerLines(logging.Handler):
    """The simulated controller's most recent log lines, numbered."""

    def __init__(self, keep: int = 200) -> None:
        super().__init__(logging.INFO)
        self.lines: deque[tuple[int, str]] = deque(maxlen=keep)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        self.lines.append((self.count, record.getMessage()))

    def since(self, mark: int) -> list[str]:
        return [line for number, line in self.lines if number > mark]


_LOG = web.AppKey("sandbox_page_controller_log", ControllerLines)


def _error(status: int, code: str, message: str) -> web.Response:
    body = {"type": "error", "status": status, "code": code, "message": message}
    return web.json_response(body, status=status)


def install(
    app: web.Application,
    *,
    base_path: str,
    kube_url: str,
    kube_ssl: ssl.SSLContext,
    controller: SimulatedController,
    guard: bool = False,
) -> None:
    """Add the sandbox-only marker and routes to the BFF's ``app`` (before it starts)."""
    index = f"{base_path}/"

    @web.middleware
    async def mark_page(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        if (
            request.method == "GET"
            and request.path == index
            and isinstance(response, web.Response)
            and response.status == 200
            and response.content_type == "text/html"
            and isinstance(response.body, bytes)
        ):
            response.body = response.body.replace(b"<head>", b"<head>\n  " + MARKER, 1)
        return response

    async def page_json(request: web.Request) -> web.Response:
        return web.json_response({"tokens": list(TOKENS), "guard": guard})

    async def direct_put(request: web.Request) -> web.Response:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        if not (is_dns1123_label(namespace) and is_dns1123_label(name)):
            return _error(400, "InvalidName", "namespace and name must be DNS-1123 labels")
        authorization = request.headers.get("Authorization", "")
        if not authorization.startswith("Bearer "):
            return _error(401, "Unauthorized", "the direct PUT needs a bearer token")
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "InvalidBody", "the request body must be JSON")
        if not isinstance(body, dict):
            return _error(400, "InvalidBody", "the request body must be a JSON object")
        session = request.app[_SESSION]
        url = kube_url + UPGRADES.format(namespace=namespace, name=name)
        headers = {"Authorization": authorization, "Accept": "application/json"}

        async def read() -> tuple[int, Any]:
            async with session.get(url, headers=headers) as got:
                return got.status, await got.json(content_type=None)

        status, before = await read()
        if status != 200:
            return _upstream_error(status, before)
        log = request.app[_LOG]
        mark, count = log.count, controller.reinitialisations
        async with session.put(url, headers=headers, json=body) as put:
            put_status, stored = put.status, await put.json(content_type=None)
            warnings = put.headers.getall("Warning", [])
        if put_status != 200:
            return _upstream_error(put_status, stored)
        await controller.wait_synced(str(stored["metadata"]["resourceVersion"]))
        _, after = await read()
        return web.json_response(
            {
                "request": f"PUT {UPGRADES.format(namespace=namespace, name=name)}",
                "status": put_status,
                "before": before,
                "stored": stored,
                "after": after,
                "reinitialisations": {"before": count, "after": controller.reinitialisations},
                "controller": log.since(mark),
                "guard": guard,
                "warnings": warnings,
            }
        )

    async def ippool_edit(request: web.Request) -> web.Response:
        """Extension v1.0.4's IPPool edit form: the description changed, then its save's
        whole-object PUT (status stripped), straight to the emulator with the caller's
        token. No controller runs for IPPools: the answer is what the cluster stored."""
        authorization = request.headers.get("Authorization", "")
        if not authorization.startswith("Bearer "):
            return _error(401, "Unauthorized", "the IPPool edit needs a bearer token")
        session = request.app[_SESSION]
        headers = {"Authorization": authorization, "Accept": "application/json"}
        url = kube_url + IPPOOL
        async with session.get(url, headers=headers) as got:
            status, before = got.status, await got.json(content_type=None)
        if status != 200:
            return _upstream_error(status, before)
        item = steve_item(before, "loadbalancer.harvesterhci.io.ippool")
        item["spec"] = dict(item.get("spec") or {}, description="edited on the page")
        body = v104_body(item)
        async with session.put(url, headers=headers, json=body) as put:
            put_status, stored = put.status, await put.json(content_type=None)
            warnings = put.headers.getall("Warning", [])
        if put_status != 200:
            return _upstream_error(put_status, stored)
        return web.json_response(
            {
                "request": f"PUT {IPPOOL}",
                "status": put_status,
                "before": before,
                "after": stored,
                "guard": guard,
                "warnings": warnings,
            }
        )

    async def resources(app: web.Application) -> AsyncIterator[None]:
        lines = ControllerLines()
        logger = logging.getLogger("bff.sandbox.controller")
        logger.addHandler(lines)
        app[_LOG] = lines
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=kube_ssl)) as session:
            app[_SESSION] = session
            try:
                yield
            finally:
                logger.removeHandler(lines)

    app.middlewares.append(mark_page)
    app.cleanup_ctx.append(resources)
    app.router.add_get(f"{base_path}/sandbox/page.json", page_json, allow_head=False)
    app.router.add_post(f"{base_path}/sandbox/direct-put/{{namespace}}/{{name}}", direct_put)
    app.router.add_post(f"{base_path}/sandbox/ippool-edit", ippool_edit)


def _upstream_error(status: int, body: Any) -> web.Response:
    """The emulator's ``Status`` answer, in the page's error shape."""
    if isinstance(body, dict) and body.get("kind") == "Status":
        return _error(status, str(body.get("reason") or "Error"), str(body.get("message") or ""))
    return _error(status, "Error", f"the API emulator answered {status}")
