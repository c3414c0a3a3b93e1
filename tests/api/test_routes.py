"""bff.api.routes: the API's route table. Every path the clients call resolves to its
handler for exactly its methods (never HEAD), the Steve collection also under
Rancher's cluster prefix, the collections named, no template carries a base path
(the sub-application's mount adds it), and ``/metrics`` leaves the API port when
``--metrics-port`` gives it one of its own."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from bff.api import events, handlers, page, probes
from bff.api.paths import RANCHER_STEVE_ROUTE, STEVE_ROUTE, UPGRADES_ROUTE
from bff.api.routes import add_routes
from bff.keys import SETTINGS
from bff.settings import Settings

STEVE = "/v1/harvester/harvesterhci.io.upgrades"
RANCHER = "/k8s/clusters/c-m-1" + STEVE
ONE = "/harvester-system/hvst-upgrade-1"

TABLE = [
    ("GET", "/healthz", probes.healthz),
    ("GET", "/readyz", probes.readyz),
    ("GET", "/metrics", probes.metrics),
    ("GET", "/openapi.json", page.openapi),
    ("GET", "/", page.index),
    ("GET", "/static/app.js", page.static),
    ("GET", "/api/v1.0.5/upgrades", handlers.list_upgrades),
    ("GET", "/api/v1.0.5/upgrades/events", events.upgrade_events),
    ("GET", "/api/v1.0.5/upgrades/access", handlers.upgrade_access),
    ("GET", "/api/v1.0.4/upgrades" + ONE, handlers.get_upgrade),
    ("PUT", "/api/v1.0.4/upgrades" + ONE, handlers.put_upgrade),
    ("POST", "/api/v1.0.5/upgrades" + ONE, handlers.post_action),
    ("GET", STEVE, handlers.list_upgrades),
    ("GET", STEVE + "/harvester-system", handlers.list_upgrades),
    ("GET", STEVE + ONE, handlers.get_upgrade),
    ("PUT", STEVE + ONE, handlers.put_upgrade),
    ("GET", RANCHER + ONE, handlers.get_upgrade),
    ("PUT", RANCHER + ONE, handlers.put_upgrade),
]


def _app(metrics_port: int | None = None) -> web.Application:
    app = web.Application()
    app[SETTINGS] = Settings(kubeconfig="unused", metrics_port=metrics_port)
    add_routes(app)
    return app


@pytest.mark.parametrize(
    ("method", "path", "handler"), TABLE, ids=[f"{m} {p}" for m, p, _ in TABLE]
)
async def test_each_path_resolves_to_its_handler(method: str, path: str, handler: object) -> None:
    app = _app()
    match = await app.router.resolve(make_mocked_request(method, path, app=app))
    assert match.http_exception is None, (method, path)
    assert match.handler is handler


@pytest.mark.parametrize(
    ("method", "path"),
    [("HEAD", "/healthz"), ("DELETE", "/api/v1.0.5/upgrades" + ONE), ("POST", STEVE + ONE),
     ("PATCH", RANCHER + ONE), ("PUT", "/api/v1.0.5/upgrades")],
)  # fmt: skip
async def test_other_methods_are_not_routes(method: str, path: str) -> None:
    app = _app()
    match = await app.router.resolve(make_mocked_request(method, path, app=app))
    assert isinstance(match.http_exception, web.HTTPMethodNotAllowed)


async def test_metrics_on_a_port_of_its_own_is_not_an_api_route() -> None:
    app = _app(metrics_port=9090)
    match = await app.router.resolve(make_mocked_request("GET", "/metrics", app=app))
    assert isinstance(match.http_exception, web.HTTPNotFound)


def test_the_collections_are_named_and_link_without_a_base_path() -> None:
    router = _app().router
    assert str(router[UPGRADES_ROUTE].url_for(version="v1.0.4")) == "/api/v1.0.4/upgrades"
    assert str(router[STEVE_ROUTE].url_for()) == STEVE
    assert str(router[RANCHER_STEVE_ROUTE].url_for(cluster="c-m-1")) == RANCHER
