"""``harvester-upgrade-bff bench``: what the BFF costs, each part in a process of its own.

Processes, all on loopback, pinned to cores where the machine allows:

* the upstream: the sandbox's API emulator (``bff.bench.upstream``), which
  counts the requests it serves;
* the BFF, started with ``serve`` exactly as deployed (access log on, text);
* the baseline: a hand-written aiohttp forwarder (``bff.bench.forwarder``),
  one upstream call per request, dismiss guarded (GET, check, PATCH if needed);
* the ceiling: a bare aiohttp handler answering fixed bytes (``bff.bench.ceiling``);
* the load generator: ``wrk`` where installed, else Python processes.

Scenarios alternate sides round by round. Figures: throughput, p50/p99,
CPU microseconds per request per process (``/proc/<pid>/stat``), upstream
requests per client request, RSS idle and with 1,000 Upgrades.
``--kubeconfig`` measures a real cluster instead: straight to the API server
and through the BFF, reads only (nothing is written to a real cluster).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

DEFAULT_DURATION = 10.0
QUICK_DURATION = 3.0


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name, default)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--duration", type=float, default=None, metavar="SECONDS",
        help="length of each measured round [env: BFF_BENCH_DURATION; default: 10]",
    )  # fmt: skip
    parser.add_argument(
        "--quick", action="store_true", default=_env("BFF_BENCH_QUICK") == "1",
        help="rounds of about 3 s and a short warm-up [env: BFF_BENCH_QUICK=1]",
    )  # fmt: skip
    parser.add_argument(
        "--rounds", type=int, default=None,
        help="rounds per side of each scenario, alternating sides; at least 2 "
        "[env: BFF_BENCH_ROUNDS; default: 2]",
    )  # fmt: skip
    parser.add_argument(
        "--connections", type=int, default=None,
        help="connections kept busy by the load generator [env: BFF_BENCH_CONNECTIONS; "
        "default: 32]",
    )  # fmt: skip
    parser.add_argument(
        "--threads", type=int, default=None,
        help="load generator threads (wrk) or processes (Python) [env: BFF_BENCH_THREADS; "
        "default: 2]",
    )  # fmt: skip
    parser.add_argument(
        "--load-generator", choices=("auto", "wrk", "python"), default=None,
        help="auto uses wrk when it is installed, else Python processes "
        "[env: BFF_BENCH_LOAD_GENERATOR; default: auto]",
    )  # fmt: skip
    parser.add_argument(
        "--json", default=_env("BFF_BENCH_JSON"), metavar="PATH",
        help="also write every figure as JSON to PATH [env: BFF_BENCH_JSON]",
    )  # fmt: skip
    parser.add_argument(
        "--kubeconfig", default=None, metavar="FILE",
        help="measure this real cluster (its current context, a bearer token) instead of "
        "the emulator: GET and LIST straight to the API server and through the BFF; "
        "nothing is written [env: BFF_BENCH_KUBECONFIG]",
    )  # fmt: skip
    parser.add_argument(
        "--namespace", default=None,
        help="with --kubeconfig: the namespace whose Upgrades are read "
        "[env: BFF_BENCH_NAMESPACE; default: harvester-system]",
    )  # fmt: skip


#: The argparse destinations above, which are not BFF settings.
ARGUMENTS = frozenset({"duration", "quick", "rounds", "connections", "threads",
                       "load_generator", "json", "kubeconfig", "namespace"})  # fmt: skip


class BenchUsageError(ValueError):
    pass


def _number(args: argparse.Namespace, name: str, env: str, default: float, kind: type) -> Any:
    value = getattr(args, name)
    if value is None:
        raw = _env(env)
        if raw is None:
            return default
        try:
            value = kind(raw)
        except ValueError:
            raise BenchUsageError(f"invalid {env} value {raw!r}") from None
    return value


def options_from(args: argparse.Namespace) -> Any:
    from bff.bench.run import Options

    quick = bool(args.quick)
    duration = _number(args, "duration", "BFF_BENCH_DURATION",
                       QUICK_DURATION if quick else DEFAULT_DURATION, float)  # fmt: skip
    rounds = _number(args, "rounds", "BFF_BENCH_ROUNDS", 2, int)
    connections = _number(args, "connections", "BFF_BENCH_CONNECTIONS", 32, int)
    threads = _number(args, "threads", "BFF_BENCH_THREADS", 2, int)
    if duration < 1:
        raise BenchUsageError("--duration must be at least 1 second")
    if rounds < 2:
        raise BenchUsageError("--rounds must be at least 2 (sides alternate)")
    if connections < 1 or threads < 1:
        raise BenchUsageError("--connections and --threads must be positive")
    generator = args.load_generator or _env("BFF_BENCH_LOAD_GENERATOR", "auto")
    if generator not in ("auto", "wrk", "python"):
        raise BenchUsageError(f"invalid BFF_BENCH_LOAD_GENERATOR value {generator!r}")
    kubeconfig = args.kubeconfig or _env("BFF_BENCH_KUBECONFIG")
    if kubeconfig and not Path(kubeconfig).is_file():
        raise BenchUsageError(f"--kubeconfig {kubeconfig!r}: no such file")
    return Options(
        duration=duration,
        rounds=rounds,
        connections=connections,
        threads=min(threads, connections),
        generator=generator,
        kubeconfig=kubeconfig,
        namespace=args.namespace or _env("BFF_BENCH_NAMESPACE", "harvester-system") or "",
        warmup=0.5 if quick else 1.0,
    )


def run_bench(args: argparse.Namespace) -> int:
    from bff.bench import report
    from bff.bench.load import available
    from bff.bench.run import run_cluster, run_emulator

    try:
        options = options_from(args)
        available(options.generator)
    except (BenchUsageError, RuntimeError) as exc:
        print(f"harvester-upgrade-bff: error: {exc}", file=sys.stderr)
        return 2

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        run = run_cluster if options.kubeconfig else run_emulator
        figures = run(options, say)
    except ValueError as exc:
        print(f"harvester-upgrade-bff: error: {exc}", file=sys.stderr)
        return 2
    print(report.table(figures))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0
