"""Property-based API testing with schemathesis, against the live sandbox.

Schemathesis generates requests for every operation in ``/openapi.json``
(valid and invalid parameters, bodies, headers) and sends them to a BFF in
front of the emulator. Every answer must be non-5xx and conform to the
document (status code, content type, headers, body schema), and after every
request the status of every Upgrade must be exactly what it was: no
generated write may touch it.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, settings
from schemathesis import checks as builtin
from schemathesis.specs.openapi import checks as openapi_checks

from bff import server
from bff.app import create_app
from bff.openapi import document
from bff.sandbox.emulator import EMULATOR_STORE, create_emulator_app
from bff.sandbox.kubeconfig import write_kubeconfig
from bff.settings import Settings

CHECKS = [
    builtin.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.response_schema_conformance,
]


class LiveSandbox:
    """The emulator and the BFF on loopback, served from their own thread and event loop."""

    def __init__(self) -> None:
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._emulator: web.Application | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LiveSandbox:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the sandbox did not start in 30 s")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def _run(self) -> None:
        self._loop.run_until_complete(self._serve())
        self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        self._emulator = create_emulator_app()
        emulator = web.AppRunner(self._emulator, handle_signals=False)
        await emulator.setup()
        await web.TCPSite(emulator, "127.0.0.1", 0).start()
        with tempfile.TemporaryDirectory() as tmp:
            kube = f"http://127.0.0.1:{emulator.addresses[0][1]}"
            config = write_kubeconfig(Path(tmp, "k"), kube, token="sandbox-bff")
            settings_ = Settings(kubeconfig=str(config), port=0, log_level="WARNING")
            runner, self.url = await server.start(create_app(settings_), settings_)
            self._ready.set()
            await self._stop.wait()
            await server.stop(runner)
            await emulator.cleanup()

    def statuses(self) -> dict[str, str]:
        """Every Upgrade's status, serialised, read on the sandbox's own loop."""

        async def read() -> dict[str, str]:
            assert self._emulator is not None
            store = self._emulator[EMULATOR_STORE]
            return {
                obj["metadata"]["name"]: json.dumps(obj.get("status"), sort_keys=True)
                for obj in store.list()
            }

        return asyncio.run_coroutine_threadsafe(read(), self._loop).result(10)


@pytest.fixture(scope="module")
def live() -> Iterator[LiveSandbox]:
    with LiveSandbox() as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def seed_statuses(live: LiveSandbox) -> dict[str, str]:
    return live.statuses()


schema = schemathesis.openapi.from_dict(document())


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_conforms_and_never_touches_status(
    case: Any, live: LiveSandbox, seed_statuses: dict[str, str]
) -> None:
    response = case.call(base_url=live.url, headers={"Authorization": "Bearer sandbox-admin"})
    case.validate_response(response, checks=CHECKS)
    assert live.statuses() == seed_statuses
