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
import copy
import json
import tempfile
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import schemathesis
from aiohttp import web
from hypothesis import given, settings
from schemathesis import checks as builtin
from schemathesis.specs.openapi import checks as openapi_checks

from bff import server
from bff.app import create_app
from bff.keys import CACHE
from bff.openapi import document
from bff.patches import mark_read_patch
from bff.sandbox.emulator import EMULATOR_JOURNAL, EMULATOR_STORE, create_emulator_app
from bff.sandbox.kubeconfig import write_kubeconfig
from bff.settings import Settings
from bff.upgrade_resource import READ_MESSAGE
from tests.support.backends import MERGE, Backend

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
        self.kube_url = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._emulator: web.Application | None = None
        self._bff: web.Application | None = None
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
            kube = self.kube_url = f"http://127.0.0.1:{emulator.addresses[0][1]}"
            config = write_kubeconfig(Path(tmp, "k"), kube, token="sandbox-bff")
            settings_ = Settings(kubeconfig=str(config), port=0, log_level="WARNING")
            self._bff = create_app(settings_)
            runner, self.url = await server.start(self._bff, settings_)
            await asyncio.wait_for(self._bff[CACHE].wait_synced(), 10)
            self._ready.set()
            await self._stop.wait()
            await server.stop(runner)
            await emulator.cleanup()

    def writes(self) -> list[tuple[str, str, object, int]]:
        """Every write the BFF made: method, content type, body, answer.

        The test's own resets (as the controller's identity) are left out, and so are
        the access reviews the read cache asks for each caller (POSTs that write nothing).
        """

        async def read() -> list[tuple[str, str, object, int]]:
            assert self._emulator is not None
            journal = self._emulator[EMULATOR_JOURNAL]
            return [
                (e.method, e.content_type, e.body, e.status)
                for e in journal.entries
                if e.user != RESETTER and not e.path.endswith("accessreviews")
            ]

        return asyncio.run_coroutine_threadsafe(read(), self._loop).result(10)

    def mark_unread(self) -> None:
        """Take read-message off every seed, so the next dismiss writes again."""

        async def reset() -> None:
            patch = {"metadata": {"labels": {READ_MESSAGE: None}}}
            async with aiohttp.ClientSession() as session:
                emulator = Backend("emulator", self.kube_url, None, None, session)
                for name in SEEDS:
                    status, body = await emulator.call(
                        "PATCH",
                        emulator.path(name),
                        patch,
                        token=RESETTER_TOKEN,
                        content_type=MERGE,
                    )
                    assert status == 200, (status, body)
            assert self._bff is not None
            cache = self._bff[CACHE]
            for _ in range(250):  # until the BFF's read cache has seen them unread
                entries = [cache.entry(name) for name in SEEDS]
                if all(e is not None and READ_MESSAGE not in e.labels for e in entries):
                    return
                await asyncio.sleep(0.02)
            raise AssertionError("the read cache did not see the seeds unread")

        asyncio.run_coroutine_threadsafe(reset(), self._loop).result(10)

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


SEEDS = ("hvst-upgrade-7xn6v", "hvst-upgrade-zjft7", "hvst-upgrade-fl4k2")
RESETTER = "system:serviceaccount:harvester-system:harvester"
RESETTER_TOKEN = "sandbox-controller"


def _aim_at_real_objects(case: Any) -> None:
    """Point three in four generated requests at a seed object, with a matching body.

    Random names almost never exist, so without this nearly every write would
    stop at 404 and the status invariant would be checked against nothing. The
    fourth keeps its generated (often invalid) name and body identity.
    """
    params = case.path_parameters or {}
    if "name" not in params:
        return
    pick = zlib.crc32(str(params["name"]).encode()) % 4
    if pick == 3:
        return
    params["namespace"] = "harvester-system"
    params["name"] = SEEDS[pick]
    # A copy: the generated body may be the document's own example object.
    body = case.body = copy.deepcopy(case.body)
    if isinstance(body, dict) and isinstance(body.get("metadata"), dict):
        meta = body["metadata"]
        meta["name"] = SEEDS[pick]
        meta["namespace"] = "harvester-system"
        body["id"] = f"harvester-system/{SEEDS[pick]}"
        if pick == 0:
            meta.pop("uid", None)  # a generated uid is never the seed's: always 409 otherwise
        if pick < 2:
            # Ask for the dismiss (generated labels almost never hold this key): a write on
            # the finished seed, a refusal on the one in progress. The third keeps its labels.
            labels = meta.get("labels")
            meta["labels"] = {**(labels if isinstance(labels, dict) else {}), READ_MESSAGE: "true"}


@pytest.fixture(scope="module")
def live() -> Iterator[LiveSandbox]:
    with LiveSandbox() as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def seed_statuses(live: LiveSandbox) -> dict[str, str]:
    return live.statuses()


# The live-update stream never ends by itself, so it is left out here; tests/test_events.py
# checks its events against this same document's event schema.
schema = schemathesis.openapi.from_dict(document()).exclude(operation_id="upgradeEvents")


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
)
def test_every_operation_conforms_and_never_touches_status(
    case: Any, live: LiveSandbox, seed_statuses: dict[str, str]
) -> None:
    _aim_at_real_objects(case)
    response = case.call(base_url=live.url, headers={"Authorization": "Bearer sandbox-admin"})
    case.validate_response(response, checks=CHECKS)
    assert live.statuses() == seed_statuses
    for method, content_type, body, _ in live.writes():
        assert method == "PATCH"
        assert content_type == "application/merge-patch+json"
        assert isinstance(body, dict)
        assert body == mark_read_patch(body["metadata"]["resourceVersion"])
    live.mark_unread()


WRITES = [
    ("PUT", "/api/{version}/upgrades/{namespace}/{name}"),
    ("POST", "/api/{version}/upgrades/{namespace}/{name}"),
    ("PUT", "/v1/harvester/harvesterhci.io.upgrades/{namespace}/{name}"),
]


@pytest.mark.parametrize(("method", "path"), WRITES)
def test_aimed_requests_reach_real_objects(live: LiveSandbox, method: str, path: str) -> None:
    """The aiming above works: generated writes, aimed as the test above aims them, make
    real writes upstream, so its invariants are checked against real writes, not only
    404s. It generates and sends its own requests, so it holds in any order."""
    operation = schema[path][method]
    statuses: list[int] = []

    @given(case=operation.as_strategy())
    @settings(max_examples=25, deadline=None, derandomize=True, database=None)
    def send(case: Any) -> None:
        _aim_at_real_objects(case)
        before = len(live.writes())
        response = case.call(base_url=live.url, headers={"Authorization": "Bearer sandbox-admin"})
        statuses.extend(status for *_, status in live.writes()[before:])
        assert response.status_code < 500
        live.mark_unread()

    send()
    assert 200 in statuses, f"no generated {method} {path} wrote anything: {statuses}"
