"""Operable: probes, metrics, logs with request ids, graceful shutdown.

Everything runs against the emulator through the real client; shutdown runs
the real server start/stop path with a slow upstream request in flight.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from bff import captured, logs
from bff.app import create_app
from bff.keys import CACHE, READINESS
from bff.logs import LogFormat
from bff.sandbox.emulator import EMULATOR_FAULTS, Fault, create_emulator_app
from bff.sandbox.kubeconfig import write_kubeconfig
from bff.server import start, stop
from bff.settings import Settings
from tests.conftest import Stack
from tests.support.backends import IN_PROGRESS, NAMESPACE, SUCCEEDED, Backend

ADMIN = {"Authorization": "Bearer sandbox-admin"}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


async def test_healthz_makes_no_upstream_call(emulator_stack: Stack) -> None:
    response = await emulator_stack.client.get("/healthz")
    assert response.status == 200
    assert emulator_stack.caller_requests() == []


async def test_readyz_follows_the_upstream_and_recovers(
    tmp_path: Path, aiohttp_client: Callable[..., Awaitable[Any]]
) -> None:
    emulator = web.AppRunner(create_emulator_app(), handle_signals=False)
    await emulator.setup()
    site = web.TCPSite(emulator, "127.0.0.1", 0)
    await site.start()
    port = emulator.addresses[0][1]
    config = write_kubeconfig(tmp_path / "k", f"http://127.0.0.1:{port}", token="sandbox-bff")
    client = await aiohttp_client(
        create_app(Settings(kubeconfig=str(config), upstream_connect_timeout=0.5))
    )
    try:
        await asyncio.wait_for(client.app[CACHE].wait_synced(), 10)  # ready once synced
        assert (await client.get("/readyz")).status == 200
        await emulator.cleanup()
        down = await client.get("/readyz")
        assert down.status == 503
        assert "reason" in await down.json()
        emulator = web.AppRunner(create_emulator_app(), handle_signals=False)
        await emulator.setup()
        await web.TCPSite(emulator, "127.0.0.1", port).start()
        assert (await client.get("/readyz")).status == 200
    finally:
        await emulator.cleanup()


async def test_readyz_needs_the_upgrade_crd(
    emulator_backend: Backend, stack_factory: Callable[..., Awaitable[Stack]]
) -> None:
    stack = await stack_factory(emulator_backend)
    faults = emulator_backend.app[EMULATOR_FAULTS]  # type: ignore[attr-defined]
    faults.add(Fault("GET", "/apis/harvesterhci.io/v1beta1", status=404))
    response = await stack.client.get("/readyz")
    assert response.status == 503
    assert "discovery failed" in (await response.json())["reason"]


async def test_metrics_count_what_the_bff_did(emulator_stack: Stack) -> None:
    client = emulator_stack.client
    body = captured.client_body("v1.0.4")
    put = await client.put(f"/api/v1.0.4/upgrades/{NAMESPACE}/{SUCCEEDED}", json=body,
                           headers=ADMIN)  # fmt: skip
    assert put.status == 200
    again = await client.put(f"/api/v1.0.4/upgrades/{NAMESPACE}/{SUCCEEDED}", json=body,
                             headers=ADMIN)  # fmt: skip
    assert again.status == 200
    refused = await client.post(
        f"/api/v1.0.5/upgrades/{NAMESPACE}/{IN_PROGRESS}?action=dismiss", headers=ADMIN
    )
    assert refused.status == 409

    text = await (await client.get("/metrics")).text()
    got = samples(text)
    assert got[("bff_status_wipes_prevented_total", ())] == 2
    assert got[("bff_writes_total", (("result", "performed"),))] == 1
    assert got[("bff_writes_total", (("result", "skipped"),))] == 1
    assert got[("bff_ignored_fields_total", (("category", "status"),))] == 2
    route = "/api/{version}/upgrades/{namespace}/{name}"
    key = (("action", "put"), ("client_version", "v1.0.4"), ("route", route), ("status", "200"))
    assert got[("bff_http_requests_total", key)] == 2
    key = (("action", "dismiss"), ("client_version", "v1.0.5"), ("route", route), ("status", "409"))
    assert got[("bff_http_requests_total", key)] == 1
    assert got[("bff_upstream_request_duration_seconds_count", (("verb", "patch"),))] == 1
    assert got[("bff_http_requests_in_flight", ())] == 1  # the /metrics request itself
    # Bounded cardinality: no object names, users or tokens in any label.
    for (_, labels), _value in got.items():
        for _, value in labels:
            assert SUCCEEDED not in value
            assert "sandbox-admin" not in value


async def test_conflict_retries_are_counted_and_bounded(
    emulator_backend: Backend, stack_factory: Callable[..., Awaitable[Stack]]
) -> None:
    stack = await stack_factory(emulator_backend, conflict_retries=3)
    faults = emulator_backend.app[EMULATOR_FAULTS]  # type: ignore[attr-defined]

    def bump(store: Any) -> None:
        store.bump(NAMESPACE, SUCCEEDED)

    # Someone writes between the BFF's read and its patch, twice: two real 409s, then success.
    faults.add(Fault("PATCH", f"/upgrades/{SUCCEEDED}", action=bump, times=2))
    url = f"/api/v1.0.5/upgrades/{NAMESPACE}/{SUCCEEDED}?action=dismiss"
    ok = await stack.client.post(url, headers=ADMIN)
    assert ok.status == 200
    assert [w.status for w in stack.upstream_writes()] == [409, 409, 200]
    got = samples(await (await stack.client.get("/metrics")).text())
    assert got[("bff_conflict_retries_total", ())] == 2

    await emulator_backend.merge_patch(
        SUCCEEDED, {"metadata": {"labels": {"harvesterhci.io/read-message": None}}}
    )
    await stack.settle()  # the read cache has seen the label go
    stack.recorder.writes.clear()
    faults.add(Fault("PATCH", f"/upgrades/{SUCCEEDED}", action=bump, times=10))
    exhausted = await stack.client.post(url, headers=ADMIN)
    assert exhausted.status == 409
    assert (await exhausted.json())["code"] == "ConflictRetriesExhausted"
    assert len(stack.upstream_writes()) == 3


async def test_json_logs_carry_the_request_id(
    emulator_stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = io.StringIO()
    logs.configure(LogFormat.JSON, "INFO", stream)
    try:
        given = await emulator_stack.client.post(
            f"/api/v1.0.5/upgrades/{NAMESPACE}/{SUCCEEDED}?action=dismiss",
            headers={**ADMIN, "X-Request-ID": "req-123"},
        )
        assert given.headers["X-Request-ID"] == "req-123"
        bad = await emulator_stack.client.get("/healthz", headers={"X-Request-ID": "bad id!"})
        generated = bad.headers["X-Request-ID"]
        assert generated != "bad id!"
        assert len(generated) == 32
    finally:
        logging.getLogger().handlers.clear()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    audit = [line for line in lines if line["logger"] == "bff.audit"]
    assert audit
    assert audit[0]["request_id"] == "req-123"
    assert audit[0]["audit"]["action"] == "dismiss"
    assert all("request_id" in line for line in lines)


async def test_access_log_has_the_route_template_not_the_path(tmp_path: Path) -> None:
    stream = io.StringIO()
    logs.configure(LogFormat.JSON, "INFO", stream)
    emulator = web.AppRunner(create_emulator_app(), handle_signals=False)
    await emulator.setup()
    await web.TCPSite(emulator, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{emulator.addresses[0][1]}"
    settings = Settings(
        kubeconfig=str(write_kubeconfig(tmp_path / "k", url, token="sandbox-bff")), port=0
    )
    runner, bff = await start(create_app(settings), settings)
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                f"{bff}/api/v1.0.5/upgrades/{NAMESPACE}/{SUCCEEDED}?secret=1", headers=ADMIN
            ) as response,
        ):
            assert response.status == 200
    finally:
        await stop(runner)
        await emulator.cleanup()
        logging.getLogger().handlers.clear()
    access = [json.loads(x) for x in stream.getvalue().splitlines() if '"bff.access"' in x]
    assert access[0]["route"] == "/api/{version}/upgrades/{namespace}/{name}"
    assert SUCCEEDED not in json.dumps(access)
    assert "secret" not in json.dumps(access)


async def test_shutdown_lets_in_flight_requests_finish(
    tmp_path: Path, aiohttp_server: Callable[..., Awaitable[TestServer]]
) -> None:
    emulator_app = create_emulator_app()
    emulator = await aiohttp_server(emulator_app)
    config = write_kubeconfig(
        tmp_path / "k", str(emulator.make_url("")).rstrip("/"), token="sandbox-bff"
    )
    settings = Settings(kubeconfig=str(config), port=0, shutdown_timeout=5)
    app = create_app(settings)
    runner, bff = await start(app, settings)
    await asyncio.wait_for(app[CACHE].wait_synced(), 10)
    arrived = asyncio.Event()
    # The upstream PATCH of a dismiss arrives (and says so), then takes a second to answer.
    emulator_app[EMULATOR_FAULTS].add(
        Fault("PATCH", f"/upgrades/{SUCCEEDED}", delay=1.0, action=lambda store: arrived.set())
    )
    async with aiohttp.ClientSession() as session:
        slow = asyncio.ensure_future(
            session.post(
                f"{bff}/api/v1.0.5/upgrades/{NAMESPACE}/{SUCCEEDED}?action=dismiss",
                headers=ADMIN,
            )
        )
        await asyncio.wait_for(arrived.wait(), 10)
        stopping = asyncio.ensure_future(stop(runner))
        for _ in range(200):
            if await app[READINESS].problem() == "shutting down":
                break
            await asyncio.sleep(0.01)
        else:
            pytest.fail("readiness did not turn false while a request was in flight")
        assert not stopping.done(), "stop waits for the request in flight"
        response = await slow
        assert response.status == 200
        assert (await response.json())["metadata"]["name"] == SUCCEEDED
        await stopping
    # The BFF's clients (the read cache's watch among them) closed their connections to the
    # API server after the request finished.
    for _ in range(100):
        if not emulator.runner.server.connections:  # type: ignore[union-attr]
            break
        await asyncio.sleep(0.05)
    assert emulator.runner.server.connections == [], "clients close after requests finish"  # type: ignore[union-attr]


async def test_every_route_mounts_under_a_base_path(
    emulator_backend: Backend, stack_factory: Callable[..., Awaitable[Stack]]
) -> None:
    base = "/harvester-upgrade-bff"
    stack = await stack_factory(emulator_backend, base_path=base)
    client = stack.client
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/"):
        assert (await client.get(f"{base}{path}")).status == 200, path
        assert (await client.get(path)).status == 404, path
    listed = await (await client.get(f"{base}/api/v1.0.5/upgrades", headers=ADMIN)).json()
    assert listed["links"]["self"] == f"{base}/api/v1.0.5/upgrades"
    item = listed["data"][0]
    name = item["metadata"]["name"]
    assert item["links"]["self"] == f"{base}/api/v1.0.5/upgrades/{NAMESPACE}/{name}"
    assert item["actions"]["dismiss"].startswith(f"{base}/api/v1.0.5/")
    steve = await client.get(
        f"{base}/v1/harvester/harvesterhci.io.upgrades/{NAMESPACE}/{SUCCEEDED}", headers=ADMIN
    )
    assert (await steve.json())["links"]["self"].startswith(f"{base}/v1/harvester/")
    redirect = await client.get(base, allow_redirects=False)
    assert redirect.status == 302
    assert redirect.headers["Location"] == f"{base}/"
