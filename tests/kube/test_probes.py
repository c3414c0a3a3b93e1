"""bff.kube.probes: readiness as the API server answers it. Ready when the Upgrade API's
discovery lists upgrades; otherwise one sentence saying what is missing or failed.
Real HTTP: the emulator, a server whose discovery lacks Upgrades, a closed port."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from bff import kube
from bff.sandbox.emulator import create_emulator_app
from bff.sandbox.kubeconfig import write_kubeconfig


async def _problem(url: str, tmp_path: Path) -> str | None:
    config = write_kubeconfig(tmp_path / "k", url, token="sandbox-bff")
    options = kube.UpstreamOptions(kubeconfig=str(config), connect_timeout=2, read_timeout=2)
    async with kube.connect(options, impersonate=False) as upstream:
        return await upstream.probe.problem()


async def test_ready_when_discovery_lists_upgrades(
    aiohttp_server: Callable[..., Any], tmp_path: Path
) -> None:
    emulator = await aiohttp_server(create_emulator_app())
    assert await _problem(str(emulator.make_url("")).rstrip("/"), tmp_path) is None


async def test_an_api_server_without_upgrades_is_named(
    aiohttp_server: Callable[..., Any], tmp_path: Path
) -> None:
    async def discovery(request: web.Request) -> web.Response:
        return web.json_response({
            "kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": "harvesterhci.io/v1beta1",
            "resources": [{"name": "settings", "singularName": "setting", "namespaced": False,
                           "kind": "Setting", "verbs": ["get"]}],
        })  # fmt: skip

    app = web.Application()
    app.router.add_get("/apis/harvesterhci.io/v1beta1", discovery)
    server = await aiohttp_server(app)
    problem = await _problem(str(server.make_url("")).rstrip("/"), tmp_path)
    assert problem == "the API server does not serve upgrades.harvesterhci.io/v1beta1"


async def test_an_unreachable_api_server_is_one_sentence(tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: connections are refused
        problem = await _problem(f"http://127.0.0.1:{port}", tmp_path)
    assert problem == (
        "harvesterhci.io/v1beta1 discovery failed: the Kubernetes API is unreachable"
    )
