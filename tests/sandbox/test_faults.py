"""Emulator fault injection: answers with headers, delays and counts, store actions."""

from __future__ import annotations

import time

import pytest

from bff.sandbox.emulator import EMULATOR_FAULTS, Fault
from tests.support.backends import BASE, MERGE, NS, SUCCEEDED, EmulatorBackend

PATCH = {"metadata": {"labels": {"harvesterhci.io/read-message": "true"}}}


@pytest.mark.parametrize("code", [429, 500, 503])
async def test_fault_answers_a_status_with_headers(emu: EmulatorBackend, code: int) -> None:
    emu.app[EMULATOR_FAULTS].add(
        Fault("PATCH", path_suffix=SUCCEEDED, status=code, headers={"Retry-After": "3"})
    )
    status, headers, body = await emu.request("PATCH", f"{BASE}/{SUCCEEDED}", PATCH,
                                           content_type=MERGE)  # fmt: skip
    assert status == code
    assert headers["Retry-After"] == "3"
    assert body["kind"] == "Status"
    assert body["code"] == code
    # used up: the next request goes through
    status, _, _ = await emu.request("PATCH", f"{BASE}/{SUCCEEDED}", PATCH, content_type=MERGE)
    assert status == 200


async def test_fault_delay_and_count(emu: EmulatorBackend) -> None:
    emu.app[EMULATOR_FAULTS].add(Fault("GET", delay=0.2, times=2))
    for _ in range(2):
        started = time.monotonic()
        status, _, _ = await emu.request("GET", BASE)
        assert status == 200
        assert time.monotonic() - started >= 0.2
    assert emu.app[EMULATOR_FAULTS].pending == []


async def test_fault_action_makes_a_real_conflict(emu: EmulatorBackend) -> None:
    rv = emu.live(SUCCEEDED)["metadata"]["resourceVersion"]
    emu.app[EMULATOR_FAULTS].add(Fault("PATCH", action=lambda store: store.bump(NS, SUCCEEDED)))
    patch = {"metadata": {**PATCH["metadata"], "resourceVersion": rv}}
    status, _, body = await emu.request("PATCH", f"{BASE}/{SUCCEEDED}", patch, content_type=MERGE)
    assert (status, body["reason"]) == (409, "Conflict")
