"""Emulator journal and request log: every write as it arrived, one log line per
request, never a token."""

from __future__ import annotations

import logging

import pytest

from bff.sandbox.emulator import EMULATOR_JOURNAL
from tests.support.backends import (
    BASE,
    MERGE,
    SUCCEEDED,
    EmulatorBackend,
)

PATCH = {"metadata": {"labels": {"harvesterhci.io/read-message": "true"}}}


async def test_journal_records_every_write_as_it_arrived(emu: EmulatorBackend) -> None:
    await emu.request("GET", BASE)
    await emu.request("PATCH", f"{BASE}/{SUCCEEDED}?fieldManager=t", PATCH, content_type=MERGE)
    await emu.request("PATCH", f"{BASE}/{SUCCEEDED}", PATCH, token="sandbox-viewer",
                   content_type=MERGE)  # fmt: skip
    entries = emu.app[EMULATOR_JOURNAL].writes()
    assert [(e.method, e.status, e.user) for e in entries] == [
        ("PATCH", 200, "sandbox-admin"),
        ("PATCH", 403, "sandbox-viewer"),
    ]
    first = entries[0]
    assert first.path == f"{BASE}/{SUCCEEDED}"
    assert first.query == {"fieldManager": "t"}
    assert first.content_type == MERGE
    assert first.body == PATCH


async def test_logs_one_line_per_request_without_the_token(
    emu: EmulatorBackend, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="bff.sandbox.emulator"):
        await emu.request("GET", f"{BASE}/{SUCCEEDED}", token="sandbox-viewer")
    lines = [r.getMessage() for r in caplog.records if r.name == "bff.sandbox.emulator"]
    assert len(lines) == 1
    assert lines[0].startswith(f"GET {BASE}/{SUCCEEDED} user=sandbox-viewer -> 200")
    assert "Bearer" not in lines[0]
