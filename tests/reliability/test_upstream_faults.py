"""Upstream faults: every client gets a correct error or result, nothing is written twice,
readiness follows the upstream's health, and the BFF recovers by itself.

Faults come from the emulator's fault hooks (errors, delays) and from a TCP
fault proxy (refused connections, answers cut mid-message).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bff.patches import mark_read_patch
from bff.sandbox.emulator import Fault
from tests.reliability.conftest import Served, ServeFactory
from tests.reliability.faultproxy import FaultProxy
from tests.support.backends import NAMESPACE, SUCCEEDED, served_emulator

ADMIN = {"Authorization": "Bearer sandbox-admin"}
DISMISS = f"/api/v1.0.5/upgrades/{NAMESPACE}/{SUCCEEDED}?action=dismiss"
READ = "harvesterhci.io/read-message"
#: The upstream call a dismiss starts with: the guards' GET of the object without the read
#: cache; with it (the object comes from the cache) the caller's access review.
FIRST_CALL = {False: ("GET", f"/{SUCCEEDED}"), True: ("POST", "/selfsubjectaccessreviews")}


async def ask(served: Served, method: str, path: str) -> tuple[int, dict[str, Any], Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, served.url + path, headers=ADMIN) as response,
    ):
        return response.status, await response.json(content_type=None), response.headers


def label_writes(served: Served) -> list[Any]:
    """Label patches the API server applied (faulted attempts answered otherwise)."""
    return [e for e in served.journal.writes("PATCH") if e.status == 200]


async def dismissed(served: Served) -> bool:
    async with served_emulator(served.emulator) as cluster:
        labels = (await cluster.read(SUCCEEDED))["metadata"]["labels"]
    return bool(labels.get(READ) == "true")


async def recovers_with_one_write(served: Served) -> None:
    status, body, headers = await ask(served, "POST", DISMISS)
    assert status == 200, body
    assert headers["X-Upgrade-Bff-Changed"] == "true"
    status, body, headers = await ask(served, "POST", DISMISS)
    assert (status, headers["X-Upgrade-Bff-Changed"]) == (200, "false")
    [write] = label_writes(served)
    assert write.body == mark_read_patch(write.body["metadata"]["resourceVersion"])
    assert await dismissed(served)


@pytest.fixture
async def proxy() -> AsyncIterator[list[FaultProxy]]:
    made: list[FaultProxy] = []
    yield made
    for p in made:
        await p.stop()


def via(made: list[FaultProxy]) -> Any:
    async def upstream(emulator: TestServer) -> str:
        p = FaultProxy("127.0.0.1", int(emulator.port or 0))
        await p.start()
        made.append(p)
        return p.url

    return upstream


@pytest.mark.parametrize("read_cache", [False, True], ids=["read-cache-off", "read-cache-on"])
async def test_connection_refused_is_503_not_ready_then_recovers(
    serve_factory: ServeFactory, proxy: list[FaultProxy], read_cache: bool
) -> None:
    served = await serve_factory(
        upstream=via(proxy), upstream_connect_timeout=1.0, read_cache=read_cache
    )
    for _ in range(250):  # ready once the read cache has synced
        if (await ask(served, "GET", "/readyz"))[0] == 200:
            break
        await asyncio.sleep(0.02)
    assert (await ask(served, "GET", "/readyz"))[0] == 200
    await proxy[0].refuse()
    for _ in range(3):
        status, body, _ = await ask(served, "POST", DISMISS)
        assert (status, body["code"]) == (503, "UpstreamUnavailable"), body
    assert (await ask(served, "GET", "/readyz"))[0] == 503
    assert label_writes(served) == []
    await proxy[0].restore()
    assert (await ask(served, "GET", "/readyz"))[0] == 200
    await recovers_with_one_write(served)


async def test_an_answer_cut_mid_message_is_a_5xx_and_nothing_is_written(
    serve_factory: ServeFactory, proxy: list[FaultProxy]
) -> None:
    served = await serve_factory(upstream=via(proxy))
    proxy[0].cut_after = 300  # inside the object's JSON, after the headers
    for _ in range(3):
        status, body, _ = await ask(served, "POST", DISMISS)
        assert status in (502, 503), body
        assert body["code"] == "UpstreamUnavailable"
    assert label_writes(served) == []
    proxy[0].cut_after = None
    await recovers_with_one_write(served)


@pytest.mark.parametrize("read_cache", [False, True], ids=["read-cache-off", "read-cache-on"])
async def test_a_hang_past_the_read_timeout_is_504_then_recovers(
    serve_factory: ServeFactory, read_cache: bool
) -> None:
    served = await serve_factory(upstream_read_timeout=0.5, read_cache=read_cache)
    served.faults.add(Fault(*FIRST_CALL[read_cache], delay=2.0, times=2))
    for _ in range(2):
        status, body, _ = await ask(served, "POST", DISMISS)
        assert (status, body["code"]) == (504, "UpstreamUnavailable"), body
    assert label_writes(served) == []
    await recovers_with_one_write(served)


async def test_a_hung_patch_is_504_and_is_not_sent_twice(serve_factory: ServeFactory) -> None:
    """The API server may still apply a patch the BFF gave up on: at most once, never twice."""
    served = await serve_factory(upstream_read_timeout=0.5)
    served.faults.add(Fault("PATCH", delay=1.5, times=1))
    status, body, _ = await ask(served, "POST", DISMISS)
    assert (status, body["code"]) == (504, "UpstreamUnavailable"), body
    status, body, _headers = await ask(served, "POST", DISMISS)
    assert status == 200, body
    # The abandoned attempt never applied (the BFF hung up: 499); the retry applied once.
    assert [e.status for e in served.journal.writes("PATCH")] == [499, 200]
    assert len(label_writes(served)) == 1


async def test_500s_are_502_nothing_written_then_recovers(serve_factory: ServeFactory) -> None:
    served = await serve_factory()
    served.faults.add(Fault("PATCH", status=500, times=3))
    for _ in range(3):
        status, body, _ = await ask(served, "POST", DISMISS)
        assert (status, body["code"]) == (502, "UpstreamUnavailable"), body
    assert label_writes(served) == []
    assert not await dismissed(served)
    await recovers_with_one_write(served)


@pytest.mark.parametrize("read_cache", [False, True], ids=["read-cache-off", "read-cache-on"])
async def test_429_passes_retry_after_through(
    serve_factory: ServeFactory, read_cache: bool
) -> None:
    served = await serve_factory(read_cache=read_cache)
    served.faults.add(Fault(*FIRST_CALL[read_cache], status=429, headers={"Retry-After": "7"}))
    status, body, headers = await ask(served, "POST", DISMISS)
    assert (status, body["code"], headers["Retry-After"]) == (429, "TooManyRequests", "7")
    assert label_writes(served) == []
    await recovers_with_one_write(served)


async def test_a_409_storm_past_the_retry_budget_is_409_nothing_written(
    serve_factory: ServeFactory,
) -> None:
    served = await serve_factory(conflict_retries=3)
    served.faults.add(Fault("PATCH", status=409, times=3))
    status, body, _ = await ask(served, "POST", DISMISS)
    assert (status, body["code"]) == (409, "ConflictRetriesExhausted"), body
    assert len(served.journal.writes("PATCH")) == 3
    assert label_writes(served) == []
    await recovers_with_one_write(served)


@pytest.mark.parametrize("read_cache", [False, True], ids=["read-cache-off", "read-cache-on"])
async def test_410_gone_is_a_5xx_nothing_written_then_recovers(
    serve_factory: ServeFactory, read_cache: bool
) -> None:
    served = await serve_factory(read_cache=read_cache)
    served.faults.add(Fault(*FIRST_CALL[read_cache], status=410, times=2))
    for _ in range(2):
        status, body, _ = await ask(served, "POST", DISMISS)
        assert (status, body["code"]) == (502, "UpstreamUnavailable"), body
    assert label_writes(served) == []
    await recovers_with_one_write(served)


async def test_readiness_follows_discovery_failures(serve_factory: ServeFactory) -> None:
    served = await serve_factory()
    served.faults.add(Fault("GET", "/apis/harvesterhci.io/v1beta1", status=503, times=1))
    assert (await ask(served, "GET", "/readyz"))[0] == 503
    assert (await ask(served, "GET", "/readyz"))[0] == 200


async def _bff_status(served: Served) -> Any:
    _, body, _ = await ask(served, "GET", f"/api/v1.0.5/upgrades/{NAMESPACE}/{SUCCEEDED}")
    return body.get("status")


async def _rewrite_status(served: Served, marker: str) -> Any:
    async with served_emulator(served.emulator) as cluster:
        path = cluster.path(SUCCEEDED)
        _, obj = await cluster.call("GET", path, token="sandbox-controller")
        obj["status"]["previousVersion"] = marker
        status, written = await cluster.call("PUT", path, obj, token="sandbox-controller")
        assert status == 200, written
        return written["status"]


async def _until(predicate: Any, rounds: int = 200) -> None:
    for _ in range(rounds):
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("not within the bound")


async def test_read_cache_watch_cut_mid_event_and_410_recover_by_themselves(
    serve_factory: ServeFactory, proxy: list[FaultProxy]
) -> None:
    served = await serve_factory(upstream=via(proxy), read_cache=True)

    async def ready() -> bool:
        return (await ask(served, "GET", "/readyz"))[0] == 200

    await _until(ready)
    watches = proxy[0].watches
    # The watch stream is cut inside the event the status rewrite causes.
    proxy[0].cut_watches(after=600)
    # ... and the watch after it is refused 410 Gone.
    served.faults.add(Fault("GET", "/upgrades", status=410, times=1))
    status = await _rewrite_status(served, "v1.4.cut")

    async def caught_up() -> bool:
        return await _bff_status(served) == status  # type: ignore[no-any-return]

    await _until(caught_up)
    assert proxy[0].watches >= watches + 2
    assert label_writes(served) == []
    await recovers_with_one_write(served)
    assert await ready()
