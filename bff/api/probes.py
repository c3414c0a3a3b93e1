"""What the platform polls: liveness, readiness (from :mod:`bff.readiness`), metrics."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bff.keys import METRICS, READINESS


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    readiness = request.app.get(READINESS)
    problem = "starting" if readiness is None else await readiness.problem()
    if problem is None:
        return web.json_response({"status": "ready"})
    return web.json_response({"status": "not ready", "reason": problem}, status=503)


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response
