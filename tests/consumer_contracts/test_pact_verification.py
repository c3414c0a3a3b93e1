"""Provider verification of the dashboard extension's pacts against the running sandbox.

The pacts are written by the consumer tests in ``contracts/consumer`` (JavaScript,
``npm test`` there; ``scripts/test`` runs them first). Here pact-python's
verifier replays every interaction of every pact against ``harvester-upgrade-bff
sandbox`` run as a user runs it, asking the sandbox-only state-change endpoint
for each provider state first, and checks each answer against the consumer's
matchers. Every interaction must pass; a pending one would not fail a build, so
none may be pending.

Without pact files this skips with one line, unless BFF_REQUIRE_PACTS=1 (set
by ``scripts/test`` once it has written them), which makes it a failure.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pact import Verifier

from bff.sandbox.provider_states import PATH as STATES_PATH
from bff.sandbox.provider_states import STATES
from tests.consumer_contracts.sandbox_process import running_sandbox

ROOT = Path(__file__).resolve().parents[2]
PACTS = ROOT / "contracts" / "pacts"
PROVIDER = "harvester-upgrade-bff"
CONSUMERS = ("harvester-ui-extension-v1.0.4", "harvester-ui-extension-v1.0.5")
REQUIRE = os.environ.get("BFF_REQUIRE_PACTS") == "1"


def pact_file(consumer: str) -> Path:
    path = PACTS / f"{consumer}-{PROVIDER}.json"
    if not path.is_file():
        why = (
            f"no pact file {path.relative_to(ROOT)}: run `npm --prefix contracts/consumer ci "
            "&& npm --prefix contracts/consumer test` (bash scripts/test does)"
        )
        if REQUIRE:
            pytest.fail(why)
        pytest.skip(why)
    return path


def interactions(path: Path) -> list[dict[str, Any]]:
    pact = json.loads(path.read_text())
    assert pact["metadata"]["pactSpecification"]["version"].startswith("4."), "not a V4 pact"
    assert pact["provider"]["name"] == PROVIDER
    found: list[dict[str, Any]] = pact["interactions"]
    return found


def verify(path: Path, provider_url: str, states_url: str) -> tuple[bool, str]:
    """Run the verifier over one pact file; whether it passed, and its report."""
    # The Pact library sends anonymous usage events unless told not to; this suite sends none.
    os.environ["PACT_DO_NOT_TRACK"] = "true"
    host = urlsplit(provider_url).hostname
    verifier = (
        Verifier(PROVIDER, host=host)
        .add_transport(url=provider_url)
        .add_source(path)
        .state_handler(states_url, teardown=True, body=True)
        .set_error_on_empty_pact(enabled=True)
        .set_coloured_output(enabled=False)
    )
    try:
        verifier.verify()
    except RuntimeError:
        return False, verifier.output(strip_ansi=True)
    return True, verifier.output(strip_ansi=True)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[str]:
    with running_sandbox() as url:
        yield url


@pytest.fixture(scope="module")
def sandbox_under_a_base_path() -> Iterator[str]:
    with running_sandbox("--base-path", "/harvester-upgrade-bff") as url:
        assert url.endswith("/harvester-upgrade-bff")
        yield url


@pytest.mark.parametrize("consumer", CONSUMERS)
def test_every_interaction_verifies_under_the_ingress_base_path(
    consumer: str, sandbox_under_a_base_path: str
) -> None:
    # Behind an Ingress that routes by prefix: the verifier puts the base path in
    # front of every interaction's path; links and actions must still fit.
    path = pact_file(consumer)
    ok, report = verify(path, sandbox_under_a_base_path, sandbox_under_a_base_path + STATES_PATH)
    assert ok, report
    assert "FAILED" not in report, report


@pytest.mark.parametrize("consumer", CONSUMERS)
def test_every_interaction_of_the_pact_verifies_against_the_sandbox(
    consumer: str, sandbox: str
) -> None:
    path = pact_file(consumer)
    found = interactions(path)
    assert found, f"{path.name} has no interactions"
    assert [i["description"] for i in found if i.get("pending")] == []
    states = {s["name"] for i in found for s in i.get("providerStates", [])}
    assert states <= set(STATES), f"states the provider does not know: {states - set(STATES)}"

    ok, report = verify(path, sandbox, sandbox + STATES_PATH)

    assert ok, report
    # The verifier's report names each interaction it replayed, with its outcome.
    for interaction in found:
        assert f"{interaction['description']}" in report, report
    assert "FAILED" not in report, report


# --- the verification can fail ----------------------------------------------------------
#
# A real HTTP proxy in front of the same sandbox breaks one part of the response
# shape; every interaction that relies on that part, and only those, must fail.

_HOP = {"host", "content-length", "transfer-encoding", "content-encoding", "connection"}
Mutation = Callable[[int, dict[str, str], Any], tuple[dict[str, str], Any]]


def _drop_status(status: int, headers: dict[str, str], body: Any) -> tuple[dict[str, str], Any]:
    for obj in [body, *(body.get("data", []) if isinstance(body, dict) else [])]:
        if isinstance(obj, dict) and isinstance(obj.get("status"), dict):
            del obj["status"]
    return headers, body


def _plain_errors(status: int, headers: dict[str, str], body: Any) -> tuple[dict[str, str], Any]:
    if status >= 400 and isinstance(body, dict):
        body = {"error": body.get("message", "")}
    return headers, body


def _no_changed_header(
    status: int, headers: dict[str, str], body: Any
) -> tuple[dict[str, str], Any]:
    return {k: v for k, v in headers.items() if k.lower() != "x-upgrade-bff-changed"}, body


def _relies_on_status(interaction: dict[str, Any]) -> bool:
    content = interaction["response"].get("body", {}).get("content")
    items = [content, *(content.get("data", []) if isinstance(content, dict) else [])]
    return any(isinstance(i, dict) and isinstance(i.get("status"), dict) for i in items)


BREAKAGES: dict[str, tuple[Mutation, Callable[[dict[str, Any]], bool], str]] = {
    "status dropped from every resource": (
        _drop_status,
        _relies_on_status,
        "missing the following keys: status",
    ),
    "errors not in Steve's shape": (
        _plain_errors,
        lambda i: i["response"]["status"] >= 400,
        "missing the following keys: code, message, status, type",
    ),
    "X-Upgrade-Bff-Changed header dropped": (
        _no_changed_header,
        lambda i: "X-Upgrade-Bff-Changed" in i["response"].get("headers", {}),
        "Expected a header 'X-Upgrade-Bff-Changed' but was missing",
    ),
}

_FAILED = re.compile(r"^\d+\) Verifying a pact between .+? - (.+)$", re.MULTILINE)


async def _corrupting_proxy(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    http: aiohttp.ClientSession,
    upstream: str,
    mutate: Mutation,
) -> str:
    async def forward(request: web.Request) -> web.Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        async with http.request(
            request.method,
            upstream + request.path_qs,
            headers=headers,
            data=await request.read() or None,
        ) as answer:
            raw = await answer.read()
            out = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP}
            status = answer.status
        body: Any = json.loads(raw) if raw else None
        out, body = mutate(status, out, body)
        return web.Response(
            status=status, headers=out, body=json.dumps(body).encode() if raw else b""
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    server = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/")


@pytest.mark.parametrize("breakage", list(BREAKAGES))
@pytest.mark.parametrize("consumer", CONSUMERS)
async def test_a_broken_response_shape_fails_the_verification(
    consumer: str,
    breakage: str,
    sandbox: str,
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    http: aiohttp.ClientSession,
) -> None:
    mutate, affected, says = BREAKAGES[breakage]
    path = pact_file(consumer)
    expected = {i["description"] for i in interactions(path) if affected(i)}
    assert expected, f"no interaction of {consumer} relies on what this breaks"
    proxy = await _corrupting_proxy(aiohttp_server, http, sandbox, mutate)

    # The verifier blocks; the proxy needs this loop, so the verifier gets a thread.
    ok, report = await asyncio.to_thread(verify, path, proxy, sandbox + STATES_PATH)

    assert not ok, report
    assert set(_FAILED.findall(report)) == expected, report
    assert says in report
