"""The baseline: a hand-written aiohttp forwarder, what "just proxy it" would cost.

One upstream call per read, bytes passed through untouched. The dismiss is
*guarded* like the BFF's: GET the object, check it, and PATCH the one label
(under the object's resourceVersion) only when it is finished and unread.
No logging, no metrics, no validation beyond that: the cheapest correct thing.

``python -m bff.bench.forwarder --upstream URL`` prints ``port N`` once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from aiohttp import web

API = "/apis/harvesterhci.io/v1beta1/namespaces"
READ = "harvesterhci.io/read-message"
STATE = "harvesterhci.io/upgradeState"


def forwarder_app(upstream: str, namespace: str) -> web.Application:
    app = web.Application()
    session_key = web.AppKey("session", aiohttp.ClientSession)

    async def session_ctx(app: web.Application):  # type: ignore[no-untyped-def]
        connector = aiohttp.TCPConnector(limit=32)
        app[session_key] = aiohttp.ClientSession(connector=connector, trust_env=False)
        yield
        await app[session_key].close()

    def auth(request: web.Request) -> dict[str, str]:
        return {"Authorization": request.headers.get("Authorization", "")}

    async def passthrough(request: web.Request, url: str) -> web.Response:
        async with app[session_key].get(url, headers=auth(request)) as upstream_response:
            body = await upstream_response.read()
            return web.Response(body=body, status=upstream_response.status,
                                content_type="application/json")  # fmt: skip

    async def list_upgrades(request: web.Request) -> web.Response:
        return await passthrough(request, f"{upstream}{API}/{namespace}/upgrades")

    async def get_upgrade(request: web.Request) -> web.Response:
        ns, name = request.match_info["namespace"], request.match_info["name"]
        return await passthrough(request, f"{upstream}{API}/{ns}/upgrades/{name}")

    async def dismiss(request: web.Request) -> web.Response:
        ns, name = request.match_info["namespace"], request.match_info["name"]
        url = f"{upstream}{API}/{ns}/upgrades/{name}"
        session = app[session_key]
        async with session.get(url, headers=auth(request)) as got:
            body = await got.read()
            if got.status != 200:
                return web.Response(body=body, status=got.status, content_type="application/json")
        live = json.loads(body)
        labels = live["metadata"].get("labels") or {}
        if labels.get(READ) == "true":
            return web.Response(body=body, content_type="application/json")
        if labels.get(STATE) not in ("Succeeded", "Failed"):
            return web.json_response({"code": "UpgradeInProgress"}, status=409)
        patch = {"metadata": {"labels": {READ: "true"},
                              "resourceVersion": live["metadata"]["resourceVersion"]}}  # fmt: skip
        headers = {**auth(request), "Content-Type": "application/merge-patch+json"}
        async with session.patch(url, data=json.dumps(patch), headers=headers) as patched:
            return web.Response(body=await patched.read(), status=patched.status,
                                content_type="application/json")  # fmt: skip

    app.cleanup_ctx.append(session_ctx)
    app.router.add_get("/api/{version}/upgrades", list_upgrades)
    app.router.add_get("/api/{version}/upgrades/{namespace}/{name}", get_upgrade)
    app.router.add_post("/api/{version}/upgrades/{namespace}/{name}", dismiss)
    return app


@asynccontextmanager
async def listening(app: web.Application) -> AsyncIterator[int]:
    """``app`` served on a loopback port of its own, by aiohttp's plain runner (no access
    log), for as long as the context lasts; the port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def _serve(app: web.Application) -> None:
    async with listening(app) as port:
        print(f"port {port}", flush=True)
        await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--namespace", default="harvester-system")
    args = parser.parse_args()
    asyncio.run(_serve(forwarder_app(args.upstream.rstrip("/"), args.namespace)))


if __name__ == "__main__":
    main()
