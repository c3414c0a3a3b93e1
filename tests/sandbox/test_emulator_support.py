"""Emulator test support: the write journal, fault injection, seeding through the create
path, and request logs that never show a token."""

from __future__ import annotations

import logging
import time

import pytest

from bff.sandbox.emulator import EMULATOR_FAULTS, EMULATOR_JOURNAL, Fault
from bff.sandbox.seed import creatable, seed_objects
from bff.sandbox.store import Store
from tests.sandbox.emuclient import BASE, MERGE, NS, SUCCEEDED, Emu

PATCH = {"metadata": {"labels": {"harvesterhci.io/read-message": "true"}}}


async def test_journal_records_every_write_as_it_arrived(emu: Emu) -> None:
    await emu.call("GET", BASE)
    await emu.call("PATCH", f"{BASE}/{SUCCEEDED}?fieldManager=t", PATCH, content_type=MERGE)
    await emu.call("PATCH", f"{BASE}/{SUCCEEDED}", PATCH, token="sandbox-viewer",
                   content_type=MERGE)  # fmt: skip
    entries = emu.server.app[EMULATOR_JOURNAL].writes()
    assert [(e.method, e.status, e.user) for e in entries] == [
        ("PATCH", 200, "sandbox-admin"),
        ("PATCH", 403, "sandbox-viewer"),
    ]
    first = entries[0]
    assert first.path == f"{BASE}/{SUCCEEDED}"
    assert first.query == {"fieldManager": "t"}
    assert first.content_type == MERGE
    assert first.body == PATCH


@pytest.mark.parametrize("code", [429, 500, 503])
async def test_fault_answers_a_status_with_headers(emu: Emu, code: int) -> None:
    emu.server.app[EMULATOR_FAULTS].add(
        Fault("PATCH", path_suffix=SUCCEEDED, status=code, headers={"Retry-After": "3"})
    )
    status, headers, body = await emu.call("PATCH", f"{BASE}/{SUCCEEDED}", PATCH,
                                           content_type=MERGE)  # fmt: skip
    assert status == code
    assert headers["Retry-After"] == "3"
    assert body["kind"] == "Status"
    assert body["code"] == code
    # used up: the next request goes through
    status, _, _ = await emu.call("PATCH", f"{BASE}/{SUCCEEDED}", PATCH, content_type=MERGE)
    assert status == 200


async def test_fault_delay_and_count(emu: Emu) -> None:
    emu.server.app[EMULATOR_FAULTS].add(Fault("GET", delay=0.2, times=2))
    for _ in range(2):
        started = time.monotonic()
        status, _, _ = await emu.call("GET", BASE)
        assert status == 200
        assert time.monotonic() - started >= 0.2
    assert emu.server.app[EMULATOR_FAULTS].pending == []


async def test_fault_action_makes_a_real_conflict(emu: Emu) -> None:
    rv = emu.live(SUCCEEDED)["metadata"]["resourceVersion"]
    emu.server.app[EMULATOR_FAULTS].add(
        Fault("PATCH", action=lambda store: store.bump(NS, SUCCEEDED))
    )
    patch = {"metadata": {**PATCH["metadata"], "resourceVersion": rv}}
    status, _, body = await emu.call("PATCH", f"{BASE}/{SUCCEEDED}", patch, content_type=MERGE)
    assert (status, body["reason"]) == (409, "Conflict")


async def test_seed_goes_through_the_create_path(emu: Emu) -> None:
    """A POST of the same creatable body gives the same shape as the seeded object."""
    shipped = {o["metadata"]["name"]: o for o in seed_objects()}[SUCCEEDED]
    seeded = emu.live(SUCCEEDED)
    fresh = Store()
    created, _ = fresh.create(NS, creatable(shipped))
    for obj in (seeded, created):
        for key in ("uid", "resourceVersion", "creationTimestamp"):
            obj["metadata"].pop(key)
    assert seeded == created
    assert seeded["status"] == shipped["status"]
    assert seeded["metadata"]["labels"] == shipped["metadata"]["labels"]


async def test_logs_one_line_per_request_without_the_token(
    emu: Emu, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="bff.sandbox.emulator"):
        await emu.call("GET", f"{BASE}/{SUCCEEDED}", token="sandbox-viewer")
    lines = [r.getMessage() for r in caplog.records if r.name == "bff.sandbox.emulator"]
    assert len(lines) == 1
    assert lines[0].startswith(f"GET {BASE}/{SUCCEEDED} user=sandbox-viewer -> 200")
    assert "Bearer" not in lines[0]
