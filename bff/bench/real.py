"""``bench --real``: the BFF beside the real peers, on a real kube-apiserver.

The stack is the test harness's own (``tests/support``): kube-apiserver and
etcd (:mod:`tests.support.real_apiserver`, built with Go and cached) and real
Steve v0.5.6 with header authentication (:mod:`tests.support.harvester`, the
Harvester referee binary), so ``--real`` needs a source checkout and says so
in one line otherwise. That machinery (Go builds, a PKI, etcd from apt) is test
infrastructure; shipping it in the package to serve one bench mode would put a
compiler's worth of build steps in the product. ``--kubeconfig`` remains the
way to measure a cluster that is already running.

Three sides read the same Upgrades as the same caller (``sandbox-viewer``, a
user whose RBAC allows get, list and watch), none with a client certificate:

* **direct**: kube-apiserver over HTTPS with the caller's bearer token;
* **steve**: Steve, as the dashboard reads today, the caller named by
  ``Impersonate-User`` (Steve's header authentication; Steve impersonates the
  caller towards the API server);
* **bff**: ``serve`` with its read cache, the caller's bearer token (one access
  review per 10 s, every request still authorised for that caller).

Scenarios: GET of one Upgrade and LIST of the namespace's 3 in harvester-system,
then LIST of 1,000 in a namespace of its own (created through the API while Steve
starts, served by a second BFF for that namespace, and read with at most
:data:`LIST_CONNECTIONS` connections on every side). Sides alternate round by
round; each service is pinned to a core of its own where the machine has enough,
else the measured one gets a core and everything else shares the rest (every
thread, as ``taskset -a -p`` would). CPU per request is read from ``/proc`` for
each service process.
"""

from __future__ import annotations

import asyncio
import copy
import importlib
import json
import ssl
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp

from bff.bench import load
from bff.bench.procs import Child, Cpu, cores, pin_process, pinner, rss_mb, tick_us

NS = "harvester-system"
#: The LIST of 1,000 reads a namespace of its own, filled while Steve starts.
LIST_NS = "bench-list"
CALLER = "sandbox-viewer"
ADMIN_TOKEN = "sandbox-admin"  # noqa: S105 (the harness's static test token)
BFF_TOKEN = "sandbox-bff"  # noqa: S105 (the harness's static test token)
SUCCEEDED = "hvst-upgrade-7xn6v"
API = "/apis/harvesterhci.io/v1beta1/namespaces/{ns}/upgrades"
STEVE = "/v1/harvesterhci.io.upgrades/{ns}"
BFF = "/api/v1.0.5/upgrades"
LIST_SIZE = 1000
#: Connections for the LIST of 1,000 (about 1.5 MB an answer), on every side: with more,
#: a round of a few seconds can end before the slowest side has answered any.
LIST_CONNECTIONS = 8
SIDES = ("direct", "steve", "bff")
#: Creates in flight while the 997 extra Upgrades are made.
SEED_CONCURRENCY = 16
READY_TIMEOUT = 120.0
BFF_PORT = r"serving on https?://[^\s/]+:(\d+)"
TARGETS = {"read_vs_direct": 3.0, "read_vs_steve": 2.0, "list1000_vs_steve": 2.0}


def checkout_root() -> Path | None:
    """The source checkout this package runs from, if it is one (with ``tests/support``)."""
    root = Path(__file__).resolve().parents[2]
    ok = (root / "pyproject.toml").is_file() and (
        root / "tests" / "support" / "real_apiserver.py"
    ).is_file()
    return root if ok else None


def harness() -> tuple[ModuleType, ModuleType]:
    """The test harness's real_apiserver and harvester modules; ValueError outside a checkout."""
    root = checkout_root()
    if root is None:
        raise ValueError(
            "--real needs a source checkout of harvester-upgrade-bff (it starts the test "
            "harness's kube-apiserver and Steve from tests/support); --kubeconfig measures a "
            "running cluster"
        )
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    # Imported by name, not statically: the product package never depends on its tests.
    return (
        importlib.import_module("tests.support.real_apiserver"),
        importlib.import_module("tests.support.harvester"),
    )


class Placement:
    """Which cores each service gets: one each where there are enough, else the measured one."""

    def __init__(self) -> None:
        self.cpus = cores()

    def cores_for(self, measured: str) -> dict[str, list[int]]:
        c = self.cpus
        if len(c) >= 5:  # kube-apiserver, Steve, the BFF, etcd each alone; the load the rest
            fixed = {"kube-apiserver": [c[-1]], "steve": [c[-2]], "bff": [c[-3]],
                     "etcd": [c[-4]]}  # fmt: skip
            return {**fixed, "load": c[:-4]}
        if len(c) >= 2:  # the measured service alone; the rest share the others
            rest = c[:-1]
            places = {name: rest for name in ("kube-apiserver", "etcd", "steve", "bff", "load")}
            places[measured] = [c[-1]]
            return places
        return {name: [] for name in ("kube-apiserver", "etcd", "steve", "bff", "load")}

    def describe(self) -> dict[str, Any]:
        return {"cpus": self.cpus, **{side: self.cores_for(_SERVICE[side]) for side in SIDES}}


#: The process each side measures (its "target"); its upstream is everything it calls.
_SERVICE = {"direct": "kube-apiserver", "steve": "steve", "bff": "bff"}


def run_real(options: Any, say: Callable[[str], None]) -> dict[str, Any]:
    real_apiserver, harvester = harness()
    with tempfile.TemporaryDirectory(prefix="bff-bench-real-") as tmp:
        work = Path(tmp)
        server = real_apiserver.RealApiServer()
        stack = None
        children: list[Child] = []
        began = time.monotonic()
        seeding: threading.Thread | None = None
        seeded: list[BaseException | float] = []
        try:
            say("starting kube-apiserver (built with Go and cached on first use) ...")
            try:
                server.start()
            except real_apiserver.RealApiServerUnavailable as exc:
                raise ValueError(f"--real: {exc}") from None
            except real_apiserver.RealApiServerError as exc:
                raise ValueError(f"--real: kube-apiserver did not start: {_first(exc)}") from None
            _namespace_for_list(server, real_apiserver)
            # The 1,000 Upgrades are created while Steve starts (nothing is measured yet).
            seeding = threading.Thread(target=_seed_in_thread, args=(server, seeded), daemon=True)
            seeding.start()
            steve_missing = harvester.unavailable_reason()
            if steve_missing is None:
                say("starting real Steve (the Harvester referee binary, built on first use) ...")
                stack = harvester.HarvesterStack(server, controller=False, steve=True)
                try:
                    stack.start()
                except real_apiserver.RealApiServerError as exc:
                    raise ValueError(f"--real: Steve did not start: {_first(exc)}") from None
            else:
                say(f"no Steve side: {steve_missing}")
            config = server.kubeconfig(work / "bff.kubeconfig", token=BFF_TOKEN)

            def bff(namespace: str) -> Child:
                child = Child(f"bff-{namespace}", ["-m", "bff", "serve", "--kubeconfig",
                              str(config), "--port", "0", "--namespace", namespace,
                              "--read-cache", "on"], work / f"bff-{namespace}.log",
                              pin=pinner([]), port_pattern=BFF_PORT, port_in_log=True)  # fmt: skip
                children.append(child)
                return child

            served = bff(NS)
            urls = {"direct": server.url, "bff": f"http://127.0.0.1:{served.port}"}
            if stack is not None:
                urls["steve"] = stack.steve_url
            pids = {**server.pids, "bff": served.pid}
            if stack is not None and stack.steve_pid is not None:
                pids["steve"] = stack.steve_pid
            run = _Run(options, work, say, urls, pids)
            run.wait_listed(NS, 3)
            say(f"stack up in {time.monotonic() - began:.0f}s; sides {', '.join(run.sides)}; "
                f"load generator {run.kind}; cores {run.placement.cpus}")  # fmt: skip
            scenarios = {
                "get": run.scenario("GET one", NS, f"/{SUCCEEDED}", f"/{NS}/{SUCCEEDED}"),
                "list3": run.scenario("LIST of 3", NS, "", ""),
            }
            rss = {"bff_3": rss_mb(served.pid), "bff_3_peak": rss_mb(served.pid, "VmHWM")}
            served.stop()  # idle, it would still take a share of the core
            seeding.join(timeout=READY_TIMEOUT)
            if not seeded or isinstance(seeded[0], BaseException):
                raise RuntimeError(f"creating the 1,000 Upgrades failed: {seeded[:1]}")
            say(f"{LIST_SIZE} Upgrades in {LIST_NS} (created in {seeded[0]:.0f}s)")
            listing = bff(LIST_NS)
            run.urls["bff"] = f"http://127.0.0.1:{listing.port}"
            run.pids["bff"] = listing.pid
            run.wait_listed(LIST_NS, LIST_SIZE)
            scenarios["list1000"] = run.scenario("LIST of 1,000", LIST_NS, "", "",
                                                 connections=LIST_CONNECTIONS)  # fmt: skip
            rss |= {"bff_1000": rss_mb(listing.pid), "bff_1000_peak": rss_mb(listing.pid, "VmHWM")}
            if "steve" in pids:
                rss["steve"] = rss_mb(pids["steve"])
            rss["kube-apiserver"] = rss_mb(pids["kube-apiserver"])
        finally:
            for child in reversed(children):
                child.stop()
            if stack is not None:
                stack.stop()
            server.stop()
            if seeding is not None:
                seeding.join(timeout=5)
    return report(options, run, scenarios, rss)


def _namespace_for_list(server: Any, real_apiserver: ModuleType) -> None:
    """The LIST namespace, with deploy/'s Role and RoleBinding for the BFF there too.

    As an operator would grant it for a BFF serving that namespace (deploy/ binds the
    service account in harvester-system only).
    """
    server.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": LIST_NS}})
    for obj in real_apiserver.deploy_rbac():
        if obj["kind"] in ("Role", "RoleBinding"):
            copied = copy.deepcopy(obj)
            copied["metadata"] = {**copied["metadata"], "namespace": LIST_NS}
            server.apply(copied)


def _seed_in_thread(server: Any, out: list[BaseException | float]) -> None:
    began = time.monotonic()
    try:
        asyncio.run(_seed(server, LIST_NS, LIST_SIZE))
    except BaseException as exc:  # reported by the main thread, which waits for it
        out.append(exc)
    else:
        out.append(time.monotonic() - began)


def _first(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


async def _seed(server: Any, namespace: str, count: int) -> None:
    """``count`` finished, unread Upgrades like the succeeded seed, created through the API."""
    template = next(s for s in server.seed_objects() if s["metadata"]["name"] == SUCCEEDED)
    context = ssl.create_default_context(cafile=str(server.ca_file))
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(count):
        queue.put_nowait(index)

    async with aiohttp.ClientSession(headers=headers, trust_env=False) as session:

        async def worker() -> None:
            while not queue.empty():
                index = queue.get_nowait()
                body = copy.deepcopy(template)
                body["metadata"]["name"] = f"bench-list-{index}"
                body["metadata"]["namespace"] = namespace
                body["metadata"]["labels"].pop("harvesterhci.io/read-message", None)
                url = server.url + API.format(ns=namespace)
                async with session.post(url, json=body, ssl=context,
                                        timeout=aiohttp.ClientTimeout(total=30)) as r:  # fmt: skip
                    if r.status != 201:
                        raise RuntimeError(f"creating an Upgrade answered {r.status}")

        await asyncio.gather(*(worker() for _ in range(SEED_CONCURRENCY)))


class _Run:
    def __init__(self, options: Any, work: Path, say: Callable[[str], None],
                 urls: dict[str, str], pids: dict[str, int]) -> None:  # fmt: skip
        self.o = options
        self.work = work
        self.say = say
        self.urls = urls
        self.pids = pids
        self.sides = [s for s in SIDES if s in urls]
        self.kind = load.available(options.generator)
        self.placement = Placement()
        #: One answer's size per scenario and side (the same objects, each side's own shape).
        self.answer_bytes: dict[str, dict[str, int]] = {}

    def headers(self, side: str) -> dict[str, str]:
        if side == "steve":
            return {"Impersonate-User": CALLER}
        return {"Authorization": f"Bearer {CALLER}"}

    def path(self, side: str, ns: str, direct_tail: str, bff_tail: str) -> str:
        if side == "direct":
            return API.format(ns=ns) + direct_tail
        if side == "steve":
            return STEVE.format(ns=ns) + direct_tail
        return BFF + bff_tail

    def fetch(self, side: str, path: str) -> tuple[int, Any]:
        url = self.urls[side] + path
        request = urllib.request.Request(url, headers=self.headers(side))  # noqa: S310
        context = ssl._create_unverified_context() if url.startswith("https") else None  # noqa: S323
        with urllib.request.urlopen(request, timeout=30, context=context) as response:  # noqa: S310
            data = response.read()
        return len(data), json.loads(data)

    def listed(self, side: str, ns: str) -> int:
        _, body = self.fetch(side, self.path(side, ns, "", ""))
        return len(body.get("items") if side == "direct" else body.get("data") or [])

    def wait_listed(self, ns: str, count: int) -> None:
        """Until every side lists ``count`` Upgrades (Steve and the BFF follow by watches)."""
        deadline = time.monotonic() + READY_TIMEOUT
        for side in self.sides:
            seen = -1
            while True:
                try:
                    seen = self.listed(side, ns)
                except (urllib.error.URLError, OSError, ValueError):
                    seen = -1
                if seen == count:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{side} listed {seen} Upgrades, not {count}, in time")
                time.sleep(0.1)

    def place(self, measured_side: str) -> list[int]:
        places = self.placement.cores_for(_SERVICE[measured_side])
        for name, pid in self.pids.items():
            pin_process(pid, places[name])
        return places["load"]

    def measure(self, side: str, path: str, connections: int) -> dict[str, Any]:
        load_cores = self.place(side)
        plan = load.Plan(url=self.urls[side], method="GET", paths=(path,),
                         headers=self.headers(side), duration=self.o.duration,
                         connections=connections,
                         threads=min(self.o.threads, connections))  # fmt: skip
        watched = {name: Cpu(pid) for name, pid in self.pids.items()}
        result = load.run(plan, self.kind, pinner(load_cores), self.work)
        for cpu in watched.values():
            cpu.sample()
        requests = max(1, result.requests)
        per_process = {name: round(c.used() * tick_us() / requests, 1)
                       for name, c in watched.items()}  # fmt: skip
        target = _SERVICE[side]
        return {
            "rps": result.rps, "p50_ms": result.p50_ms, "p99_ms": result.p99_ms,
            "requests": result.requests, "errors": result.errors, "seconds": result.seconds,
            "cpu_us_per_request": {
                "target": per_process[target],
                # What the side's own service calls: kube-apiserver and etcd (etcd alone
                # for the direct side), counted whether or not the side called them.
                "upstream": round(sum(v for k, v in per_process.items()
                                      if k in ("kube-apiserver", "etcd") and k != target), 1),
                "load": round(result.cpu_ticks * tick_us() / requests, 1),
            },
            "cpu_us_per_request_by_process": per_process,
        }  # fmt: skip

    def scenario(self, name: str, ns: str, direct_tail: str, bff_tail: str, *,
                 connections: int | None = None) -> dict[str, Any]:  # fmt: skip
        conns = min(connections or self.o.connections, self.o.connections)
        paths = {side: self.path(side, ns, direct_tail, bff_tail) for side in self.sides}
        self.answer_bytes[name] = {side: self.fetch(side, p)[0] for side, p in paths.items()}
        for side in self.sides:  # warm-up, not measured
            self.place(side)
            plan = load.Plan(url=self.urls[side], method="GET", paths=(paths[side],),
                             headers=self.headers(side), duration=self.o.warmup,
                             connections=conns, threads=min(self.o.threads, conns))  # fmt: skip
            load.run(plan, self.kind, pinner(self.placement.cores_for(_SERVICE[side])["load"]),
                     self.work)  # fmt: skip
        rounds: dict[str, list[dict[str, Any]]] = {side: [] for side in self.sides}
        for number in range(self.o.rounds):
            order = self.sides if number % 2 == 0 else list(reversed(self.sides))
            for side in order:
                measured = self.measure(side, paths[side], conns)
                rounds[side].append(measured)
                cpu, rps = measured["cpu_us_per_request"]["target"], measured["rps"]
                self.say(f"  {name:<14} round {number + 1} {side:<7} {cpu:>7.0f} us/req "
                         f"{rps:>9.1f} req/s p99 {measured['p99_ms']:.2f} ms")  # fmt: skip
        return {side: summary(rounds[side]) | {"answer_bytes": self.answer_bytes[name][side],
                                               "connections": conns}
                for side in self.sides}  # fmt: skip


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    value = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    return round(value, 3)


def summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the rounds and the spread, from the rounds themselves (kept beside them)."""
    rps = [r["rps"] for r in rounds]
    keys = rounds[0]["cpu_us_per_request"].keys()
    cpu = {k: _median([r["cpu_us_per_request"][k] for r in rounds]) for k in keys}
    target = [r["cpu_us_per_request"]["target"] for r in rounds]
    return {
        "cpu_us_per_request": cpu,
        "cpu_us_per_request_min": min(target),
        "cpu_us_per_request_max": max(target),
        "cpu_us_per_request_total": round(cpu["target"] + cpu["upstream"], 3),
        "rps": _median(rps),
        "rps_min": min(rps),
        "rps_max": max(rps),
        "p50_ms": _median([r["p50_ms"] for r in rounds]),
        "p99_ms": _median([r["p99_ms"] for r in rounds]),
        "p99_ms_max": max(r["p99_ms"] for r in rounds),
        "errors": sum(r["errors"] for r in rounds),
        "rounds": rounds,
    }


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def compare(scenario: dict[str, Any], other: str) -> dict[str, Any] | None:
    """The BFF against ``other``: throughput (and per round), CPU per request, p99."""
    if other not in scenario:
        return None
    bff, them = scenario["bff"], scenario[other]
    rounds = [
        _ratio(b["rps"], t["rps"]) for b, t in zip(bff["rounds"], them["rounds"], strict=True)
    ]
    return {
        "throughput_ratio": _ratio(bff["rps"], them["rps"]),
        "throughput_ratio_rounds": rounds,
        "throughput_ratio_min": min((r for r in rounds if r is not None), default=None),
        # How many times the CPU per request the other side spends, its upstream included.
        "cpu_ratio": _ratio(them["cpu_us_per_request_total"], bff["cpu_us_per_request_total"]),
        "p99_ratio": _ratio(bff["p99_ms"], them["p99_ms"]),
    }


def report(
    options: Any, run: _Run, scenarios: dict[str, Any], rss: dict[str, float]
) -> dict[str, Any]:
    real: dict[str, Any] = {}
    for name, group in (("get", "read"), ("list3", "list3"), ("list1000", "list1000")):
        direct = compare(scenarios[name], "direct")
        steve = compare(scenarios[name], "steve")
        real[group] = {
            "vs_direct": None if direct is None else direct["throughput_ratio"],
            "vs_steve": None if steve is None else steve["throughput_ratio"],
            "direct": direct,
            "steve": steve,
        }
    real["targets"] = {
        "read_vs_direct": {"target": TARGETS["read_vs_direct"], "value": real["read"]["vs_direct"]},
        "read_vs_steve": {"target": TARGETS["read_vs_steve"], "value": real["read"]["vs_steve"]},
        "list1000_vs_steve": {"target": TARGETS["list1000_vs_steve"],
                              "value": real["list1000"]["vs_steve"]},
    }  # fmt: skip
    for entry in real["targets"].values():
        entry["met"] = entry["value"] is not None and entry["value"] >= entry["target"]
    return {
        "mode": "real",
        "load_generator": run.kind,
        "duration_s": options.duration,
        "rounds": options.rounds,
        "connections": options.connections,
        "caller": CALLER,
        "cores": run.placement.describe(),
        "real": real,
        "rss_mb": rss,
        "scenarios": scenarios,
    }
