"""bff.middleware: the one place where errors become responses, and what every answer carries.

The app under test is the real one in front of the emulator; unexpected
failures are provoked from upstream (an answer the BFF cannot make sense of),
never by patching the BFF's code.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bff import captured
from bff.keys import METRICS, SETTINGS
from bff.metrics import Metrics
from bff.middleware import middlewares
from bff.sandbox.faults import EMULATOR_FAULTS, Fault
from bff.settings import Settings
from tests.conftest import Stack
from tests.support.backends import NAMESPACE, SUCCEEDED, Backend

ADMIN = {"Authorization": "Bearer sandbox-admin"}
CLEAN_500 = {
    "type": "error",
    "status": 500,
    "code": "InternalError",
    "message": "internal error; see the BFF's log",
}


async def _bare_app(aiohttp_client: Any, handler: Any) -> TestClient[web.Request, web.Application]:
    metrics = Metrics()
    bound = middlewares(
        trusted_proxies=(), allowed_origins=("https://rancher.example.com",), metrics_to=metrics
    )
    app = web.Application(middlewares=bound)
    app[SETTINGS] = Settings(allowed_origins=("https://rancher.example.com",))
    app[METRICS] = metrics
    app.router.add_get("/boom", handler)
    client: TestClient[web.Request, web.Application] = await aiohttp_client(app)
    return client


async def test_an_unexpected_error_is_a_clean_500_and_the_log_has_the_detail(
    aiohttp_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("secret-internal-detail")

    client = await _bare_app(aiohttp_client, boom)
    with caplog.at_level(logging.ERROR, logger="bff.middleware"):
        answer = await client.get("/boom", headers={"Origin": "https://rancher.example.com"})
        text = await answer.text()
    assert answer.status == 500
    assert json.loads(text) == CLEAN_500
    assert "secret-internal-detail" not in text
    assert "Traceback" not in text
    # Outer middlewares see a response: request id, security and CORS headers are there.
    assert answer.headers["X-Request-ID"]
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Access-Control-Allow-Origin"] == "https://rancher.example.com"
    (record,) = [r for r in caplog.records if r.name == "bff.middleware"]
    assert record.exc_info is not None
    assert "secret-internal-detail" in str(record.exc_info[1])


async def test_unknown_routes_and_methods_are_steve_errors(emulator_stack: Stack) -> None:
    client = emulator_stack.client
    missing = await client.get("/no/such/route")
    assert missing.status == 404
    assert (await missing.json())["code"] == "NotFound"
    wrong = await client.delete(f"/api/v1.0.5/upgrades/{NAMESPACE}/{SUCCEEDED}", headers=ADMIN)
    assert wrong.status == 405
    assert (await wrong.json())["code"] == "MethodNotAllowed"
    assert "PUT" in wrong.headers["Allow"]


async def test_an_unexpected_failure_of_a_write_is_audited_and_answered_cleanly(
    emulator_backend: Backend,
    stack_factory: Callable[..., Awaitable[Stack]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The emulator answers the BFF's read with a body that is not an object.

    Without the read cache, so that the guards' read is that upstream GET.
    """
    emulator_stack = await stack_factory(emulator_backend, read_cache=False)
    faults = emulator_stack.backend.app[EMULATOR_FAULTS]  # type: ignore[attr-defined]
    faults.add(Fault("GET", f"/upgrades/{SUCCEEDED}", status=200, body=["not", "an", "object"]))
    with caplog.at_level(logging.INFO, logger="bff.audit"):
        answer = await emulator_stack.client.put(
            f"/api/v1.0.5/upgrades/{NAMESPACE}/{SUCCEEDED}",
            json=captured.client_body("v1.0.5"),
            headers=ADMIN,
        )
        text = await answer.text()
    assert answer.status == 500
    assert json.loads(text) == CLEAN_500
    audits = [r for r in caplog.records if r.name == "bff.audit"]
    assert len(audits) == 1, "one audit line per write, even a failed one"
    entry = audits[0].audit  # type: ignore[attr-defined]
    assert entry["result"] == "error"
    assert entry["status"] == 500
    assert entry["action"] == "put"
    assert entry["object"] == f"{NAMESPACE}/{SUCCEEDED}"
    assert emulator_stack.upstream_writes() == []


async def test_a_refused_write_is_audited_once(
    emulator_stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="bff.audit"):
        answer = await emulator_stack.client.post(
            f"/api/v1.0.5/upgrades/{NAMESPACE}/{SUCCEEDED}?action=explode", headers=ADMIN
        )
    assert answer.status == 400
    audits = [r.audit for r in caplog.records if r.name == "bff.audit"]  # type: ignore[attr-defined]
    assert [(a["result"], a["code"], a["action"]) for a in audits] == [
        ("refused", "UnknownAction", "action")
    ]


@pytest.mark.parametrize(
    ("trusted", "client"), [((), "127.0.0.1"), (("127.0.0.0/8",), "203.0.113.9")]
)
async def test_the_access_line_names_a_trusted_proxys_client_and_otherwise_the_peer(
    aiohttp_client: Any,
    caplog: pytest.LogCaptureFixture,
    trusted: tuple[str, ...],
    client: str,
) -> None:
    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    metrics = Metrics()
    app = web.Application(
        middlewares=middlewares(trusted_proxies=trusted, allowed_origins=(), metrics_to=metrics)
    )
    app.router.add_get("/ok", ok)
    test_client = await aiohttp_client(app)
    with caplog.at_level(logging.INFO, logger="bff.access"):
        answer = await test_client.get("/ok", headers={"X-Forwarded-For": "203.0.113.9"})
        assert answer.status == 200
    (line,) = [r for r in caplog.records if r.name == "bff.access"]
    assert line.client == client  # type: ignore[attr-defined]


async def test_each_request_sets_its_id_in_a_task_of_its_own(aiohttp_client: Any) -> None:
    """The middleware sets the request id and never resets it: aiohttp serves each
    request in a task of its own (a copy of the context that ends with it), so the next
    request on the same connection starts without it."""
    import asyncio

    from bff.logs import request_id

    seen: list[tuple[str, object]] = []  # the tasks kept: an id alone may be reused

    async def ok(request: web.Request) -> web.Response:
        seen.append((request_id.get(), asyncio.current_task()))
        return web.Response(text="ok")

    metrics = Metrics()
    app = web.Application(
        middlewares=middlewares(trusted_proxies=(), allowed_origins=(), metrics_to=metrics)
    )
    app.router.add_get("/ok", ok)
    test_client = await aiohttp_client(app)
    for rid in ("rid-one", "rid-two"):  # one keep-alive connection
        async with test_client.get("/ok", headers={"X-Request-ID": rid}) as answer:
            assert answer.status == 200
    assert [s[0] for s in seen] == ["rid-one", "rid-two"]
    assert seen[0][1] is not seen[1][1]
    assert request_id.get() == "-"
