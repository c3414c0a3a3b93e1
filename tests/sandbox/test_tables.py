"""bff.sandbox.tables: the Table kube-apiserver answers when asked ``as=Table`` (kubectl's
human-readable get and get -w), checked field by field against what v1.36.3 sends."""

from __future__ import annotations

import asyncio
import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from bff.sandbox.schema import load_crd
from bff.sandbox.tables import columns, human_duration, table
from tests.support.backends import BASE, FAILED, IN_PROGRESS, SUCCEEDED, EmulatorBackend

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(-5, "<invalid>"), (-1, "0s"), (0, "0s"), (119, "119s"), (120, "2m"), (150, "2m30s"),
     (600, "10m"), (3 * 3600 - 1, "179m"), (3 * 3600, "3h"), (3 * 3600 + 60, "3h1m"),
     (8 * 3600, "8h"), (47 * 3600, "47h"), (48 * 3600, "2d"), (49 * 3600, "2d1h"),
     (8 * 86400, "8d"), (730 * 86400, "2y"), (731 * 86400, "2y1d"), (9 * 365 * 86400, "9y")],
)  # fmt: skip
def test_ages_read_like_kubectls(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


def test_this_crd_has_name_and_age() -> None:
    assert [(c["name"], c["type"], c["format"]) for c in columns()] == [
        ("Name", "string", "name"),
        ("Age", "date", ""),
    ]


def test_printer_columns_come_from_the_crd() -> None:
    crd = copy.deepcopy(load_crd())
    crd["spec"]["versions"][0]["additionalPrinterColumns"] = [
        {"name": "Version", "type": "string", "jsonPath": ".spec.version", "priority": 1},
        {"name": "Created", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    defined = columns(crd)
    assert [(c["name"], c["priority"], c["jsonPath"]) for c in defined] == [
        ("Name", 0, None),
        ("Version", 1, ".spec.version"),
        ("Created", 0, ".metadata.creationTimestamp"),
    ]


def test_a_table_row_per_object_with_partial_metadata() -> None:
    obj: dict[str, Any] = {
        "kind": "Upgrade",
        "metadata": {"name": "u", "creationTimestamp": "2026-01-01T00:00:00Z"},
    }
    now = datetime(2026, 1, 1, 0, 5, tzinfo=UTC)
    answer = table([obj], {"resourceVersion": "7"}, now=now)
    assert answer["kind"] == "Table"
    assert answer["apiVersion"] == "meta.k8s.io/v1"
    assert answer["metadata"] == {"resourceVersion": "7"}
    assert answer["rows"] == [
        {
            "cells": ["u", "5m"],
            "object": {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj["metadata"],
            },
        }
    ]
    assert "columnDefinitions" not in table([obj], {}, with_columns=False)


async def test_get_and_list_as_table(emu: EmulatorBackend) -> None:
    status, _, one = await emu.request("GET", f"{BASE}/{SUCCEEDED}", headers={"Accept": TABLE})
    assert status == 200
    live = emu.live(SUCCEEDED)
    assert one["metadata"] == {"resourceVersion": live["metadata"]["resourceVersion"]}
    assert [r["cells"][0] for r in one["rows"]] == [SUCCEEDED]
    assert one["rows"][0]["object"]["metadata"] == live["metadata"]

    status, _, listed = await emu.request("GET", f"{BASE}?limit=1", headers={"Accept": TABLE})
    assert status == 200
    assert [r["cells"][0] for r in listed["rows"]] == [SUCCEEDED]
    assert listed["metadata"]["remainingItemCount"] == 2
    assert listed["metadata"]["continue"]

    status, _, bare = await emu.request(
        "GET", f"{BASE}?includeObject=None", headers={"Accept": TABLE}
    )
    assert [(r["cells"][0], r["object"]) for r in bare["rows"]] == [
        (SUCCEEDED, None), (FAILED, None), (IN_PROGRESS, None)
    ]  # fmt: skip
    status, _, full = await emu.request(
        "GET", f"{BASE}/{FAILED}?includeObject=Object", headers={"Accept": TABLE}
    )
    assert full["rows"][0]["object"] == emu.live(FAILED)
    # Without the Table media type: the object itself.
    status, _, plain = await emu.request("GET", f"{BASE}/{SUCCEEDED}")
    assert plain == live


async def test_a_table_watch_sends_columns_once(emu: EmulatorBackend) -> None:
    rv = str(emu.store.resource_version)
    headers = {"Authorization": "Bearer sandbox-admin", "Accept": TABLE}
    url = f"{emu.url}{BASE}?watch=true&resourceVersion={rv}"
    async with emu.session.get(url, headers=headers) as resp:
        for name in (FAILED, IN_PROGRESS):
            await emu.merge_patch(name, {"metadata": {"labels": {"t": "x"}}})
        events = [json.loads(await asyncio.wait_for(resp.content.readline(), 10)) for _ in "ab"]
    assert [e["type"] for e in events] == ["MODIFIED", "MODIFIED"]
    assert [e["object"]["rows"][0]["cells"][0] for e in events] == [FAILED, IN_PROGRESS]
    assert "columnDefinitions" in events[0]["object"]
    assert "columnDefinitions" not in events[1]["object"]
    assert events[1]["object"]["metadata"] == {
        "resourceVersion": emu.live(IN_PROGRESS)["metadata"]["resourceVersion"]
    }
