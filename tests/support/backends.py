"""One HTTP client for the API servers the suite talks to: the emulator and a real one.

Tests set up state and read results through a :class:`Backend`, over HTTP as
``sandbox-admin`` unless told otherwise, so the same test body runs against both.
:class:`EmulatorBackend` adds the emulator's own handles (its store) for the tests of
the emulator itself. :func:`served_emulator` and :func:`sandbox_emulator` open one
for an emulator on aiohttp's test server and for a running sandbox's (TLS) emulator.
"""

from __future__ import annotations

import contextlib
import copy
import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDictProxy

from bff.sandbox.emulator import EMULATOR_STORE
from bff.sandbox.runner import Sandbox
from bff.sandbox.store import Store

NAMESPACE = "harvester-system"
GROUP, VERSION, PLURAL = "harvesterhci.io", "v1beta1", "upgrades"
SUCCEEDED, IN_PROGRESS, FAILED = "hvst-upgrade-7xn6v", "hvst-upgrade-zjft7", "hvst-upgrade-fl4k2"
SEED_NAMES = (SUCCEEDED, IN_PROGRESS, FAILED)
NS = NAMESPACE
# apimachinery's message for a label value that is not one.
INVALID_VALUE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
BASE = f"/apis/{GROUP}/{VERSION}/namespaces/{NAMESPACE}/{PLURAL}"


def new_upgrade(**meta: Any) -> dict[str, Any]:
    """A creatable Upgrade with a generated name; ``meta`` adds metadata fields."""
    return {
        "apiVersion": "harvesterhci.io/v1beta1",
        "kind": "Upgrade",
        "metadata": {"generateName": "hvst-upgrade-", **meta},
        "spec": {"version": "v1.5.1"},
        "status": {"previousVersion": "v1.5.0"},
    }


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

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = "sandbox-admin",
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> tuple[int, CIMultiDictProxy[str], Any]:
        """One request; returns (status, response headers, body parsed as JSON or text).

        ``body`` is sent as JSON, ``raw`` as the bytes given, each with ``content_type``.
        """
        all_headers = {"Accept": "application/json", **(headers or {})}
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else raw
        if data is not None:
            all_headers["Content-Type"] = content_type
        async with self.session.request(
            method, self.url + path, data=data, headers=all_headers, ssl=self.ssl_context or False
        ) as response:
            text = await response.text()
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = text
            return response.status, response.headers, parsed

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
        """:meth:`request` without the response headers."""
        status, _, data = await self.request(
            method, path, body, token=token, content_type=content_type, headers=headers
        )
        return status, data

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


@dataclass
class EmulatorBackend(Backend):
    """The emulator, with its application at hand (the store, faults, the journal)."""

    app: web.Application = field(kw_only=True)

    @property
    def store(self) -> Store:
        return self.app[EMULATOR_STORE]

    def live(self, name: str, namespace: str = NAMESPACE) -> dict[str, Any]:
        """The stored object, read without HTTP."""
        obj = self.store.get(namespace, name)
        assert obj is not None
        return obj


@contextlib.asynccontextmanager
async def served_emulator(server: TestServer) -> AsyncIterator[EmulatorBackend]:
    """The client for an emulator application on aiohttp's test server (plain HTTP)."""
    url = str(server.make_url("")).rstrip("/")
    async with aiohttp.ClientSession() as session:
        yield EmulatorBackend("emulator", url, None, None, session, app=server.app)


@contextlib.asynccontextmanager
async def sandbox_emulator(sandbox: Sandbox) -> AsyncIterator[EmulatorBackend]:
    """The client for a running sandbox's emulator: HTTPS, trusting the sandbox's CA."""
    async with aiohttp.ClientSession() as session:
        yield EmulatorBackend(
            "emulator", sandbox.kube_url, sandbox.client_ssl, None, session, app=sandbox.emulator
        )
