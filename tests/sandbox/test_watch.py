"""Emulator WATCH and DELETE: initial ADDED events, MODIFIED/DELETED, label-selector
transitions, finalizers deferring deletion, bookmarks, timeouts, and 410 Gone for an
expired resourceVersion, raw and through kubernetes-asyncio's Watch."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.exceptions import ApiException

from tests.support.backends import (
    BASE,
    FAILED,
    MERGE,
    NS,
    SUCCEEDED,
    EmulatorBackend,
)
from tests.support.waiting import until


async def read_events(emu: EmulatorBackend, query: str, count: int) -> list[dict[str, Any]]:
    """Open a watch and read ``count`` events (or until the server ends the stream)."""
    events: list[dict[str, Any]] = []
    headers = {"Authorization": "Bearer sandbox-admin"}
    async with emu.session.get(f"{emu.url}{BASE}?watch=true&{query}", headers=headers) as resp:
        assert resp.status == 200
        while len(events) < count:
            line = await asyncio.wait_for(resp.content.readline(), 5)
            if not line:
                break
            events.append(json.loads(line))
    return events


async def test_watch_from_nothing_starts_with_added_events(emu: EmulatorBackend) -> None:
    events = await read_events(emu, "timeoutSeconds=1", 10)
    assert [e["type"] for e in events] == ["ADDED"] * 3


async def test_watch_from_a_version_sends_later_changes(emu: EmulatorBackend) -> None:
    rv = emu.store.resource_version
    task = asyncio.create_task(read_events(emu, f"resourceVersion={rv}", 2))
    await until(lambda: emu.store.open_watches > 0, "the watch to be open")
    await emu.request("PATCH", f"{BASE}/{SUCCEEDED}", {"metadata": {"labels": {"a": "b"}}},
                   content_type=MERGE)  # fmt: skip
    await emu.request("PATCH", f"{BASE}/{FAILED}", {"metadata": {"labels": {"a": "c"}}},
                   content_type=MERGE)  # fmt: skip
    events = await task
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("MODIFIED", SUCCEEDED),
        ("MODIFIED", FAILED),
    ]
    assert events[1]["object"]["metadata"]["resourceVersion"] == str(rv + 2)


async def test_selector_watch_sees_objects_enter_and_leave(emu: EmulatorBackend) -> None:
    rv = emu.store.resource_version
    task = asyncio.create_task(read_events(emu, f"resourceVersion={rv}&labelSelector=a%3Db", 2))
    await until(lambda: emu.store.open_watches > 0, "the watch to be open")
    path = f"{BASE}/{SUCCEEDED}"
    await emu.request("PATCH", path, {"metadata": {"labels": {"a": "b"}}}, content_type=MERGE)
    await emu.request("PATCH", path, {"metadata": {"labels": {"a": "x"}}}, content_type=MERGE)
    events = await task
    assert [e["type"] for e in events] == ["ADDED", "DELETED"]
    assert events[1]["object"]["metadata"]["labels"]["a"] == "b"
    assert events[1]["object"]["metadata"]["resourceVersion"] == str(rv + 2)


async def test_finalizers_defer_deletion_until_the_last_one_goes(emu: EmulatorBackend) -> None:
    rv = emu.store.resource_version
    status, _, obj = await emu.request("DELETE", f"{BASE}/{SUCCEEDED}")
    assert status == 200
    assert obj["metadata"]["deletionTimestamp"]
    assert obj["metadata"]["deletionGracePeriodSeconds"] == 0
    assert obj["metadata"]["generation"] == 2
    assert emu.store.get(NS, SUCCEEDED) is not None
    status, _, _body = await emu.request(
        "PATCH", f"{BASE}/{SUCCEEDED}", {"metadata": {"finalizers": None}}, content_type=MERGE
    )
    assert status == 200
    assert emu.store.get(NS, SUCCEEDED) is None
    events = await read_events(emu, f"resourceVersion={rv}", 2)
    assert [e["type"] for e in events] == ["MODIFIED", "DELETED"]


async def test_delete_without_finalizers_answers_a_success_status(emu: EmulatorBackend) -> None:
    await emu.request("PATCH", f"{BASE}/{FAILED}", {"metadata": {"finalizers": None}},
                   content_type=MERGE)  # fmt: skip
    uid = emu.live(FAILED)["metadata"]["uid"]
    status, _, body = await emu.request("DELETE", f"{BASE}/{FAILED}")
    assert status == 200
    assert body["status"] == "Success"
    assert body["details"] == {"name": FAILED, "group": "harvesterhci.io", "kind": "upgrades",
                               "uid": uid}  # fmt: skip
    status, _, body = await emu.request("DELETE", f"{BASE}/{FAILED}")
    assert status == 404


async def test_too_old_resource_version_is_a_410_error_event(emu: EmulatorBackend) -> None:
    old = emu.store.resource_version
    await emu.request("PATCH", f"{BASE}/{SUCCEEDED}", {"metadata": {"labels": {"a": "b"}}},
                   content_type=MERGE)  # fmt: skip
    emu.store.compact()
    events = await read_events(emu, f"resourceVersion={old}", 5)
    assert events == [
        {
            "type": "ERROR",
            "object": {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": f"too old resource version: {old} ({old + 1})",
                "reason": "Expired",
                "code": 410,
            },
        }
    ]


async def test_bookmarks_and_timeout(emu: EmulatorBackend) -> None:
    rv = emu.store.resource_version
    events = await read_events(
        emu, f"resourceVersion={rv}&allowWatchBookmarks=true&timeoutSeconds=1", 10
    )
    assert events
    assert {e["type"] for e in events} == {"BOOKMARK"}
    assert events[0]["object"]["metadata"]["resourceVersion"] == str(rv)


async def test_kubernetes_asyncio_watch(
    emu: EmulatorBackend, kube: client.CustomObjectsApi
) -> None:
    rv = str(emu.store.resource_version)
    seen: list[tuple[str, str]] = []

    async def consume() -> None:
        async with watch.Watch() as stream:
            async for event in stream.stream(
                kube.list_namespaced_custom_object, "harvesterhci.io", "v1beta1", NS, "upgrades",
                resource_version=rv, timeout_seconds=5,
            ):  # fmt: skip
                seen.append((event["type"], event["object"]["metadata"]["name"]))
                return

    task = asyncio.create_task(consume())
    await until(lambda: emu.store.open_watches > 0, "the watch to be open")
    await emu.request("PATCH", f"{BASE}/{SUCCEEDED}", {"metadata": {"labels": {"a": "b"}}},
                   content_type=MERGE)  # fmt: skip
    await asyncio.wait_for(task, 5)
    assert seen == [("MODIFIED", SUCCEEDED)]


async def test_kubernetes_asyncio_raises_410_for_an_expired_watch(
    emu: EmulatorBackend, kube: client.CustomObjectsApi
) -> None:
    old = str(emu.store.resource_version)
    await emu.request("PATCH", f"{BASE}/{SUCCEEDED}", {"metadata": {"labels": {"a": "b"}}},
                   content_type=MERGE)  # fmt: skip
    emu.store.compact()

    async def drain() -> None:
        async with watch.Watch() as stream:
            async for _ in stream.stream(
                kube.list_namespaced_custom_object, "harvesterhci.io", "v1beta1", NS, "upgrades",
                resource_version=old, timeout_seconds=5,
            ):  # fmt: skip
                pass

    with pytest.raises(ApiException) as info:
        await drain()
    assert info.value.status == 410
    assert "too old resource version" in str(info.value.reason)


async def test_open_watches_end_when_the_server_stops(emu: EmulatorBackend) -> None:
    headers = {"Authorization": "Bearer sandbox-admin"}
    async with emu.session.get(f"{emu.url}{BASE}?watch=1", headers=headers) as resp:
        for _ in range(3):
            await resp.content.readline()
        emu.store.close_watchers()
        rest = await asyncio.wait_for(resp.content.read(), 5)
    assert rest == b""
    assert isinstance(resp, aiohttp.ClientResponse)
