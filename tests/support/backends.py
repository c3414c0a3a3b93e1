"""One face for the two API servers the suite talks to: the emulator and a real one.

Tests set up state and read results through a :class:`Backend`, always over
HTTP as ``sandbox-admin``, so the same test body runs against both.
"""

from __future__ import annotations

import copy
import ssl
from dataclasses import dataclass
from typing import Any

import aiohttp

NAMESPACE = "harvester-system"
GROUP, VERSION, PLURAL = "harvesterhci.io", "v1beta1", "upgrades"
SUCCEEDED, IN_PROGRESS, FAILED = "hvst-upgrade-7xn6v", "hvst-upgrade-zjft7", "hvst-upgrade-fl4k2"
SEED_NAMES = (SUCCEEDED, IN_PROGRESS, FAILED)
MERGE = "application/merge-patch+json"


@dataclass
class Backend:
    name: str
    url: str
    ssl_context: ssl.SSLContext | None
    ca_file: str | None
    session: aiohttp.ClientSession

    def path(self, name: str | None = None, namespace: str = NAMESPACE) -> str:
        base = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}"
        return base if name is None else f"{base}/{name}"

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = "sandbox-admin",
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        all_headers = {"Accept": "application/json", **(headers or {})}
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        kwargs: dict[str, Any] = {"headers": all_headers, "ssl": self.ssl_context or False}
        if body is not None:
            all_headers["Content-Type"] = content_type
            kwargs["json"] = body
        async with self.session.request(method, self.url + path, **kwargs) as response:
            try:
                data = await response.json(content_type=None)
            except ValueError:
                data = await response.text()
            return response.status, data

    async def read(self, name: str) -> dict[str, Any]:
        status, body = await self.call("GET", self.path(name))
        assert status == 200, (status, body)
        return body  # type: ignore[no-any-return]

    async def read_all(self) -> dict[str, dict[str, Any]]:
        status, body = await self.call("GET", self.path())
        assert status == 200, (status, body)
        return {item["metadata"]["name"]: item for item in body["items"]}

    async def merge_patch(self, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        status, body = await self.call("PATCH", self.path(name), patch, content_type=MERGE)
        assert status == 200, (status, body)
        return body  # type: ignore[no-any-return]

    async def recreate(self, name: str) -> dict[str, Any]:
        """Delete and re-create ``name`` with the same content: a new uid, same name."""
        old = await self.read(name)
        await self.merge_patch(name, {"metadata": {"finalizers": None}})
        status, body = await self.call("DELETE", self.path(name))
        assert status in (200, 202), (status, body)
        fresh = copy.deepcopy(old)
        meta = fresh["metadata"]
        for key in ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields"):
            meta.pop(key, None)
        status, body = await self.call("POST", self.path(), fresh)
        assert status == 201, (status, body)
        return body  # type: ignore[no-any-return]
