"""``harvester-upgrade-bff bench``: what the BFF costs, measured side by side in one run.

Every scenario is run twice against the same emulator in the same process:
once straight to the Kubernetes API (what the extension does today) and once
through the BFF (kubernetes-asyncio, guards, reduction, Steve shaping). The
report gives each pair's throughput, latency percentiles and the ratio
between them, plus the Python heap peak of each side. Absolute numbers depend
on the machine; the ratios are the point. Nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

from bff import server
from bff.app import create_app
from bff.patches import mark_read_patch
from bff.sandbox.emulator import create_emulator_app
from bff.sandbox.kubeconfig import write_kubeconfig
from bff.settings import Settings

NS = "harvester-system"
SUCCEEDED = "hvst-upgrade-7xn6v"
ADMIN = {"Authorization": "Bearer sandbox-admin"}
UPGRADES = f"/apis/harvesterhci.io/v1beta1/namespaces/{NS}/upgrades"

Request = Callable[[aiohttp.ClientSession], Awaitable[int]]
WARM = 25
#: Requests per side in the heap-tracing pass (tracemalloc slows Python down, so the
#: timing pass runs without it).
MEMORY_REQUESTS = 200


@dataclass
class Side:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    heap_peak_kib: float
    errors: int


@dataclass
class Pair:
    scenario: str
    direct: Side
    bff: Side
    #: BFF p50 latency / direct p50 latency (1.0 = no overhead).
    latency_ratio: float
    #: BFF throughput / direct throughput.
    throughput_ratio: float


async def _measure(
    session: aiohttp.ClientSession,
    request: Request,
    total: int,
    concurrency: int,
    *,
    trace_memory: bool = False,
) -> Side:
    latencies: list[float] = []
    errors = 0
    remaining = total

    async def worker() -> None:
        nonlocal remaining, errors
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            status = await request(session)
            latencies.append(time.perf_counter() - started)
            if status >= 400:
                errors += 1

    gc.collect()
    if trace_memory:
        tracemalloc.start()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    peak = 0
    if trace_memory:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    latencies.sort()
    return Side(
        requests=len(latencies),
        seconds=round(elapsed, 3),
        rps=round(len(latencies) / elapsed, 1),
        p50_ms=round(statistics.median(latencies) * 1000, 3),
        p99_ms=round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 3),
        heap_peak_kib=round(peak / 1024, 1),
        errors=errors,
    )


async def _fresh_upgrades(
    session: aiohttp.ClientSession, kube: str, template: dict[str, object], count: int
) -> list[str]:
    """Create ``count`` finished, unread upgrades so every measured write really writes."""
    names = []
    meta = template["metadata"]
    assert isinstance(meta, dict)
    for _ in range(count):
        body = {
            "apiVersion": template["apiVersion"],
            "kind": template["kind"],
            "metadata": {"generateName": "bench-", "labels": {**meta["labels"], "bench": "true"}},
            "spec": template["spec"],
            "status": template["status"],
        }
        async with session.post(f"{kube}{UPGRADES}", json=body) as response:
            created = await response.json()
            names.append(created["metadata"]["name"])
    return names


def _direct_dismiss(kube: str, names: Iterator[str]) -> Request:
    async def call(session: aiohttp.ClientSession) -> int:
        url = f"{kube}{UPGRADES}/{next(names)}"
        async with session.get(url) as response:
            live = await response.json()
        async with session.patch(
            url,
            json=mark_read_patch(live["metadata"]["resourceVersion"]),
            headers={"Content-Type": "application/merge-patch+json"},
        ) as response:
            await response.read()
            return response.status

    return call


def _bff_dismiss(bff: str, names: Iterator[str]) -> Request:
    return _status(lambda s: s.post(f"{bff}/api/v1.0.5/upgrades/{NS}/{next(names)}?action=dismiss"))


def _direct_put(kube: str, names: Iterator[str]) -> Request:
    async def call(session: aiohttp.ClientSession) -> int:
        url = f"{kube}{UPGRADES}/{next(names)}"
        async with session.get(url) as response:
            live = await response.json()
        live["metadata"]["labels"]["harvesterhci.io/read-message"] = "true"
        async with session.put(url, json=live) as response:
            await response.read()
            return response.status

    return call


def _bff_put(bff: str, names: Iterator[str]) -> Request:
    async def call(session: aiohttp.ClientSession) -> int:
        name = next(names)
        body = {
            "id": f"{NS}/{name}",
            "type": "harvesterhci.io.upgrade",
            "apiVersion": "harvesterhci.io/v1beta1",
            "kind": "Upgrade",
            "metadata": {
                "name": name,
                "namespace": NS,
                "labels": {
                    "harvesterhci.io/upgradeState": "Succeeded",
                    "harvesterhci.io/read-message": "true",
                },
            },
            "spec": {"image": "", "logEnabled": True, "version": "v1.5.0"},
        }
        url = f"{bff}/api/v1.0.4/upgrades/{NS}/{name}"
        async with session.put(url, json=body) as response:
            await response.read()
            return response.status

    return call


async def _pair(direct: Request, through: Request) -> tuple[Request, Request]:
    return direct, through


async def _writes(
    fresh: Callable[[], Awaitable[Iterator[str]]],
    direct: Callable[[Iterator[str]], Request],
    through: Callable[[Iterator[str]], Request],
) -> tuple[Request, Request]:
    """Each side gets its own fresh, unread upgrades: every measured request really writes."""
    return direct(await fresh()), through(await fresh())


def _status(fn: Callable[[aiohttp.ClientSession], object]) -> Request:
    async def call(session: aiohttp.ClientSession) -> int:
        async with fn(session) as response:  # type: ignore[attr-defined]
            await response.read()
            return int(response.status)

    return call


async def _run(total: int, concurrency: int, memory_requests: int = MEMORY_REQUESTS) -> list[Pair]:
    emulator = web.AppRunner(create_emulator_app(), handle_signals=False, access_log=None)
    await emulator.setup()
    await web.TCPSite(emulator, "127.0.0.1", 0).start()
    kube = f"http://127.0.0.1:{emulator.addresses[0][1]}"
    with tempfile.TemporaryDirectory(prefix="bff-bench-") as tmp:
        config = write_kubeconfig(Path(tmp, "bench.kubeconfig"), kube, token="sandbox-bff")
        settings = Settings(kubeconfig=str(config), port=0, log_level="WARNING")
        runner, bff = await server.start(create_app(settings), settings)
        try:
            async with aiohttp.ClientSession(headers=ADMIN) as session:
                template = await (await session.get(f"{kube}{UPGRADES}/{SUCCEEDED}")).json()
                per_side = WARM + total + memory_requests

                async def fresh() -> Iterator[str]:
                    return iter(await _fresh_upgrades(session, kube, template, per_side))

                # Reads first, while the namespace holds only the three seeds.
                scenarios: list[tuple[str, Callable[[], Awaitable[tuple[Request, Request]]]]] = [
                    ("get one upgrade", lambda: _pair(
                        _status(lambda s: s.get(f"{kube}{UPGRADES}/{SUCCEEDED}")),
                        _status(lambda s: s.get(f"{bff}/api/v1.0.5/upgrades/{NS}/{SUCCEEDED}")),
                    )),
                    ("list upgrades", lambda: _pair(
                        _status(lambda s: s.get(f"{kube}{UPGRADES}")),
                        _status(lambda s: s.get(f"{bff}/api/v1.0.5/upgrades")),
                    )),
                    # Direct: read, then the same conditional label patch the BFF sends.
                    ("dismiss, one write each", lambda: _writes(
                        fresh, lambda n: _direct_dismiss(kube, n), lambda n: _bff_dismiss(bff, n)
                    )),
                    # Direct: read, then PUT the whole object back with the label (status
                    # included, or it would be wiped). BFF: PUT of the v1.0.4 body.
                    ("whole-object PUT, one write each", lambda: _writes(
                        fresh, lambda n: _direct_put(kube, n), lambda n: _bff_put(bff, n)
                    )),
                ]  # fmt: skip
                pairs = []
                for name, build in scenarios:
                    direct_request, bff_request = await build()
                    # Warm both paths, time them back to back, then trace their heap.
                    await _measure(session, direct_request, WARM, concurrency)
                    await _measure(session, bff_request, WARM, concurrency)
                    direct = await _measure(session, direct_request, total, concurrency)
                    through = await _measure(session, bff_request, total, concurrency)
                    for side, request in ((direct, direct_request), (through, bff_request)):
                        traced = await _measure(
                            session, request, memory_requests, concurrency, trace_memory=True
                        )
                        side.heap_peak_kib = traced.heap_peak_kib
                    pairs.append(
                        Pair(
                            scenario=name,
                            direct=direct,
                            bff=through,
                            latency_ratio=round(through.p50_ms / direct.p50_ms, 2),
                            throughput_ratio=round(through.rps / direct.rps, 2),
                        )
                    )
                return pairs
        finally:
            await server.stop(runner)
            await emulator.cleanup()


def _table(pairs: list[Pair]) -> str:
    lines = [
        f"{'scenario':<34} {'side':<7} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'heap KiB':>9} {'errors':>6}",
    ]
    for pair in pairs:
        for label, side in (("direct", pair.direct), ("bff", pair.bff)):
            lines.append(
                f"{pair.scenario if label == 'direct' else '':<34} {label:<7} {side.rps:>9} "
                f"{side.p50_ms:>8} {side.p99_ms:>8} {side.heap_peak_kib:>9} {side.errors:>6}"
            )
        lines.append(
            f"{'':<34} {'ratio':<7} throughput x{pair.throughput_ratio}, "
            f"p50 latency x{pair.latency_ratio}"
        )
    return "\n".join(lines)


def run_bench(args: argparse.Namespace) -> int:
    if args.requests < 1 or args.concurrency < 1:
        print("harvester-upgrade-bff: error: --requests and --concurrency must be positive")
        return 2
    # Per-request INFO lines would cost more than the work being measured.
    logging.getLogger().setLevel(logging.WARNING)
    pairs = asyncio.run(_run(args.requests, args.concurrency))
    if args.json:
        print(json.dumps([asdict(p) for p in pairs], indent=2))
    else:
        print(
            f"{args.requests} requests per side, {args.concurrency} in flight, "
            "emulator, BFF and load generator in one process\n"
        )
        print(_table(pairs))
    return 0
