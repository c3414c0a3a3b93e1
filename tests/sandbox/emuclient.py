"""Shared helpers for the sandbox tests: the seed names and an HTTP client for the emulator."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from bff.sandbox.emulator import EMULATOR_STORE
from bff.sandbox.store import Store

NS = "harvester-system"
SUCCEEDED, IN_PROGRESS, FAILED = "hvst-upgrade-7xn6v", "hvst-upgrade-zjft7", "hvst-upgrade-fl4k2"
BASE = f"/apis/harvesterhci.io/v1beta1/namespaces/{NS}/upgrades"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


@dataclass
class Emu:
    """Talks HTTP to the emulator; every call returns (status, headers, parsed body)."""

    server: TestServer
    session: aiohttp.ClientSession

    @property
    def store(self) -> Store:
        return self.server.app[EMULATOR_STORE]

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = "sandbox-admin",
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> tuple[int, Any, Any]:
        all_headers = dict(headers or {})
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            all_headers["Content-Type"] = content_type
        async with self.session.request(
            method, self.url + path, data=data, headers=all_headers
        ) as response:
            text = await response.text()
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = text
            return response.status, response.headers, parsed

    def live(self, name: str) -> dict[str, Any]:
        obj = self.store.get(NS, name)
        assert obj is not None
        return obj
