"""Fixtures for the sandbox tests: a seeded emulator on a loopback port and a
kubernetes-asyncio client pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from kubernetes_asyncio import client

from bff.sandbox.emulator import create_emulator_app
from tests.support.backends import EmulatorBackend, served_emulator


@pytest.fixture
async def emu(aiohttp_server: Callable[..., Any]) -> AsyncIterator[EmulatorBackend]:
    server: TestServer = await aiohttp_server(create_emulator_app(bookmark_interval=0.2))
    async with served_emulator(server) as backend:
        yield backend


@pytest.fixture
async def kube(emu: EmulatorBackend) -> AsyncIterator[client.CustomObjectsApi]:
    """The real kubernetes-asyncio client, as sandbox-admin."""
    configuration = client.Configuration(host=emu.url)
    configuration.api_key = {"BearerToken": "sandbox-admin"}
    configuration.api_key_prefix = {"BearerToken": "Bearer"}
    async with client.ApiClient(configuration=configuration) as api_client:
        yield client.CustomObjectsApi(api_client)
