"""Check ``route`` (bff/doctor/route.py): the URL reaches the BFF, told by its X-Served-By.

Real HTTP on loopback: the BFF's own middleware stack answers with the header (401
without a token is fine); another backend on the same path (Rancher, a default
backend) answers without it; nothing listening is a problem too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from bff.doctor.report import Status
from bff.doctor.route import PROBE_PATH, check
from bff.metrics import Metrics
from bff.middleware import middlewares
from tests.support.real_apiserver import free_port


async def _url(aiohttp_server: Callable[..., Any], app: web.Application) -> str:
    server: TestServer = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/")


async def test_the_bffs_middlewares_mark_every_answer(
    aiohttp_server: Callable[..., Any],
) -> None:
    async def refused(request: web.Request) -> web.Response:
        raise web.HTTPUnauthorized()

    app = web.Application(
        middlewares=middlewares(trusted_proxies=(), allowed_origins=(), metrics_to=Metrics())
    )
    app.router.add_get(PROBE_PATH, refused)
    found = await check(await _url(aiohttp_server, app))
    assert found.status is Status.OK, found
    assert found.summary.endswith(f"reaches the BFF ({PROBE_PATH} answered 401)")


async def test_another_backend_is_a_problem(aiohttp_server: Callable[..., Any]) -> None:
    async def rancher(request: web.Request) -> web.Response:
        return web.json_response({"type": "error", "status": "401"}, status=401)

    app = web.Application()
    app.router.add_get(PROBE_PATH, rancher)
    url = await _url(aiohttp_server, app)
    found = await check(url)
    assert found.status is Status.PROBLEM
    assert found.summary == (
        f"{url}{PROBE_PATH} answered 401 without the BFF's X-Served-By header: the Ingress "
        "does not send this path to the BFF"
    )


async def test_nothing_listening_is_a_problem() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    found = await check(url)
    assert found.status is Status.PROBLEM
    assert found.summary.startswith(f"{url}{PROBE_PATH} cannot be reached")


async def test_no_url_is_skipped() -> None:
    assert (await check(None)).status is Status.SKIPPED
