"""bff.app: the application create_app builds from the settings: its named routes, its
middlewares with their configuration bound, the body limit, and its probes. The
upstream is a kubeconfig pointing at a closed port: nothing here needs it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from aiohttp import web

from bff.api.paths import RANCHER_STEVE_ROUTE, STEVE_ROUTE, UPGRADES_ROUTE
from bff.app import create_app
from bff.keys import METRICS, SETTINGS
from bff.sandbox.kubeconfig import write_kubeconfig
from bff.settings import Settings

ORIGIN = "https://rancher.example.com"


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    config = write_kubeconfig(tmp_path / "k", "http://127.0.0.1:9", token="sandbox-bff")
    return replace(Settings(kubeconfig=str(config), read_cache=False), **overrides)


def test_the_collections_are_named_routes_under_the_base_path(tmp_path: Path) -> None:
    app = create_app(_settings(tmp_path, base_path="/bff"))
    router = app.router
    assert str(router[UPGRADES_ROUTE].url_for(version="v1.0.5")) == "/bff/api/v1.0.5/upgrades"
    assert str(router[STEVE_ROUTE].url_for()) == "/bff/v1/harvester/harvesterhci.io.upgrades"
    assert str(router[RANCHER_STEVE_ROUTE].url_for(cluster="c-m-1")) == (
        "/bff/k8s/clusters/c-m-1/v1/harvester/harvesterhci.io.upgrades"
    )
    assert app[SETTINGS].base_path == "/bff"
    assert app[METRICS] is not None


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
