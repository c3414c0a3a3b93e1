"""The review path and the stream fan-out, measured against a ``serve`` process of their own.

That BFF serves its own namespace (three Upgrades seeded in the bench's emulator)
with the admission webhook on (a sandbox certificate) and the stream caps raised
for the fan-out, pinned to the measured core like the other BFF. The clients run
in the bench process, pinned to the load generator's cores for the while.

* **streams** (first, on a fresh heap): N live-update streams, API GET without and
  with them open (the load generator, closed loop), then one label patch straight
  to the emulator and the time each stream takes to deliver it (from the patch
  sent to the event read, the emulator's watch and the client included), and the
  BFF's RSS before and after they open;
* **review, steady**: open-loop AdmissionReviews at a fixed rate (an UPDATE of the
  captured succeeded Upgrade that drops its status, so the guard answers with a
  repair patch), each latency counted from the moment it was due, not sent, so
  a stall is not hidden by the sender waiting for it (16 kept-alive connections,
  as the API server keeps a pool);
* **review, burst**: 20 reviews of about 1.9 MB at once (both objects carry 17,500
  node statuses), ``/healthz`` polled one after the other until all are answered,
  from a thread and event loop of their own (not the loop sending the reviews).

Every derived figure is computed here from the raw lists in the report
(:func:`percentile`), so a reader can recompute it.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import re
import resource
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp

from bff import captured
from bff.bench import load
from bff.sandbox.tls import SandboxCA

NAMESPACE = "bench-guard"
ADMIN = {"Authorization": "Bearer sandbox-admin"}
MUTATE = "/admission/guard/mutate"
STEADY_RATE = 200
STEADY_CONNECTIONS = 16
BURST = 20
#: Node statuses per object in a burst review: about 1.9 MB for the review.
BURST_NODES = 17_500
STREAMS_FULL = 1000
STREAMS_QUICK = 200
TARGETS = {
    "review_p99_ms": 10.0,
    "healthz_p99_ms": 50.0,
    "delivery_p99_ms": 250.0,
    "get_p99_ratio": 1.5,
}
#: The API port's line, not the webhook's ("admission webhook serving on ...").
API_PORT = r"(?<!webhook )serving on http://[^\s/]+:(\d+)"
WEBHOOK_URL = re.compile(r"admission webhook serving on (https://127\.0\.0\.1:\d+)")
#: Upgrades seeded in the bench namespace; the first one is read and patched.
SEEDED = 3
PREFIX = "guard-"
#: Bounds of every client loop: nothing here waits longer than this.
DEADLINE = 60.0


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile the load generator also uses (0.0 for no values)."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))], 3)


def certificate(directory: Path) -> tuple[Path, Path]:
    """A sandbox CA's server certificate for 127.0.0.1 and its key, as files."""
    ca = SandboxCA.create()
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "webhook.crt", directory / "webhook.key"
    key.touch(mode=0o600)
    key.write_bytes(ca.server_key_pem)
    cert.write_bytes(ca.server_cert_pem)
    return cert, key


def serve_args(kubeconfig: Path, cert: Path, key: Path, streams: int) -> list[str]:
    return ["-m", "bff", "serve", "--kubeconfig", str(kubeconfig), "--port", "0",
            "--namespace", NAMESPACE, "--read-cache", "on", "--webhook-port", "0",
            "--webhook-tls-cert", str(cert), "--webhook-tls-key", str(key),
            "--max-streams", str(streams + 16),
            "--max-streams-per-caller", str(streams + 16)]  # fmt: skip


def webhook_url(log_file: Path, timeout: float = DEADLINE) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = WEBHOOK_URL.search(log_file.read_text(errors="replace"))
        if found:
            return found.group(1)
        time.sleep(0.05)
    raise RuntimeError(f"the webhook did not start in {timeout:.0f}s")


def review(old: dict[str, Any], new: dict[str, Any]) -> bytes:
    """The AdmissionReview kube-apiserver sends for an UPDATE of ``old`` into ``new``."""
    meta = old["metadata"]
    kind = {"group": "harvesterhci.io", "version": "v1beta1", "kind": "Upgrade"}
    resource = {"group": "harvesterhci.io", "version": "v1beta1", "resource": "upgrades"}
    body = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()), "kind": kind, "resource": resource,
            "requestKind": kind, "requestResource": resource,
            "name": meta["name"], "namespace": meta["namespace"], "operation": "UPDATE",
            "userInfo": {"username": "kubernetes-admin",
                         "groups": ["kubeadm:cluster-admins", "system:authenticated"]},
            "object": new, "oldObject": old, "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "UpdateOptions"},
        },
    }  # fmt: skip
    return json.dumps(body, separators=(",", ":")).encode()


def status_wipe() -> bytes:
    """An untrusted UPDATE of the captured succeeded Upgrade that drops its status: the
    guard answers with a patch that puts it back."""
    old = captured.upgrade("succeeded")
    new = {k: copy.deepcopy(v) for k, v in old.items() if k != "status"}
    return review(old, new)


def large(nodes: int = BURST_NODES) -> bytes:
    """The probe's large review: both objects carry ``nodes`` node statuses, one label
    changes, so the guard compares every status field and allows it unchanged."""
    old = captured.upgrade("succeeded")
    old["status"]["nodeStatuses"] = {
        f"node-{i:05d}": {"state": "Succeeded", "image": f"img-{i}"} for i in range(nodes)
    }
    new = copy.deepcopy(old)
    new["metadata"]["labels"]["harvesterhci.io/read-message"] = "true"
    return review(old, new)


def _answered(answer: Any, patch: bool) -> bool:
    """Allowed, with a repair patch when ``patch``, without one otherwise."""
    response = answer.get("response") if isinstance(answer, dict) else None
    return (isinstance(response, dict) and response.get("allowed") is True
            and ("patch" in response) == patch)  # fmt: skip


async def _post_review(
    session: aiohttp.ClientSession, url: str, body: bytes, *, patch: bool = True
) -> tuple[bool, float]:
    started = time.perf_counter()
    try:
        headers = {"Content-Type": "application/json"}
        async with session.post(url, data=body, ssl=False, headers=headers) as response:
            ok = response.status == 200 and _answered(await response.json(), patch)
    except (aiohttp.ClientError, TimeoutError, ValueError):
        ok = False
    return ok, time.perf_counter() - started


async def steady(webhook: str, rate: int, seconds: float) -> dict[str, Any]:
    """Open loop: review i is due at ``i / rate``; its latency counts from then."""
    body = status_wipe()
    url = f"{webhook}{MUTATE}"
    count = max(1, int(rate * seconds))
    latencies: list[float] = []
    errors = 0
    timeout = aiohttp.ClientTimeout(total=10)
    # As the API server does: a pool of kept-alive connections, not one handshake per review.
    connector = aiohttp.TCPConnector(limit=STEADY_CONNECTIONS)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        # Warm the pool: handshakes are not the review path.
        await asyncio.gather(*(_post_review(session, url, body)
                               for _ in range(STEADY_CONNECTIONS)))  # fmt: skip
        start = time.perf_counter()

        async def one(index: int) -> None:
            nonlocal errors
            due = start + index / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            ok, _ = await _post_review(session, url, body)
            if ok:
                latencies.append((time.perf_counter() - due) * 1000)
            else:
                errors += 1

        async with asyncio.timeout(seconds + DEADLINE):
            await asyncio.gather(*(one(i) for i in range(count)))
        elapsed = time.perf_counter() - start
    latencies_ms = [round(v, 3) for v in latencies]
    p99 = percentile(latencies_ms, 0.99)
    return {
        "rate_per_s": rate,
        "seconds": seconds,
        "sent": count,
        "errors": errors,
        "achieved_rate_per_s": round(len(latencies_ms) / elapsed, 1),
        "latencies_ms": latencies_ms,
        "p50_ms": percentile(latencies_ms, 0.5),
        "p99_ms": p99,
        "target_p99_ms": TARGETS["review_p99_ms"],
        "met": errors == 0 and p99 <= TARGETS["review_p99_ms"],
    }


def _probe(api: str, ready: threading.Event, stop: threading.Event) -> tuple[list[float], int]:
    """``/healthz`` polled one after the other, on a thread and event loop of their own,
    from ``ready`` (once the connection is warm) until ``stop`` or :data:`DEADLINE`.

    Not on the loop that sends the reviews: that loop encrypts 20 x 1.9 MB of TLS and
    reads the answers, and a probe waiting its turn there measured this process, not the
    BFF (p99 1.4-1.9 s on either side of a change that cut the BFF's own to 0.1 s)."""

    async def run() -> tuple[list[float], int]:
        probes: list[float] = []
        errors = 0
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as prober:
            try:
                async with prober.get(f"{api}/healthz") as first:  # warm: one connection, reused
                    await first.read()
            finally:
                ready.set()
            ends = time.monotonic() + DEADLINE
            while not stop.is_set() and time.monotonic() < ends:
                started = time.perf_counter()
                try:
                    async with prober.get(f"{api}/healthz") as response:
                        await response.read()
                        if response.status != 200:
                            errors += 1
                except (aiohttp.ClientError, TimeoutError):
                    errors += 1
                probes.append(round((time.perf_counter() - started) * 1000, 3))
        return probes, errors

    return asyncio.run(run())


async def burst(webhook: str, api: str) -> dict[str, Any]:
    """``BURST`` large reviews at once, ``/healthz`` polled (:func:`_probe`) until they are
    all answered."""
    body = large()
    url = f"{webhook}{MUTATE}"
    timeout = aiohttp.ClientTimeout(total=30)
    ready, stop = threading.Event(), threading.Event()
    probing = asyncio.create_task(asyncio.to_thread(_probe, api, ready, stop))
    try:
        await asyncio.to_thread(ready.wait, DEADLINE)
        async with aiohttp.ClientSession(
            timeout=timeout, connector=aiohttp.TCPConnector(limit=0)
        ) as rv:
            answered = await asyncio.gather(
                *(_post_review(rv, url, body, patch=False) for _ in range(BURST))
            )
    finally:
        stop.set()
        probes, probe_errors = await probing
    review_ms = [round(t * 1000, 3) for _, t in answered]
    healthz_p99 = percentile(probes, 0.99)
    errors = sum(1 for ok, _ in answered if not ok)
    return {
        "reviews": BURST,
        "review_bytes": len(body),
        "errors": errors,
        "review_ms": review_ms,
        "review_p50_ms": percentile(review_ms, 0.5),
        "review_max_ms": max(review_ms),
        "healthz_ms": probes,
        "healthz_errors": probe_errors,
        "healthz_p50_ms": percentile(probes, 0.5),
        "healthz_p99_ms": healthz_p99,
        "target_healthz_p99_ms": TARGETS["healthz_p99_ms"],
        "met": errors == 0 and probe_errors == 0 and bool(probes)
        and healthz_p99 <= TARGETS["healthz_p99_ms"],
    }  # fmt: skip


class _Stream:
    """One open live-update stream: ready once its snapshot is read, then waits for ``marker``."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response
        self.ready = asyncio.Event()
        self.received: float | None = None

    async def read(self, marker: bytes) -> None:
        with contextlib.suppress(aiohttp.ClientError, TimeoutError, ValueError):
            while True:
                line = await self.response.content.readline()
                if not line:
                    return
                if line.startswith(b"data: ") and not self.ready.is_set():
                    self.ready.set()  # the snapshot
                elif marker in line:
                    self.received = time.perf_counter()
                    return


async def streams(
    api: str,
    kube: str,
    count: int,
    rss_kb: Callable[[], int],
    get_p99: Callable[[], Awaitable[dict[str, Any]]],
) -> dict[str, Any]:
    """``count`` streams open, GET measured with them, then one change delivered to all."""
    name = f"{PREFIX}0"
    marker = f'"type":"MODIFIED","id":"{NAMESPACE}/{name}"'.encode()
    without = await get_p99()
    rss_before = rss_kb()
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
    connector = aiohttp.TCPConnector(limit=0)
    opened: list[_Stream] = []
    refused = 0
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        readers: list[asyncio.Task[None]] = []
        try:

            async def open_one() -> None:
                nonlocal refused
                try:
                    response = await session.get(f"{api}/api/v1.0.5/upgrades/events",
                                                 headers=ADMIN)  # fmt: skip
                except aiohttp.ClientError:
                    refused += 1
                    return
                if response.status != 200:
                    refused += 1
                    response.release()
                    return
                stream = _Stream(response)
                opened.append(stream)
                readers.append(asyncio.create_task(stream.read(marker)))

            async with asyncio.timeout(DEADLINE):
                for start in range(0, count, 100):  # in batches: a page load, not a SYN flood
                    await asyncio.gather(
                        *(open_one() for _ in range(start, min(count, start + 100)))
                    )
                await asyncio.gather(*(s.ready.wait() for s in opened))
            rss_open = rss_kb()
            with_streams = await get_p99()
            patch = {"metadata": {"labels": {"bench.harvesterhci.io/touch": str(uuid.uuid4())}}}
            sent = time.perf_counter()
            async with session.patch(
                f"{kube}/apis/harvesterhci.io/v1beta1/namespaces/{NAMESPACE}/upgrades/{name}",
                data=json.dumps(patch),
                headers={**ADMIN, "Content-Type": "application/merge-patch+json"},
            ) as response:
                if response.status != 200:
                    raise RuntimeError(f"the label patch got {response.status}")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(DEADLINE):
                    await asyncio.gather(*readers)
            rss_after = rss_kb()
        finally:
            for task in readers:
                task.cancel()
            for stream in opened:
                stream.response.close()
    delivery = [round((s.received - sent) * 1000, 3) for s in opened if s.received is not None]
    p99 = percentile(delivery, 0.99)
    ratio = round(with_streams["p99_ms"] / without["p99_ms"], 3) if without["p99_ms"] else 0.0
    per_stream = round((rss_open - rss_before) / len(opened), 1) if opened else 0.0
    return {
        "streams": count,
        "opened": len(opened),
        "refused": refused,
        "delivered": len(delivery),
        "delivery_ms": delivery,
        "delivery_p50_ms": percentile(delivery, 0.5),
        "delivery_p99_ms": p99,
        "target_delivery_p99_ms": TARGETS["delivery_p99_ms"],
        "delivery_met": len(delivery) == count and p99 <= TARGETS["delivery_p99_ms"],
        "rss_before_kb": rss_before,
        "rss_open_kb": rss_open,
        "rss_after_delivery_kb": rss_after,
        "rss_per_stream_kb": per_stream,
        "get_without_streams": without,
        "get_with_streams": with_streams,
        "get_p99_ratio": ratio,
        "target_get_p99_ratio": TARGETS["get_p99_ratio"],
        "get_met": without["errors"] == 0 and with_streams["errors"] == 0
        and ratio <= TARGETS["get_p99_ratio"],
    }  # fmt: skip


@contextlib.contextmanager
def pinned(cpus: Sequence[int]) -> Iterator[None]:
    """The bench process on ``cpus`` for a while (its clients are the load generator here)."""
    before = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    if cpus and hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, set(cpus))
    try:
        yield
    finally:
        if before and hasattr(os, "sched_setaffinity"):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(0, before)


def raise_open_files(wanted: int = 8192) -> None:
    """Lift this process's soft open-file limit towards ``wanted`` (never above the hard one):
    each stream is a descriptor in the BFF and in the client, and 1,024 is a common default."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def get_figures(result: load.Result) -> dict[str, Any]:
    return {"rps": result.rps, "p50_ms": result.p50_ms, "p99_ms": result.p99_ms,
            "requests": result.requests, "errors": result.errors}  # fmt: skip
