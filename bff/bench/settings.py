"""The bench's settings: how long, how hard, and against what ``bench`` measures.

``bench`` reads only these rows (none of ``serve``'s): the BFF it starts gets its
own settings on its command line.
"""

from __future__ import annotations

from dataclasses import dataclass

from bff.settings import (
    Command,
    Settings,
    parse_file,
    parse_namespace,
    parse_on_off,
    parse_positive_int,
    parse_real,
    parse_whole,
    setting,
)

_BENCH = frozenset({Command.BENCH})


def _at_least_one_second(text: str) -> float:
    why = "must be at least 1 second"
    value = parse_real(text, why)
    if not value >= 1:
        raise ValueError(why)
    return value


def _at_least_two(text: str) -> int:
    why = "must be a whole number, at least 2 (sides alternate)"
    value = parse_whole(text, why)
    if value < 2:
        raise ValueError(why)
    return value


def _load_generator(text: str) -> str:
    if text not in ("auto", "wrk", "python"):
        raise ValueError("must be auto, wrk or python")
    return text


@dataclass(frozen=True)
class BenchSettings(Settings):
    bench_duration: float | None = setting(
        "--duration",
        "BFF_BENCH_DURATION",
        "Length of each measured round; at least 1.",
        default=None,
        shown="10, or 3 with --quick",
        parse=_at_least_one_second,
        commands=_BENCH,
        metavar="SECONDS",
    )
    bench_quick: bool = setting(
        "--quick",
        "BFF_BENCH_QUICK",
        "Rounds of about 3 s and a short warm-up.",
        default=False,
        parse=parse_on_off,
        commands=_BENCH,
        switch=True,
    )
    bench_rounds: int = setting(
        "--rounds",
        "BFF_BENCH_ROUNDS",
        "Rounds per side of each scenario, alternating sides; at least 2.",
        default=2,
        parse=_at_least_two,
        commands=_BENCH,
        metavar="N",
    )
    bench_connections: int = setting(
        "--connections",
        "BFF_BENCH_CONNECTIONS",
        "Connections kept busy by the load generator.",
        default=32,
        parse=parse_positive_int,
        commands=_BENCH,
        metavar="N",
    )
    bench_threads: int = setting(
        "--threads",
        "BFF_BENCH_THREADS",
        "Load generator threads (wrk) or processes (Python).",
        default=2,
        parse=parse_positive_int,
        commands=_BENCH,
        metavar="N",
    )
    bench_load_generator: str = setting(
        "--load-generator",
        "BFF_BENCH_LOAD_GENERATOR",
        "auto uses wrk when it is installed, else Python processes.",
        default="auto",
        parse=_load_generator,
        commands=_BENCH,
        metavar="{auto,wrk,python}",
    )
    bench_json: str | None = setting(
        "--json",
        "BFF_BENCH_JSON",
        "Also write every figure as JSON to PATH.",
        default=None,
        commands=_BENCH,
        metavar="PATH",
    )
    bench_kubeconfig: str | None = setting(
        "--kubeconfig",
        "BFF_BENCH_KUBECONFIG",
        "Measure this real cluster (its current context, a bearer token) instead of the "
        "emulator: GET and LIST straight to the API server and through the BFF; nothing is "
        "written.",
        default=None,
        parse=parse_file,
        commands=_BENCH,
        metavar="FILE",
    )
    bench_namespace: str = setting(
        "--namespace", "BFF_BENCH_NAMESPACE",
        "With --kubeconfig: the namespace whose Upgrades are read.",
        default="harvester-system",
        metavar="NAME", parse=parse_namespace, commands=_BENCH,
    )  # fmt: skip
    bench_real: bool = setting(
        "--real",
        "BFF_BENCH_REAL",
        "From a source checkout: start the test harness's real kube-apiserver and real Steve "
        "(built with Go and cached on first use) and read the same Upgrades straight from the "
        "API server, through Steve and through the BFF; with --quick, short rounds.",
        default=False,
        parse=parse_on_off,
        commands=_BENCH,
        switch=True,
    )
