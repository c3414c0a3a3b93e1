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
requests per client request, RSS idle and with 1,000 Upgrades. Then, against a
``serve`` with the admission webhook on (:mod:`bff.bench.guard`): review latency
at a steady 200 reviews/s, ``/healthz`` during 20 reviews of 1.9 MB, and 1,000
live-update streams (200 with ``--quick``) receiving one change.
``--kubeconfig`` measures a real cluster instead: straight to the API server
and through the BFF, reads only (nothing is written to a real cluster).
``--real`` (from a source checkout) starts a real kube-apiserver and real Steve
and reads through all three (:mod:`bff.bench.real`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bff.bench.settings import BenchSettings

DEFAULT_DURATION = 10.0
QUICK_DURATION = 3.0


def options_from(settings: BenchSettings) -> Any:
    """The run's options from the bench rows of the settings table (already checked there)."""
    from bff.bench.guard import STREAMS_FULL, STREAMS_QUICK
    from bff.bench.run import Options

    quick = settings.bench_quick
    duration = settings.bench_duration
    return Options(
        duration=duration or (QUICK_DURATION if quick else DEFAULT_DURATION),
        rounds=settings.bench_rounds,
        connections=settings.bench_connections,
        threads=min(settings.bench_threads, settings.bench_connections),
        generator=settings.bench_load_generator,
        kubeconfig=settings.bench_kubeconfig,
        namespace=settings.bench_namespace,
        warmup=0.5 if quick else 1.0,
        streams=STREAMS_QUICK if quick else STREAMS_FULL,
        quick=quick,
    )


def run_bench(settings: BenchSettings) -> int:
    from bff.bench import report
    from bff.bench.load import available
    from bff.bench.run import run_cluster, run_emulator

    try:
        options = options_from(settings)
        available(options.generator)
        if settings.bench_real and settings.bench_kubeconfig:
            raise RuntimeError("--real starts its own cluster: give it or --kubeconfig, not both")
    except RuntimeError as exc:
        print(f"harvester-upgrade-bff: error: {exc}", file=sys.stderr)
        return 2

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        if settings.bench_real:
            from bff.bench.real import run_real

            figures = run_real(options, say)
        else:
            run = run_cluster if options.kubeconfig else run_emulator
            figures = run(options, say)
    except ValueError as exc:
        print(f"harvester-upgrade-bff: error: {exc}", file=sys.stderr)
        return 2
    except (RuntimeError, OSError) as exc:  # a process or request that failed mid-run
        line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        print(f"harvester-upgrade-bff: error: the bench stopped: {line}", file=sys.stderr)
        return 1
    print(report.table(figures))
    if settings.bench_json:
        Path(settings.bench_json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0
