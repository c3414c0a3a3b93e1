"""Process faults: SIGTERM under load drops no accepted write; SIGKILL leaves no partial state.

``serve`` runs as a real process (the one an operator starts) against the
emulator in this test's process, so the emulator sees exactly what reached it.
"""

from __future__ import annotations

import asyncio
import random
import signal

import aiohttp
from aiohttp.test_utils import TestServer

from bff.patches import mark_read_patch
from bff.sandbox.emulator import EMULATOR_FAULTS, EMULATOR_JOURNAL, Fault
from tests.reliability.procs import (  # type: ignore[attr-defined]
    ADMIN,
    NAMESPACE,
    READ,
    Serve,
    emulator,
    make_finished_upgrades,
    read_all,
    serve,
)
from tests.support.waiting import until

__all__ = ["emulator", "serve"]  # fixtures


async def dismiss(session: aiohttp.ClientSession, url: str, name: str) -> tuple[str, int, str]:
    try:
        async with session.post(
            f"{url}/api/v1.0.5/upgrades/{NAMESPACE}/{name}?action=dismiss", headers=ADMIN
        ) as response:
            await response.read()
            return name, response.status, response.headers.get("X-Upgrade-Bff-Changed", "")
    except aiohttp.ClientError:
        return name, 0, ""


async def test_sigterm_during_load_drops_no_accepted_write(
    emulator: TestServer, serve: Serve
) -> None:
    names = await make_finished_upgrades(emulator, 40)
    # Every patch is held 0.5 s at the API server, so all 40 are in flight at SIGTERM.
    held = emulator.app[EMULATOR_FAULTS].add(Fault("PATCH", delay=0.5, times=1000))
    journal = emulator.app[EMULATOR_JOURNAL]
    journal.clear()
    await serve.start()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        calls = [asyncio.create_task(dismiss(session, serve.url, n)) for n in names]
        await until(lambda: held.times <= 1000 - len(names), "every patch held upstream")
        serve.signal(signal.SIGTERM)
        results = await asyncio.gather(*calls)
    assert await serve.wait() == 0
    assert sorted(results) == sorted((n, 200, "true") for n in names), results
    patched = [e for e in journal.writes("PATCH") if e.status == 200]
    assert sorted(e.path.rsplit("/", 1)[1] for e in patched) == sorted(names)
    after = await read_all(emulator)
    assert all(after[n]["metadata"]["labels"][READ] == "true" for n in names)


async def test_sigkill_at_any_moment_leaves_no_partial_state(
    emulator: TestServer, serve: Serve
) -> None:
    """Killed mid-dismiss, again and again: every object is as before, or exactly dismissed."""
    names = await make_finished_upgrades(emulator, 12)
    before = await read_all(emulator)
    journal = emulator.app[EMULATOR_JOURNAL]
    journal.clear()
    r = random.Random(14)
    kills = 0
    for _ in range(4):
        await serve.start()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            calls = [asyncio.create_task(dismiss(session, serve.url, n)) for n in names]
            await asyncio.sleep(r.uniform(0.0, 0.08))
            serve.signal(signal.SIGKILL)
            kills += 1
            await asyncio.gather(*calls)
        await serve.wait()
    after = await read_all(emulator)
    for name in names:
        old, new = before[name], after[name]
        for part in ("spec", "status"):
            assert new.get(part) == old.get(part), (name, part)
        labels = dict(new["metadata"]["labels"])
        read = labels.pop(READ, None)
        if read is not None:
            assert read == "true", (name, read)
            assert labels == old["metadata"]["labels"]
        else:
            assert new["metadata"]["resourceVersion"] == old["metadata"]["resourceVersion"]
        assert new["metadata"].get("annotations") == old["metadata"].get("annotations")
    # Every write the one label patch; the only other POSTs are the callers' access reviews.
    for entry in journal.writes():
        if entry.method == "POST" and entry.path.endswith("/selfsubjectaccessreviews"):
            continue
        assert entry.method == "PATCH"
        assert entry.body == mark_read_patch(entry.body["metadata"]["resourceVersion"])
    assert kills == 4
