"""bff.kube.calls: what every upstream call shares. Per-request credentials (a caller's
token, or impersonation headers with escaped extra keys), the read timeout, and one
observation per call: its verb, its time and the status it got (0 for none)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bff import errors, kube
from bff.identities import ImpersonatedCaller, TokenCaller
from bff.kube import calls
from bff.sandbox.kubeconfig import write_kubeconfig
from tests.support.backends import NAMESPACE

UPGRADES = f"/apis/harvesterhci.io/v1beta1/namespaces/{NAMESPACE}/upgrades"


def test_a_token_caller_sends_its_own_token() -> None:
    sent = calls.credentials(TokenCaller("abc"))
    assert sent == {
        "_request_auth": {
            "in": "header", "key": "authorization", "type": "api_key", "value": "Bearer abc"
        }
    }  # fmt: skip


def test_an_impersonated_caller_becomes_headers_with_escaped_extra_keys() -> None:
    caller = ImpersonatedCaller(
        username="alice", uid="", groups=("g",), extra={"example.com/x y": ("1",)}
    )
    assert calls.credentials(caller) == {
        "_headers": {
            "Impersonate-User": "alice",
            "Impersonate-Group": ("g",),
            "Impersonate-Extra-example.com%2Fx%20y": ("1",),
        }
    }


async def test_each_call_is_observed_with_its_status(
    aiohttp_server: Callable[..., Any], tmp_path: Path
) -> None:
    async def one(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name == "slow":
            await asyncio.sleep(2)  # past the read timeout: the BFF gives up first
        if name != "here":
            return web.json_response({"kind": "Status", "message": "gone"}, status=404)
        return web.json_response({"metadata": {"name": name}})

    app = web.Application()
    app.router.add_get(UPGRADES + "/{name}", one)
    server = await aiohttp_server(app)
    config = write_kubeconfig(
        tmp_path / "k", str(server.make_url("")).rstrip("/"), token="sandbox-bff"
    )
    seen: list[tuple[str, int]] = []
    options = kube.UpstreamOptions(kubeconfig=str(config), read_timeout=0.3)
    caller = TokenCaller("t")
    async with kube.connect(
        options, impersonate=False, observer=lambda verb, s, status: seen.append((verb, status))
    ) as up:
        assert (await up.gateway.get(caller, NAMESPACE, "here"))["metadata"]["name"] == "here"
        with pytest.raises(errors.NotFound):
            await up.gateway.get(caller, NAMESPACE, "missing")
        with pytest.raises(errors.UpstreamUnavailable) as slow:
            await up.gateway.get(caller, NAMESPACE, "slow")
    assert slow.value.status == 504
    assert seen == [("get", 200), ("get", 404), ("get", 0)]
