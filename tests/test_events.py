"""Live updates: server-sent events fed from the read cache, authorised like reads."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import jsonschema
from aiohttp import ClientResponse

from bff.keys import CACHE
from bff.openapi import document
from tests.conftest import Stack
from tests.support.backends import NAMESPACE, SUCCEEDED, Backend

EVENTS = "/api/v1.0.5/upgrades/events"
#: The OpenAPI document's schema of one event (the generated API tests leave the stream out).
_DOC: Any = document()
EVENT_SCHEMA = _DOC["paths"]["/api/{version}/upgrades/events"]["get"]["responses"]["200"][
    "content"
]["text/event-stream"]["schema"]


async def _event(response: ClientResponse) -> tuple[str, Any]:
    while True:
        raw = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 10)
        text = raw.decode()
        if text.startswith(":"):  # keepalive comment
            continue
        fields = dict(line.split(": ", 1) for line in text.strip().splitlines())
        jsonschema.validate(fields, EVENT_SCHEMA)
        return fields["event"], json.loads(fields["data"])


async def test_a_snapshot_then_each_change(
    emulator_backend: Backend, stack_factory: Callable[..., Awaitable[Stack]]
) -> None:
    stack = await stack_factory(emulator_backend, read_cache=True)
    await asyncio.wait_for(stack.client.app[CACHE].wait_synced(), 10)
    async with stack.client.get(
        EVENTS, headers={"Authorization": "Bearer sandbox-viewer"}
    ) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/event-stream"
        kind, snapshot = await _event(response)
        assert kind == "snapshot"
        assert snapshot["type"] == "collection"
        assert snapshot["count"] == 3
        await emulator_backend.merge_patch(SUCCEEDED, {"metadata": {"labels": {"seen": "yes"}}})
        kind, change = await _event(response)
        assert kind == "change"
        assert change["type"] == "MODIFIED"
        assert change["id"] == f"{NAMESPACE}/{SUCCEEDED}"
        assert change["object"]["metadata"]["labels"]["seen"] == "yes"
        assert change["object"]["links"]["self"].endswith(f"/{NAMESPACE}/{SUCCEEDED}")


async def test_live_updates_are_authorised_like_reads(
    emulator_backend: Backend, stack_factory: Callable[..., Awaitable[Stack]]
) -> None:
    stack = await stack_factory(emulator_backend, read_cache=True)
    await asyncio.wait_for(stack.client.app[CACHE].wait_synced(), 10)
    for token, status in (("sandbox-nobody", 403), ("no-such-token", 401)):
        response = await stack.client.get(EVENTS, headers={"Authorization": f"Bearer {token}"})
        assert response.status == status
    assert (await stack.client.get(EVENTS)).status == 401


async def test_without_the_read_cache_there_are_no_live_updates(
    emulator_backend: Backend, stack_factory: Callable[..., Awaitable[Stack]]
) -> None:
    stack = await stack_factory(emulator_backend, read_cache=False)
    response = await stack.client.get(EVENTS, headers={"Authorization": "Bearer sandbox-admin"})
    assert response.status == 404
    assert (await response.json())["code"] == "LiveUpdatesOff"


async def test_one_change_reaches_every_stream_in_its_own_versions_form(
    emulator_backend: Backend, stack_factory: Callable[..., Awaitable[Stack]]
) -> None:
    """The frame is rendered once per change and client version: streams of v1.0.4 and
    v1.0.5 open side by side each get their version's resource (v1.0.4 has no actions),
    the same as a GET of the item in that version answers."""
    stack = await stack_factory(emulator_backend, read_cache=True)
    await asyncio.wait_for(stack.client.app[CACHE].wait_synced(), 10)
    headers = {"Authorization": "Bearer sandbox-admin"}
    versions = ("v1.0.4", "v1.0.5", "v1.0.4", "v1.0.5")
    streams = [
        await stack.client.get(f"/api/{v}/upgrades/events", headers=headers) for v in versions
    ]
    try:
        for response in streams:
            assert response.status == 200
            assert (await _event(response))[0] == "snapshot"
        await emulator_backend.merge_patch(SUCCEEDED, {"metadata": {"labels": {"seen": "both"}}})
        for version, response in zip(versions, streams, strict=True):
            kind, change = await _event(response)
            assert kind == "change"
            assert change["object"]["metadata"]["labels"]["seen"] == "both"
            item = await stack.client.get(
                f"/api/{version}/upgrades/{NAMESPACE}/{SUCCEEDED}", headers=headers
            )
            assert change["object"] == await item.json(), version
            assert ("actions" in change["object"]) is (version == "v1.0.5"), version
    finally:
        for response in streams:
            response.close()
