"""Load generators, each in processes of their own: ``wrk`` where installed, else Python.

A :class:`Plan` says what to send: one method, a list of paths (reads cycle
through them; writes take each path once per connection slot, so a real
dismiss always meets a fresh object), headers, duration and connections. Both
generators report the same :class:`Result`.

The Python generator (``python -m bff.bench.load PLAN INDEX COUNT OUT``) runs as
several processes, each an asyncio loop with its share of the connections.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bff.bench.procs import Cpu, cpu_ticks


@dataclass(frozen=True)
class Plan:
    url: str  # scheme://host:port
    method: str
    paths: tuple[str, ...]
    headers: dict[str, str] = field(default_factory=dict)
    duration: float = 10.0
    connections: int = 32
    threads: int = 2
    #: Writes: each path is used once; when they run out, the count of re-used ones is reported.
    consume: bool = False


@dataclass
class Result:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    #: Requests beyond the plan's paths when ``consume`` (they met an already-dismissed object).
    reused_paths: int
    generator: str
    #: CPU of the generator's own processes.
    cpu_ticks: int = 0


def available(preferred: str = "auto") -> str:
    if preferred == "python":
        return "python"
    found = shutil.which("wrk")
    if preferred == "wrk" and not found:
        raise RuntimeError("--load-generator wrk: wrk is not installed")
    return "wrk" if found else "python"


def run(
    plan: Plan, kind: str, pin: Callable[[], None] | None = None, tmp: Path | None = None
) -> Result:
    with tempfile.TemporaryDirectory(prefix="bff-load-", dir=tmp) as work:
        if kind == "wrk":
            return _wrk(plan, Path(work), pin)
        return _python(plan, Path(work), pin)


def _lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string of ASCII is a valid Lua string literal


def _wrk(plan: Plan, work: Path, pin: Callable[[], None] | None) -> Result:
    paths = "{" + ",".join(_lua_string(p) for p in plan.paths) + "}"
    headers = "{" + ",".join(f"[{_lua_string(k)}]={_lua_string(v)}"
                             for k, v in plan.headers.items()) + "}"  # fmt: skip
    script = work / "plan.lua"
    script.write_text(
        f"""
local paths = {paths}
local headers = {headers}
local method = {_lua_string(plan.method)}
local consume = {"true" if plan.consume else "false"}
local threads = {{}}
local index = 0
function setup(thread)
  thread:set("offset", index)
  index = index + 1
  table.insert(threads, thread)
end
function init(args)
  n = offset
  step = {plan.threads}
  reused = 0
end
function request()
  local i = n
  n = n + step
  if i >= #paths then
    reused = reused + 1
    i = i % #paths
  end
  return wrk.format(method, paths[i + 1], headers, "")
end
function done(summary, latency, requests)
  local reused = 0
  for _, t in ipairs(threads) do reused = reused + (t:get("reused") or 0) end
  local e = summary.errors
  io.write(string.format(
    "BENCH {{\\"requests\\":%d,\\"duration_us\\":%d,\\"p50_us\\":%d,\\"p99_us\\":%d," ..
    "\\"errors\\":%d,\\"reused\\":%d}}\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status + e.connect + e.read + e.write + e.timeout, reused))
end
"""
    )
    threads = max(1, min(plan.threads, plan.connections))
    command = [
        "wrk", f"-t{threads}", f"-c{plan.connections}", f"-d{max(1, round(plan.duration))}s",
        "--timeout", "10s", "-s", str(script), plan.url,
    ]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=pin
    )
    before = cpu_ticks(process.pid)
    peak = before
    deadline = time.monotonic() + plan.duration + 30
    while process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
        peak = cpu_ticks(process.pid) or peak
    out, err = process.communicate(timeout=5)
    line = next((x for x in out.splitlines() if x.startswith("BENCH ")), None)
    if process.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({process.returncode}): {err.strip()[:300]}")
    data = json.loads(line[6:])
    seconds = data["duration_us"] / 1e6
    return Result(
        requests=data["requests"],
        seconds=round(seconds, 3),
        rps=round(data["requests"] / seconds, 1),
        p50_ms=round(data["p50_us"] / 1000, 3),
        p99_ms=round(data["p99_us"] / 1000, 3),
        errors=data["errors"],
        reused_paths=data["reused"] if plan.consume else 0,
        generator="wrk",
        cpu_ticks=max(0, peak - before),
    )


def _python(plan: Plan, work: Path, pin: Callable[[], None] | None) -> Result:
    plan_file = work / "plan.json"
    plan_file.write_text(json.dumps(asdict(plan)))
    count = max(1, plan.threads)
    # Results go to files, not pipes: a worker's latencies outgrow a pipe's buffer,
    # and a worker blocked writing to it would never exit.
    outs = [work / f"result-{i}.json" for i in range(count)]
    errs = [work / f"stderr-{i}.txt" for i in range(count)]
    processes = []
    for i in range(count):
        with errs[i].open("w") as err_file:
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "bff.bench.load", str(plan_file), str(i), str(count),
                     str(outs[i])],
                    stdout=subprocess.DEVNULL,
                    stderr=err_file,
                    preexec_fn=pin,
                )
            )  # fmt: skip
    cpus = [Cpu(p.pid) for p in processes]
    outputs = []
    ticks = 0
    deadline = time.monotonic() + plan.duration + 60
    for index, (process, cpu) in enumerate(zip(processes, cpus, strict=True)):
        while process.poll() is None:
            if time.monotonic() > deadline:
                for other in processes:
                    other.kill()
                raise RuntimeError("the load generator did not finish in time")
            cpu.sample()
            time.sleep(0.05)
        if process.returncode != 0:
            raise RuntimeError(f"load generator failed: {errs[index].read_text()[-300:]}")
        outputs.append(json.loads(outs[index].read_text()))
        ticks += cpu.used()
    latencies = sorted(x for o in outputs for x in o["latencies"])
    seconds = max(o["seconds"] for o in outputs)
    requests = len(latencies)
    return Result(
        requests=requests,
        seconds=round(seconds, 3),
        rps=round(requests / seconds, 1) if seconds else 0.0,
        p50_ms=round(_percentile(latencies, 0.50) * 1000, 3),
        p99_ms=round(_percentile(latencies, 0.99) * 1000, 3),
        errors=sum(o["errors"] for o in outputs),
        reused_paths=sum(o["reused"] for o in outputs),
        generator="python",
        cpu_ticks=ticks,
    )


def _percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    return values[min(len(values) - 1, int(len(values) * q))]


async def _worker(plan: Plan, index: int, count: int) -> dict[str, object]:
    import aiohttp

    connections = max(1, plan.connections // count + (1 if index < plan.connections % count else 0))
    latencies: list[float] = []
    errors = 0
    reused = 0
    position = index
    connector = aiohttp.TCPConnector(limit=connections, ssl=False)
    async with aiohttp.ClientSession(
        plan.url,
        connector=connector,
        headers=plan.headers,
        trust_env=False,
        timeout=aiohttp.ClientTimeout(total=10),  # as wrk's --timeout
    ) as session:
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + plan.duration

        async def one() -> None:
            nonlocal errors, reused, position
            while loop.time() < deadline:
                i = position
                position += count
                if i >= len(plan.paths):
                    reused += 1
                    i %= len(plan.paths)
                sent = time.perf_counter()
                try:
                    async with session.request(plan.method, plan.paths[i]) as response:
                        await response.read()
                        if response.status >= 400:
                            errors += 1
                except (aiohttp.ClientError, OSError, TimeoutError):
                    errors += 1
                latencies.append(time.perf_counter() - sent)

        await asyncio.gather(*(one() for _ in range(connections)))
        seconds = loop.time() - started
    return {
        "latencies": latencies,
        "seconds": seconds,
        "errors": errors,
        "reused": reused if plan.consume else 0,
    }


def main(argv: Sequence[str]) -> None:
    plan_file, index, count, out = argv
    raw = json.loads(Path(plan_file).read_text())
    raw["paths"] = tuple(raw["paths"])
    plan = Plan(**raw)
    Path(out).write_text(json.dumps(asyncio.run(_worker(plan, int(index), int(count)))))


if __name__ == "__main__":
    main(sys.argv[1:])
    os._exit(0)
