"""Shared by the tests of bff.kube: a server that records what reaches it, and a client
built by the transport (``bff.kube.transport.api_client``) pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from kubernetes_asyncio import client as k8s

from bff.kube import transport
from bff.patches import mark_read_patch
from bff.upgrade_resource import GROUP, PLURAL, VERSION
from tests.support.backends import NAMESPACE, SUCCEEDED

UPGRADES = f"/apis/{GROUP}/{VERSION}/namespaces/{NAMESPACE}/{PLURAL}"
ONE = f"{UPGRADES}/{SUCCEEDED}"
MERGE = "application/merge-patch+json"
JSON = "application/json"
PATCH_BODY = mark_read_patch("123")


@dataclass
class Arrivals:
    """A server that answers any request with 200 and its own body (or ``{}``); it remembers all."""

    server: TestServer
    seen: list[tuple[str, str, str]] = field(default_factory=list)
    headers: list[list[tuple[str, str]]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")


@pytest.fixture
async def arrivals(aiohttp_server: Callable[..., Any]) -> Arrivals:
    app = web.Application()
    holder: list[Arrivals] = []

    async def record(request: web.Request) -> web.Response:
        text = await request.text()
        holder[0].seen.append((request.method, request.path_qs, text))
        holder[0].headers.append(list(request.headers.items()))
        return web.Response(text=text or "{}", content_type="application/json")

    app.router.add_route("*", "/{tail:.*}", record)
    recorded = Arrivals(await aiohttp_server(app))
    holder.append(recorded)
    return recorded


async def client_for(url: str) -> Any:
    configuration = k8s.Configuration(host=url)
    configuration.api_key = {"BearerToken": "sandbox-admin"}
    configuration.api_key_prefix = {"BearerToken": "Bearer"}
    return await transport.api_client(configuration)


@pytest.fixture
async def guarded(arrivals: Arrivals) -> AsyncIterator[Any]:
    api = await client_for(arrivals.url)
    yield api
    await api.close()
