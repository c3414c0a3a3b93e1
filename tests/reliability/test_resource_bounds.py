"""Resource bounds under load: 20,000 mixed requests at concurrency 64, with 0 errors,
and the BFF's resident memory within a stated band.

``serve`` runs as its own process so its RSS is its own (read from /proc).
BFF_SOAK_REQUESTS raises the request count for a longer soak.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from tests.reliability.procs import ADMIN, NAMESPACE, Serve, emulator, serve  # type: ignore[attr-defined]
from tests.support.backends import FAILED, IN_PROGRESS, SUCCEEDED

__all__ = ["emulator", "serve"]  # fixtures

#: At least 20,000; BFF_SOAK_REQUESTS asks for more.
REQUESTS = max(20000, int(os.environ.get("BFF_SOAK_REQUESTS", "20000")))
WARMUP = 2000
CONCURRENCY = 64
#: The band: RSS after warm-up, and how much it may grow over the run.
MAX_RSS_MIB = 200
MAX_GROWTH_MIB = 24
REQUEST_SECONDS = 60


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def load(serve: Serve, count: int, seed: int) -> Counter[str]:
    v5 = f"/api/v1.0.5/upgrades/{NAMESPACE}"
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    outcomes: Counter[str] = Counter()
    # Every request is bounded, so a stuck one is an error, never a stuck test.
    timeout = aiohttp.ClientTimeout(total=REQUEST_SECONDS)
    async with aiohttp.ClientSession(
        serve.url, headers=ADMIN, connector=connector, timeout=timeout
    ) as session:
        async with session.get(f"/api/v1.0.4/upgrades/{NAMESPACE}/{FAILED}") as response:
            # Encoded once: the loop itself does no per-request work beyond the request.
            put_body: Any = json.dumps(await response.json()).encode()
        mix = [
            ("GET", "/healthz", None, 200),
            ("GET", f"{v5}/{SUCCEEDED}", None, 200),
            ("GET", f"/v1/harvester/harvesterhci.io.upgrades/{NAMESPACE}", None, 200),
            ("GET", "/api/v1.0.5/upgrades?labelSelector=harvesterhci.io%2FupgradeState", None, 200),
            ("POST", f"{v5}/{SUCCEEDED}?action=dismiss", None, 200),
            ("POST", f"{v5}/{IN_PROGRESS}?action=dismiss", None, 409),
            ("PUT", f"/api/v1.0.4/upgrades/{NAMESPACE}/{FAILED}", put_body, 200),
            ("GET", f"{v5}/no-such-upgrade", None, 404),
        ]
        r = random.Random(seed)
        plan = [r.choice(mix) for _ in range(count)]
        todo = iter(plan)
        json_type = {"Content-Type": "application/json"}

        async def worker() -> None:
            for method, path, body, expected in todo:  # shared: each item taken once
                try:
                    headers = json_type if body is not None else None
                    async with session.request(
                        method, path, data=body, headers=headers
                    ) as response:
                        await response.read()
                        ok = response.status == expected
                        outcomes["ok" if ok else f"{method} {path} {response.status}"] += 1
                except (aiohttp.ClientError, TimeoutError) as exc:
                    outcomes[type(exc).__name__] += 1

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return outcomes


async def test_mixed_load_has_no_errors_and_rss_stays_in_its_band(
    emulator: TestServer, serve: Serve
) -> None:
    await serve.start()
    assert serve.process is not None
    warm = await load(serve, WARMUP, seed=1)
    assert warm == Counter({"ok": WARMUP}), warm
    before = rss_mib(serve.process.pid)
    outcomes = await load(serve, REQUESTS, seed=2)
    after = rss_mib(serve.process.pid)
    assert outcomes == Counter({"ok": REQUESTS}), outcomes
    print(f"rss: {before:.1f} MiB after {WARMUP} warm-up, {after:.1f} MiB after {REQUESTS} more")
    assert before < MAX_RSS_MIB
    assert after - before < MAX_GROWTH_MIB, (before, after)
