"""The bench's orchestration: start the processes, run alternating rounds, report."""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bff.bench import guard, load
from bff.bench.procs import Child, Cpu, cores, pinner, rss_kb, rss_mb, tick_us
from bff.sandbox.kubeconfig import write_kubeconfig

NS = "harvester-system"
SUCCEEDED = "hvst-upgrade-7xn6v"
ADMIN_TOKEN = "sandbox-admin"  # noqa: S105 (the sandbox emulator's own admin token)
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ITEM = f"/api/v1.0.5/upgrades/{NS}/{{name}}"
COLLECTION = "/api/v1.0.5/upgrades"
LIST_SIZE = 1000
#: The seeded namespace holds three Upgrades; the LIST of 1,000 adds this many.
LIST_EXTRA = LIST_SIZE - 3


@dataclass(frozen=True)
class Options:
    duration: float = 10.0
    rounds: int = 2
    connections: int = 32
    threads: int = 2
    generator: str = "auto"
    kubeconfig: str | None = None
    namespace: str = NS
    warmup: float = 1.0
    #: Live-update streams held open in the fan-out scenario.
    streams: int = 1000
    #: --quick: scenarios after the first on the same processes skip their warm-up.
    quick: bool = False


@dataclass
class Round:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    seconds: float
    #: CPU microseconds per client request, per process ("target", "upstream", "load").
    cpu_us_per_request: dict[str, float]
    #: Upstream requests (watches apart) per client request; None against a real cluster.
    upstream_calls_per_request: float | None
    reused_paths: int = 0
    #: Distinct paths the round was given (for fresh dismisses: the objects seeded for it).
    paths: int = 0
    #: Fresh dismisses: the rate the round's objects were seeded for (:func:`fresh_count`).
    seeded_for_rps: float | None = None
    #: Upstream requests during the round by kind (GET, PATCH, POST = access reviews, ...).
    upstream_requests: dict[str, int] = field(default_factory=dict)


@dataclass
class SideFigures:
    rounds: list[Round] = field(default_factory=list)
    #: Throughput of the side's warm-up (not a measured round).
    warmup_rps: float = 0.0

    def summary(self) -> dict[str, Any]:
        def med(values: list[float]) -> float:
            return round(statistics.median(values), 3)

        rps = [r.rps for r in self.rounds]
        cpu_keys = self.rounds[0].cpu_us_per_request.keys()
        upstream = [r.upstream_calls_per_request for r in self.rounds]
        target = [r.cpu_us_per_request["target"] for r in self.rounds if
                  "target" in r.cpu_us_per_request] or [0.0]  # fmt: skip
        return {
            # CPU per request first: it moves least with what else the machine runs.
            "cpu_us_per_request": {
                k: med([r.cpu_us_per_request[k] for r in self.rounds]) for k in cpu_keys
            },
            "cpu_us_per_request_min": min(target),
            "cpu_us_per_request_max": max(target),
            "rps": med(rps),
            "rps_min": min(rps),
            "rps_max": max(rps),
            "p50_ms": med([r.p50_ms for r in self.rounds]),
            "p99_ms": med([r.p99_ms for r in self.rounds]),
            "p99_ms_max": max(r.p99_ms for r in self.rounds),
            "upstream_calls_per_request": (
                None
                if any(u is None for u in upstream)
                else med([u for u in upstream if u is not None])
            ),
            "errors": sum(r.errors for r in self.rounds),
            "reused_paths": sum(r.reused_paths for r in self.rounds),
            "warmup_rps": self.warmup_rps,
            "rounds": [asdict(r) for r in self.rounds],
        }


def _ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else 0.0


def _round_ratios(side: dict[str, Any], other: dict[str, Any], key: str = "rps") -> list[float]:
    """The ratio in each round: round i of one side against round i of the other.

    Sides alternate within a round, so round i of both ran back to back.
    """
    return [_ratio(a[key], b[key]) for a, b in zip(side["rounds"], other["rounds"], strict=True)]


def _request(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> Any:
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an HTTP URL: {url}")
    req = urllib.request.Request(url, method=method, headers=headers or {})  # noqa: S310
    # Seeding thousands of Upgrades in the emulator can take a while on a busy machine.
    with urllib.request.urlopen(req, timeout=120) as response:  # noqa: S310
        return json.loads(response.read() or b"null")


def _wait_ready(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=5) as response:  # noqa: S310
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not become ready in {timeout:.0f}s")


class Layout:
    """Which cores each process gets: the measured service alone where there are enough."""

    def __init__(self) -> None:
        available = cores()
        self.cpus = available
        if len(available) >= 3:
            self.target, self.upstream, self.load = [available[-1]], [available[0]], available[1:-1]
        elif len(available) == 2:
            self.target, self.upstream, self.load = [available[1]], [available[0]], [available[0]]
        else:
            self.target = self.upstream = self.load = []

    def describe(self) -> dict[str, object]:
        return {"cpus": self.cpus, "target": self.target, "upstream": self.upstream,
                "load_generator": self.load}  # fmt: skip


class Bench:
    def __init__(self, options: Options, work: Path, say: Callable[[str], None]) -> None:
        self.o = options
        self.work = work
        self.say = say
        self.layout = Layout()
        self.kind = load.available(options.generator)
        self.children: list[Child] = []
        self.upstream: Child | None = None
        #: The last throughput measured per (scenario, side), warm-ups included: what
        #: the next round of fresh dismisses can use at most.
        self.last_rate: dict[tuple[str, str], float] = {}
        #: The rate each fresh-dismiss round was seeded for, by (side, round).
        self.fresh_rate_used: dict[tuple[str, int], float] = {}

    def start(self, name: str, args: list[str], pin: list[int], **kw: Any) -> Child:
        child = Child(name, args, self.work / f"{name}.log", pin=pinner(pin), **kw)
        self.children.append(child)
        return child

    def stop_all(self) -> None:
        for child in reversed(self.children):
            child.stop()

    def counts(self) -> dict[str, int]:
        if self.upstream is None:
            return {}
        counts: dict[str, int] = _request(f"http://127.0.0.1:{self.upstream.port}/_bench/counts")
        return counts

    def measure(self, target: Child, plan: load.Plan) -> Round:
        watched = {"target": Cpu(target.pid)}
        if self.upstream is not None:
            watched["upstream"] = Cpu(self.upstream.pid)
        before = self.counts()
        result = load.run(plan, self.kind, pinner(self.layout.load), self.work)
        for cpu in watched.values():
            cpu.sample()
        after = self.counts()
        requests = max(1, result.requests)
        per = {k: round(c.used() * tick_us() / requests, 1) for k, c in watched.items()}
        per["load"] = round(result.cpu_ticks * tick_us() / requests, 1)
        upstream = None
        deltas: dict[str, int] = {}
        if self.upstream is not None:
            upstream = round((after.get("total", 0) - before.get("total", 0)) / requests, 3)
            deltas = {k: after.get(k, 0) - before.get(k, 0) for k in after}
        return Round(
            rps=result.rps, p50_ms=result.p50_ms, p99_ms=result.p99_ms, requests=result.requests,
            errors=result.errors, seconds=result.seconds, cpu_us_per_request=per,
            upstream_calls_per_request=upstream, reused_paths=result.reused_paths,
            upstream_requests=deltas,
        )  # fmt: skip

    def plan(self, target: Child, method: str, paths: list[str], *, consume: bool = False,
             duration: float | None = None, headers: dict[str, str] | None = None,
             scheme: str = "http") -> load.Plan:  # fmt: skip
        return load.Plan(
            url=f"{scheme}://127.0.0.1:{target.port}",
            method=method,
            paths=tuple(paths),
            headers=headers if headers is not None else ADMIN,
            duration=self.o.duration if duration is None else duration,
            connections=self.o.connections,
            threads=self.o.threads,
            consume=consume,
        )

    def scenario(
        self,
        name: str,
        sides: dict[str, Child],
        method: str,
        paths: Callable[[str, int], list[str]] | list[str],
        *,
        consume: bool = False,
        warm_up: bool = True,
    ) -> dict[str, SideFigures]:
        figures = {side: SideFigures() for side in sides}
        order = list(sides)
        for side, child in sides.items() if warm_up else ():  # warm-up, not measured
            warm = paths(side, -1) if callable(paths) else paths
            result = load.run(self.plan(child, method, warm, consume=consume,
                                        duration=self.o.warmup),
                              self.kind, pinner(self.layout.load), self.work)  # fmt: skip
            self.last_rate[(name, side)] = figures[side].warmup_rps = result.rps
        for number in range(self.o.rounds):
            for side in order if number % 2 == 0 else list(reversed(order)):
                chosen = paths(side, number) if callable(paths) else paths
                measured = self.measure(sides[side], self.plan(sides[side], method, chosen,
                                                               consume=consume))  # fmt: skip
                measured.paths = len(chosen)
                measured.seeded_for_rps = self.fresh_rate_used.get((side, number))
                figures[side].rounds.append(measured)
                self.last_rate[(name, side)] = measured.rps
                cpu = measured.cpu_us_per_request["target"]
                self.say(f"  {name:<22} round {number + 1} {side:<10} {cpu:>6.0f} us/req "
                         f"{measured.rps:>9.1f} req/s p99 {measured.p99_ms:.2f} ms")  # fmt: skip
        return figures


def _bff_args(kubeconfig: Path, namespace: str) -> list[str]:
    return ["-m", "bff", "serve", "--kubeconfig", str(kubeconfig), "--port", "0",
            "--namespace", namespace, "--read-cache", "on"]  # fmt: skip


BFF_PORT = r"serving on https?://[^\s/]+:(\d+)"


def run_emulator(options: Options, say: Callable[[str], None]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bff-bench-") as tmp:
        work = Path(tmp)
        bench = Bench(options, work, say)
        layout = bench.layout
        try:
            upstream = bench.start("upstream", ["-m", "bff.bench.upstream"], layout.upstream)
            bench.upstream = upstream
            kube = f"http://127.0.0.1:{upstream.port}"
            config = write_kubeconfig(work / "bff.kubeconfig", kube, token="sandbox-bff")
            bff = bench.start("bff", _bff_args(config, NS), layout.target,
                              port_pattern=BFF_PORT, port_in_log=True)  # fmt: skip
            forwarder = bench.start(
                "forwarder", ["-m", "bff.bench.forwarder", "--upstream", kube], layout.target
            )
            bff_url = f"http://127.0.0.1:{bff.port}"
            _wait_ready(bff_url)
            one = _request(f"{bff_url}{ITEM.format(name=SUCCEEDED)}", headers=ADMIN)
            body = work / "one.json"
            body.write_bytes(json.dumps(one, separators=(",", ":")).encode())
            ceiling = bench.start("ceiling", ["-m", "bff.bench.ceiling", "--body", str(body)],
                                  layout.target)  # fmt: skip
            time.sleep(0.5)
            rss_idle = rss_mb(bff.pid)
            forwarder_idle = rss_mb(forwarder.pid)
            # The idempotent dismiss needs an upgrade that is already read.
            _request(f"{bff_url}{ITEM.format(name=SUCCEEDED)}?action=dismiss", "POST", ADMIN)

            say(f"load generator: {bench.kind}; {options.rounds} rounds of {options.duration:g}s "
                f"per side; cores {layout.describe()}")  # fmt: skip
            get_path = [ITEM.format(name=SUCCEEDED)]
            scenarios: dict[str, dict[str, SideFigures]] = {}
            both = {"bff": bff, "forwarder": forwarder}
            scenarios["get"] = bench.scenario(
                "GET one", {**both, "ceiling": ceiling}, "GET", get_path
            )
            bytecodes = count_bytecodes(config, body, requests=100 if options.quick else 200)
            say(f"  Python bytecodes per cached GET: bff {bytecodes['bff']:,.0f}, "
                f"ceiling {bytecodes['ceiling']:,.0f}")  # fmt: skip
            # With --quick, only the first scenario on these processes warms them up.
            again = not options.quick
            scenarios["list3"] = bench.scenario(
                "LIST of 3", both, "GET", [COLLECTION], warm_up=again
            )
            idem_name = "dismiss, already read"
            scenarios["dismiss_idempotent"] = bench.scenario(
                idem_name,
                both,
                "POST",
                [get_path[0] + "?action=dismiss"],
                warm_up=again,
            )
            _request(f"{kube}/_bench/seed?namespace={NS}&count={LIST_EXTRA}&prefix=bench-list-",
                     "POST")  # fmt: skip
            _wait_count(bff_url, LIST_SIZE)
            time.sleep(0.5)
            rss_cached = rss_mb(bff.pid)
            forwarder_cached = rss_mb(forwarder.pid)
            scenarios["list1000"] = bench.scenario(
                "LIST of 1,000", both, "GET", [COLLECTION], warm_up=again
            )
            rss_after_list = rss_mb(bff.pid)

            seeded = 0
            total = LIST_SIZE
            fresh_name = "dismiss, fresh objects"
            fresh_seeded: list[int] = []

            def fresh(side: str, number: int) -> list[str]:
                nonlocal seeded, total
                # The previous round's objects go first (outside any measured window),
                # so the BFF holds one round's objects at a time, not the run's.
                deleted = _request(f"{kube}/_bench/delete?namespace={NS}&prefix=fresh-",
                                   "POST")["deleted"]  # fmt: skip
                total -= deleted
                # The BFF's cache has dropped them before any new one is seeded: else, with
                # as many seeded as deleted, the count below would already match while the
                # cache still held the old objects, and the round's first dismisses would
                # miss the cache and read upstream.
                _wait_count(bff_url, total)
                # Each round gets what it can use: a real dismiss is never faster than
                # the idempotent one (strictly more work on both sides), so that rate, or
                # the fastest real one seen if a busy machine made it faster, times the
                # round's length with a fifth to spare, and never more than FRESH_MAX, or
                # FRESH_MAX_QUICK with --quick (seeding more takes the emulator longer
                # than a round on a busy machine).
                seen = [rate for (name, _), rate in bench.last_rate.items() if name == fresh_name]
                rate = max([bench.last_rate.get((idem_name, side), 0.0), *seen])
                count = (
                    FRESH_WARMUP
                    if number < 0
                    else fresh_count(rate, options.duration, quick=options.quick)
                )
                if number >= 0:
                    bench.fresh_rate_used[(side, number)] = rate
                seeded += 1
                names = _request(
                    f"{kube}/_bench/seed?namespace={NS}&count={count}&prefix=fresh-{seeded}-",
                    "POST",
                )["names"]
                total += len(names)
                fresh_seeded.append(len(names))
                _wait_count(bff_url, total)  # the BFF's cache has them all
                return [ITEM.format(name=n) + "?action=dismiss" for n in names]

            scenarios["dismiss_real"] = bench.scenario(
                fresh_name, both, "POST", fresh, consume=True
            )
            peak = rss_mb(bff.pid, "VmHWM")
            emulator_peak = rss_mb(upstream.pid, "VmHWM")
            bff.stop()
            forwarder.stop()
            ceiling.stop()
            guarded = _guard_scenarios(bench, kube, config)
        finally:
            bench.stop_all()
        return _report(options, bench, scenarios, guarded, bytecodes, {
            "idle": rss_idle,
            "cached_1000": rss_cached,
            "cached_1000_after_list_load": rss_after_list,
            "peak": peak,
            "fresh_objects_seeded": sum(fresh_seeded),
            "fresh_objects_most_at_once": max(fresh_seeded, default=0),
            "emulator_peak": emulator_peak,
            "mb_per_1000_objects": round(rss_cached - rss_idle, 1),
            "forwarder_idle": forwarder_idle,
            "forwarder_with_1000_upstream": forwarder_cached,
        })  # fmt: skip


def count_bytecodes(kubeconfig: Path, body: Path, *, requests: int) -> dict[str, float]:
    """Python bytecodes per cached GET, the BFF's and the ceiling's (bff/bench/bytecodes.py),
    counted in a process of their own, between the measured scenarios."""
    done = subprocess.run(
        [sys.executable, "-m", "bff.bench.bytecodes", "--kubeconfig", str(kubeconfig),
         "--namespace", NS, "--path", ITEM.format(name=SUCCEEDED), "--token", ADMIN_TOKEN,
         "--body", str(body), "--requests", str(requests)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"counting bytecodes failed: {done.stderr.strip()[-400:]}")
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


#: Fresh Upgrades for a warm-up of the real dismiss, and the most for one measured round
#: (with --quick, whose rounds are short: seeding and deleting 10,000 took a round's
#: length twice over; a real dismiss here runs at about 900 a second).
FRESH_WARMUP = 1000
FRESH_MAX = 10_000
FRESH_MAX_QUICK = 5_000


def fresh_count(rate: float, duration: float, *, quick: bool = False) -> int:
    """Fresh objects for a round: what ``rate`` dismisses in it, a fifth more, at most
    FRESH_MAX (FRESH_MAX_QUICK with ``quick``)."""
    return min(FRESH_MAX_QUICK if quick else FRESH_MAX, int(rate * duration * 1.2) + 200)


def _wait_count(bff_url: str, count: int, timeout: float = 60.0) -> None:
    """Wait until the BFF lists ``count`` upgrades (it serves them from its cache)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = _request(f"{bff_url}{COLLECTION}", headers=ADMIN)
        if listed.get("count") == count:
            return
        time.sleep(0.1)
    raise RuntimeError(f"the BFF did not list {count} upgrades in {timeout:.0f}s")


def _guard_scenarios(bench: Bench, kube: str, kubeconfig: Path) -> dict[str, Any]:
    """The review path and the stream fan-out, on a BFF of their own (:mod:`bff.bench.guard`)."""
    o, layout, say = bench.o, bench.layout, bench.say
    _request(f"{kube}/_bench/seed?namespace={guard.NAMESPACE}&count={guard.SEEDED}"
             f"&prefix={guard.PREFIX}", "POST")  # fmt: skip
    cert, key = guard.certificate(bench.work / "webhook-tls")
    # The BFF inherits the lifted limit; the bench holds the client ends of the streams.
    guard.raise_open_files()
    bff = bench.start("bff-guard", guard.serve_args(kubeconfig, cert, key, o.streams),
                      layout.target, port_pattern=guard.API_PORT, port_in_log=True)  # fmt: skip
    api = f"http://127.0.0.1:{bff.port}"
    _wait_ready(api)
    webhook = guard.webhook_url(bff.log_file)
    item = f"/api/v1.0.5/upgrades/{guard.NAMESPACE}/{guard.PREFIX}0"
    _request(f"{api}{item}", headers=ADMIN)  # the cache is filled and the caller allowed

    async def get_p99() -> dict[str, Any]:
        plan = load.Plan(
            url=api,
            method="GET",
            paths=(item,),
            headers=ADMIN,
            duration=o.duration,
            connections=o.connections,
            threads=o.threads,
        )
        result = await asyncio.to_thread(load.run, plan, bench.kind, pinner(layout.load),
                                         bench.work)  # fmt: skip
        return guard.get_figures(result)

    async def measure() -> dict[str, Any]:
        # Streams first, on a fresh heap: after the large reviews, freed memory would
        # hide what each stream costs.
        fan = await guard.streams(api, kube, o.streams, lambda: rss_kb(bff.pid), get_p99)
        say(
            f"  {o.streams} streams       delivery p99 {fan['delivery_p99_ms']:.1f} ms, "
            f"{fan['rss_per_stream_kb']:.1f} kB RSS per stream, GET p99 x{fan['get_p99_ratio']}"
        )
        steady = await guard.steady(webhook, guard.STEADY_RATE, o.duration)
        say(f"  review, steady {guard.STEADY_RATE}/s   p50 {steady['p50_ms']:.2f} ms "
            f"p99 {steady['p99_ms']:.2f} ms, {steady['errors']} errors")  # fmt: skip
        burst = await guard.burst(webhook, api)
        say(
            f"  review, {guard.BURST} x {burst['review_bytes'] / 1e6:.1f} MB   /healthz p99 "
            f"{burst['healthz_p99_ms']:.1f} ms, slowest review {burst['review_max_ms']:.0f} ms"
        )
        return {"review": {"steady": steady, "burst": burst}, "streams": fan}

    with guard.pinned(layout.load):
        return asyncio.run(measure())


def _report(options: Options, bench: Bench, scenarios: dict[str, dict[str, SideFigures]],
            guarded: dict[str, Any], bytecodes: dict[str, float],
            rss: dict[str, float]) -> dict[str, Any]:  # fmt: skip
    raw = {name: {side: f.summary() for side, f in sides.items()}
           for name, sides in scenarios.items()}  # fmt: skip
    get, write, idem = raw["get"], raw["dismiss_real"], raw["dismiss_idempotent"]
    l1000 = raw["list1000"]
    read_rounds = _round_ratios(get["bff"], get["forwarder"])
    write_rounds = _round_ratios(write["bff"], write["forwarder"])
    return {
        "mode": "emulator",
        "load_generator": bench.kind,
        "duration_s": options.duration,
        "rounds": options.rounds,
        "quick": options.quick,
        "connections": options.connections,
        "cores": bench.layout.describe(),
        "read": {
            "throughput_ratio": _ratio(get["bff"]["rps"], get["forwarder"]["rps"]),
            "throughput_ratio_rounds": read_rounds,
            "throughput_ratio_min": min(read_rounds),
            "throughput_ratio_max": max(read_rounds),
            "cpu_ratio": _ratio(
                get["bff"]["cpu_us_per_request"]["target"],
                get["forwarder"]["cpu_us_per_request"]["target"],
            ),
            "upstream_calls_per_request": get["bff"]["upstream_calls_per_request"],
            "list3_throughput_ratio": _ratio(
                raw["list3"]["bff"]["rps"], raw["list3"]["forwarder"]["rps"]
            ),
        },
        "write": {
            "throughput_ratio": _ratio(write["bff"]["rps"], write["forwarder"]["rps"]),
            "throughput_ratio_rounds": write_rounds,
            "p99_ratio": _ratio(write["bff"]["p99_ms"], write["forwarder"]["p99_ms"]),
            "upstream_calls_per_request": write["bff"]["upstream_calls_per_request"],
            "idempotent_upstream_calls_per_request": idem["bff"]["upstream_calls_per_request"],
            "idempotent_throughput_ratio": _ratio(idem["bff"]["rps"], idem["forwarder"]["rps"]),
        },
        "list1000": {
            "cpu_ratio": _ratio(
                l1000["bff"]["cpu_us_per_request"]["target"],
                l1000["forwarder"]["cpu_us_per_request"]["target"],
            ),
            "throughput_ratio": _ratio(l1000["bff"]["rps"], l1000["forwarder"]["rps"]),
        },
        "rss_mb": rss,
        "ceiling": {
            # CPU per cached GET against the bare handler's: the BFF's own cost, in the
            # figure that moves least with the machine's other work.
            "cpu_ratio": _ratio(
                get["bff"]["cpu_us_per_request"]["target"],
                get["ceiling"]["cpu_us_per_request"]["target"],
            ),
            "cpu_ratio_target": 1.7,
            "read_ratio": _ratio(get["bff"]["rps"], get["ceiling"]["rps"]),
            # The same comparison in Python bytecodes per request: counted, not timed, so
            # it does not move with the machine (bff/bench/bytecodes.py).
            "bytecodes": bytecodes,
            "bytecode_ratio": _ratio(bytecodes["bff"], bytecodes["ceiling"]),
        },
        **guarded,
        "scenarios": raw,
    }


def run_cluster(options: Options, say: Callable[[str], None]) -> dict[str, Any]:
    """Against a real cluster: straight to the API server and through the BFF, reads only."""
    assert options.kubeconfig is not None
    server, token, _ = _cluster(options.kubeconfig)
    ns = options.namespace
    api = f"/apis/harvesterhci.io/v1beta1/namespaces/{ns}/upgrades"
    headers = {"Authorization": f"Bearer {token}"}
    with tempfile.TemporaryDirectory(prefix="bff-bench-") as tmp:
        work = Path(tmp)
        bench = Bench(options, work, say)
        scenarios: dict[str, dict[str, SideFigures]] = {}
        try:
            bff = bench.start("bff", _bff_args(Path(options.kubeconfig), ns), bench.layout.target,
                              port_pattern=BFF_PORT, port_in_log=True)  # fmt: skip
            bff_url = f"http://127.0.0.1:{bff.port}"
            _wait_ready(bff_url)
            listed = _request(f"{bff_url}{COLLECTION}", headers=headers)
            names = [item["metadata"]["name"] for item in listed.get("data", [])]
            say(f"{server}: {len(names)} upgrades in {ns}; load generator {bench.kind}")

            def plan(url: str, path: str) -> load.Plan:
                return load.Plan(url=url, method="GET", paths=(path,), headers=headers,
                                 duration=options.duration, connections=options.connections,
                                 threads=options.threads)  # fmt: skip

            def direct(path: str) -> Round:
                result = load.run(plan(server, path), bench.kind, pinner(bench.layout.load), work)
                per = {"load": round(result.cpu_ticks * tick_us() / max(1, result.requests), 1)}
                return Round(rps=result.rps, p50_ms=result.p50_ms, p99_ms=result.p99_ms,
                             requests=result.requests, errors=result.errors,
                             seconds=result.seconds, cpu_us_per_request=per,
                             upstream_calls_per_request=None)  # fmt: skip

            def run(name: str, direct_path: str, bff_path: str) -> dict[str, SideFigures]:
                figures = {"direct": SideFigures(), "bff": SideFigures()}
                for number in range(options.rounds):
                    order = ["direct", "bff"] if number % 2 == 0 else ["bff", "direct"]
                    for side in order:
                        measured = (
                            direct(direct_path) if side == "direct"
                            else bench.measure(bff, plan(bff_url, bff_path))
                        )  # fmt: skip
                        figures[side].rounds.append(measured)
                        say(f"  {name:<10} round {number + 1} {side:<7} {measured.rps:>9.1f} req/s")
                return figures

            scenarios["list"] = run("LIST", api, COLLECTION)
            if names:
                scenarios["get"] = run("GET one", f"{api}/{names[0]}",
                                       f"/api/v1.0.5/upgrades/{ns}/{names[0]}")  # fmt: skip
        finally:
            bench.stop_all()
    raw = {name: {side: f.summary() for side, f in sides.items()}
           for name, sides in scenarios.items()}  # fmt: skip
    return {
        "mode": "cluster",
        "server": server,
        "load_generator": bench.kind,
        "duration_s": options.duration,
        "rounds": options.rounds,
        "read": {
            name: {
                "throughput_ratio": _ratio(s["bff"]["rps"], s["direct"]["rps"]),
                "p99_ratio": _ratio(s["bff"]["p99_ms"], s["direct"]["p99_ms"]),
            }
            for name, s in raw.items()
        },
        "scenarios": raw,
    }


def _cluster(kubeconfig: str) -> tuple[str, str, str | None]:
    """Server URL, bearer token and CA file of the kubeconfig's current context."""
    document = yaml.safe_load(Path(kubeconfig).read_text())
    context_name = document.get("current-context")
    context = next(c["context"] for c in document["contexts"] if c["name"] == context_name)
    cluster = next(c["cluster"] for c in document["clusters"] if c["name"] == context["cluster"])
    user = next(u["user"] for u in document["users"] if u["name"] == context["user"])
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = Path(user["tokenFile"]).read_text().strip()
    if not token:
        raise ValueError(
            f"{kubeconfig}: the current context's user has no token; the load generator "
            "authenticates with a bearer token only"
        )
    return str(cluster["server"]).rstrip("/"), str(token), cluster.get("certificate-authority")
