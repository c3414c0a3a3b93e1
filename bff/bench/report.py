"""The bench's table: one line per scenario and side, then the ratios against the targets."""

from __future__ import annotations

from typing import Any

TARGETS = [
    ("ceiling.cpu_ratio", "GET: BFF / bare aiohttp CPU per request", "<= 1.7"),
    ("ceiling.bytecode_ratio", "GET: BFF / bare aiohttp Python bytecodes", ""),
    ("read.cpu_ratio", "GET: BFF / forwarder CPU per request", ""),
    ("read.throughput_ratio", "GET: BFF / forwarder throughput", ">= 2"),
    ("read.throughput_ratio_min", "GET: the same, lowest round", ">= 2"),
    ("read.throughput_ratio_max", "GET: the same, highest round", ""),
    ("read.upstream_calls_per_request", "GET: upstream calls per request", "0"),
    ("write.throughput_ratio", "real dismiss: BFF / guarded forwarder", ">= 0.9"),
    ("write.p99_ratio", "real dismiss: p99 BFF / guarded forwarder", "<= 1.5"),
    ("write.upstream_calls_per_request", "real dismiss: upstream calls per request", "1"),
    ("write.idempotent_upstream_calls_per_request", "idempotent dismiss: upstream calls", "0"),
    ("list1000.cpu_ratio", "LIST of 1,000: BFF / forwarder CPU", "<= 2"),
    ("rss_mb.idle", "RSS idle, MB", ""),
    ("rss_mb.cached_1000", "RSS with 1,000 Upgrades, MB", "<= 90"),
    ("rss_mb.peak", "BFF's peak RSS over the run, MB", ""),
    ("ceiling.read_ratio", "GET: BFF / bare aiohttp throughput", ""),
    ("review.steady.p50_ms", "review p50 at 200/s (open loop), ms", ""),
    ("review.steady.p99_ms", "review p99 at 200/s (open loop), ms", "<= 10"),
    ("review.burst.healthz_p99_ms", "/healthz p99 during 20 reviews of 1.9 MB, ms", "<= 50"),
    ("review.burst.review_max_ms", "slowest of the 20 large reviews, ms", ""),
    ("streams.opened", "live-update streams open", ""),
    ("streams.delivery_p99_ms", "one change to every stream: p99, ms", "<= 250"),
    ("streams.rss_per_stream_kb", "RSS per open stream, kB", ""),
    ("streams.get_p99_ratio", "GET p99 with / without the streams", "<= 1.5"),
]
#: Whether each target was met, as the figures say (computed where they are measured).
MET = {
    "review.steady.p99_ms": "review.steady.met",
    "review.burst.healthz_p99_ms": "review.burst.met",
    "streams.delivery_p99_ms": "streams.delivery_met",
    "streams.get_p99_ratio": "streams.get_met",
}


def _get(figures: dict[str, Any], dotted: str) -> Any:
    value: Any = figures
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def table(figures: dict[str, Any]) -> str:
    lines = [
        f"{'scenario':<20} {'side':<10} {'CPU us/req (min-max)':>22} {'upstream/load':>14} "
        f"{'req/s (min-max)':>22} {'p50 ms':>8} {'p99 ms':>8} {'up/req':>7} {'errors':>6}",
    ]
    for name, sides in figures["scenarios"].items():
        for index, (side, s) in enumerate(sides.items()):
            cpu = s["cpu_us_per_request"]
            spread = "-" if "target" not in cpu else (
                f"{cpu['target']:.0f} ({s['cpu_us_per_request_min']:.0f}-"
                f"{s['cpu_us_per_request_max']:.0f})")  # fmt: skip
            others = "/".join(f"{cpu[k]:.0f}" for k in ("upstream", "load") if k in cpu)
            up = s.get("upstream_calls_per_request")
            rps = f"{s['rps']:.0f} ({s['rps_min']:.0f}-{s['rps_max']:.0f})"
            lines.append(
                f"{name if index == 0 else '':<20} {side:<10} {spread:>22} {others:>14} "
                f"{rps:>22} {s['p50_ms']:>8.2f} {s['p99_ms']:>8.2f} "
                f"{'-' if up is None else f'{up:.2f}':>7} {s['errors']:>6}"
            )
            if s.get("reused_paths"):
                lines.append(f"{'':<31} {s['reused_paths']} requests met an already-dismissed "
                             "object (fresh objects ran out)")  # fmt: skip
    mode = figures.get("mode")
    if mode == "emulator":
        lines.append("")
        lines.append(f"{'figure':<48} {'value':>8}  target")
        for key, label, target in TARGETS:
            value = _get(figures, key)
            shown = "-" if value is None else f"{value:g}"
            met = _get(figures, MET[key]) if key in MET else None
            verdict = "" if met is None else ("  met" if met else "  NOT met")
            lines.append(f"{label:<48} {shown:>8}  {target}{verdict}")
    elif mode == "real":
        lines.append("")
        lines.append(f"{'the BFF against':<34} {'req/s':>7} {'lowest round':>13} "
                     f"{'CPU/req saved':>14}")  # fmt: skip
        for group, label in (("read", "GET one"), ("list3", "LIST of 3"),
                             ("list1000", "LIST of 1,000")):  # fmt: skip
            for other in ("direct", "steve"):
                c = figures["real"][group][other]
                if c is None:
                    continue
                lines.append(f"{label + ': ' + other:<34} {_num(c['throughput_ratio']):>7} "
                             f"{_num(c['throughput_ratio_min']):>13} "
                             f"{_num(c['cpu_ratio']):>14}")  # fmt: skip
        for key, entry in figures["real"]["targets"].items():
            verdict = "met" if entry["met"] else "NOT met"
            lines.append(f"target {key} >= {entry['target']:g}: {_num(entry['value'])} {verdict}")
    else:
        lines.append("")
        for name, ratios in figures["read"].items():
            lines.append(f"{name}: BFF / direct throughput {ratios['throughput_ratio']:g}, "
                         f"p99 {ratios['p99_ratio']:g}")  # fmt: skip
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"
