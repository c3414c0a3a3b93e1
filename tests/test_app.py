"""bff.app: the application create_app builds from the settings: its named routes, its
middlewares with their configuration bound, the body limit, and its probes. The
upstream is a kubeconfig pointing at a closed port: nothing here needs it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from bff import server
from bff.api import page
from bff.api.paths import RANCHER_STEVE_ROUTE, STEVE_ROUTE, UPGRADES_ROUTE
from bff.app import create_app
from bff.keys import METRICS, READINESS, SETTINGS
from bff.sandbox.kubeconfig import write_kubeconfig
from bff.settings import Settings

ORIGIN = "https://rancher.example.com"


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    config = write_kubeconfig(tmp_path / "k", "http://127.0.0.1:9", token="sandbox-bff")
    return replace(Settings(kubeconfig=str(config), read_cache=False), **overrides)


async def test_the_api_is_a_sub_application_at_the_base_path(tmp_path: Path) -> None:
    app = create_app(_settings(tmp_path, base_path="/bff"))
    routes = {
        UPGRADES_ROUTE: ("/bff/api/v1.0.5/upgrades", {"version": "v1.0.4"}),
        STEVE_ROUTE: ("/bff/v1/harvester/harvesterhci.io.upgrades", {}),
        RANCHER_STEVE_ROUTE: (
            "/bff/k8s/clusters/c-m-1/v1/harvester/harvesterhci.io.upgrades",
            {"cluster": "c-m-2"},
        ),
    }
    for name, (path, other) in routes.items():
        match = await app.router.resolve(make_mocked_request("GET", path, app=app))
        assert match.route.name == name, path
        (api,) = match.apps  # matched inside the API's sub-application
        assert api is not app
        assert api[SETTINGS].base_path == "/bff"
        # url_for puts the base path in front: the links in answers are built this way.
        linked = str(match.route.resource.url_for(**other))  # type: ignore[union-attr]
        assert linked.startswith("/bff/"), linked
    assert str(routes[UPGRADES_ROUTE][0]).replace("v1.0.5", "v1.0.4") == str(
        (
            await app.router.resolve(
                make_mocked_request("GET", "/bff/api/v1.0.5/upgrades", app=app)
            )
        ).route.resource.url_for(version="v1.0.4")  # type: ignore[union-attr]
    )
    bare = await app.router.resolve(make_mocked_request("GET", "/bff", app=app))
    assert bare.route.handler is page.to_index
    assert app[SETTINGS].base_path == "/bff"
    assert app[METRICS] is api[METRICS]


async def test_without_a_base_path_the_api_is_the_app(tmp_path: Path) -> None:
    app = create_app(_settings(tmp_path))
    match = await app.router.resolve(make_mocked_request("GET", "/api/v1.0.5/upgrades", app=app))
    assert match.route.name == UPGRADES_ROUTE
    assert match.apps == ()  # no sub-application: the API is the app


async def test_the_middlewares_keep_the_origins_they_were_built_with(
    tmp_path: Path, aiohttp_client: Callable[..., Any]
) -> None:
    app = create_app(_settings(tmp_path, allowed_origins=(ORIGIN,)))
    # The configuration is bound when the app is made: settings swapped in afterwards
    # (which nothing should do) change nothing the middlewares decide.
    app[SETTINGS] = replace(app[SETTINGS], allowed_origins=())
    client = await aiohttp_client(app)
    allowed = await client.get("/healthz", headers={"Origin": ORIGIN})
    assert allowed.headers["Access-Control-Allow-Origin"] == ORIGIN
    other = await client.get("/healthz", headers={"Origin": "https://elsewhere.example.com"})
    assert "Access-Control-Allow-Origin" not in other.headers
    preflight = await client.options(
        "/api/v1.0.5/upgrades", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"}
    )
    assert preflight.status == 204


async def test_every_answer_carries_the_request_id_and_errors_are_json(
    tmp_path: Path, aiohttp_client: Callable[..., Any]
) -> None:
    client = await aiohttp_client(create_app(_settings(tmp_path)))
    missing = await client.get("/nowhere", headers={"X-Request-ID": "rid-1"})
    assert missing.status == 404
    assert missing.headers["X-Request-ID"] == "rid-1"
    assert (await missing.json())["code"] == "NotFound"
    assert missing.headers["X-Frame-Options"] == "DENY"


async def test_the_body_limit_is_the_settings(
    tmp_path: Path, aiohttp_client: Callable[..., Any]
) -> None:
    client = await aiohttp_client(create_app(_settings(tmp_path, max_body_bytes=64)))
    answer = await client.put(
        "/api/v1.0.5/upgrades/harvester-system/x",
        data=b"{" + b" " * 200 + b"}",
        headers={"Content-Type": "application/json", "Authorization": "Bearer t"},
    )
    assert answer.status == 413
    assert (await answer.json())["code"] == "RequestEntityTooLarge"


async def test_the_metrics_count_requests_by_route(
    tmp_path: Path, aiohttp_client: Callable[..., Any]
) -> None:
    app = create_app(_settings(tmp_path))
    client = await aiohttp_client(app)
    assert (await client.get("/healthz")).status == 200
    text = await (await client.get("/metrics")).text()
    assert any(
        line.startswith("bff_http_requests_total{")
        and 'route="/healthz"' in line
        and 'status="200"' in line
        for line in text.splitlines()
    ), text
    assert isinstance(app, web.Application)


async def test_under_a_base_path_the_served_app_turns_the_apis_readiness_off(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path, base_path="/bff")
    app = create_app(settings)
    runner, url = await server.start(app, settings, host="127.0.0.1", port=0)
    try:
        assert url.endswith("/bff")
        # The server's stop turns off the served app's readiness before it stops
        # listening: that must be the API's own.
        readiness = app[READINESS]
        assert not readiness.shutting_down
    finally:
        await server.stop(runner)
    assert readiness.shutting_down
