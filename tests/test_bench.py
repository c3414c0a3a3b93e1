"""``bench --quick`` runs end to end and its JSON holds what it promises.

No figure's value is checked (timings belong to the bench, not to tests): the
keys, their types, and that every ratio, percentile and verdict against a target
is the one its raw figures give (the review path and the stream fan-out included).
The Python load generator is used so the test runs the same where wrk is not
installed, and rounds of one second (``--quick --duration 1``, the shortest the
bench accepts) keep the run to about a minute: every scenario, side and round
still runs, only for less time.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import bff

SIDES = {
    "get": {"bff", "forwarder", "ceiling"},
    "list3": {"bff", "forwarder"},
    "dismiss_idempotent": {"bff", "forwarder"},
    "list1000": {"bff", "forwarder"},
    "dismiss_real": {"bff", "forwarder"},
}


def _ratio(a: float, b: float) -> float:
    return round(a / b, 3)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "bff", "bench", "--quick", "--duration", "1",
         "--load-generator", "python", "--connections", "8", "--json", str(out)],
        capture_output=True, text=True, timeout=480, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "LIST of 1,000: BFF / forwarder CPU" in done.stdout
    assert "GET p99 with / without the streams" in done.stdout
    figures: dict[str, Any] = json.loads(out.read_text())
    return figures


def test_every_scenario_and_side_has_its_raw_figures(report: dict[str, Any]) -> None:
    assert report["mode"] == "emulator"
    assert report["load_generator"] == "python"
    assert report["rounds"] >= 2
    assert report["duration_s"] == 1
    assert {k: set(v) for k, v in report["scenarios"].items()} == SIDES
    for sides in report["scenarios"].values():
        for side in sides.values():
            for key in ("rps", "rps_min", "rps_max", "p50_ms", "p99_ms"):
                assert isinstance(side[key], float | int)
                assert side[key] > 0
            assert side["rps_min"] <= side["rps"] <= side["rps_max"]
            assert len(side["rounds"]) == report["rounds"]
            assert side["errors"] == 0
            cpu = side["cpu_us_per_request"]
            assert set(cpu) == {"target", "upstream", "load"}
            assert all(isinstance(v, float | int) for v in cpu.values())
            assert isinstance(side["upstream_calls_per_request"], float | int)


def test_each_ratio_is_computed_from_the_raw_figures(report: dict[str, Any]) -> None:
    s = report["scenarios"]
    expected = {
        ("read", "throughput_ratio"): _ratio(s["get"]["bff"]["rps"], s["get"]["forwarder"]["rps"]),
        ("write", "throughput_ratio"): _ratio(
            s["dismiss_real"]["bff"]["rps"], s["dismiss_real"]["forwarder"]["rps"]
        ),
        ("write", "p99_ratio"): _ratio(
            s["dismiss_real"]["bff"]["p99_ms"], s["dismiss_real"]["forwarder"]["p99_ms"]
        ),
        ("list1000", "cpu_ratio"): _ratio(
            s["list1000"]["bff"]["cpu_us_per_request"]["target"],
            s["list1000"]["forwarder"]["cpu_us_per_request"]["target"],
        ),
        ("ceiling", "read_ratio"): _ratio(s["get"]["bff"]["rps"], s["get"]["ceiling"]["rps"]),
        ("ceiling", "cpu_ratio"): _ratio(
            s["get"]["bff"]["cpu_us_per_request"]["target"],
            s["get"]["ceiling"]["cpu_us_per_request"]["target"],
        ),
        ("ceiling", "bytecode_ratio"): _ratio(
            report["ceiling"]["bytecodes"]["bff"], report["ceiling"]["bytecodes"]["ceiling"]
        ),
    }
    for (group, key), value in expected.items():
        assert isinstance(report[group][key], float)
        assert report[group][key] == value, f"{group}.{key}"
    assert (
        report["read"]["upstream_calls_per_request"]
        == (s["get"]["bff"]["upstream_calls_per_request"])
    )
    assert (
        report["write"]["upstream_calls_per_request"]
        == (s["dismiss_real"]["bff"]["upstream_calls_per_request"])
    )
    assert report["read"]["cpu_ratio"] == _ratio(
        s["get"]["bff"]["cpu_us_per_request"]["target"],
        s["get"]["forwarder"]["cpu_us_per_request"]["target"],
    )
    # The spread: each round's ratio from that round's own figures.
    for group, scenario in (("read", "get"), ("write", "dismiss_real")):
        pairs = zip(s[scenario]["bff"]["rounds"], s[scenario]["forwarder"]["rounds"], strict=True)
        per_round = [_ratio(b["rps"], f["rps"]) for b, f in pairs]
        assert report[group]["throughput_ratio_rounds"] == per_round
        assert len(per_round) == report["rounds"]
    rounds = report["read"]["throughput_ratio_rounds"]
    assert report["read"]["throughput_ratio_min"] == min(rounds)
    assert report["read"]["throughput_ratio_max"] == max(rounds)
    # Medians over the rounds and their spread, from the rounds themselves: CPU per
    # request (the primary figure) and throughput.
    for sides in s.values():
        for side in sides.values():
            assert side["rps"] == _median([r["rps"] for r in side["rounds"]])
            cpu = [r["cpu_us_per_request"]["target"] for r in side["rounds"]]
            assert side["cpu_us_per_request"]["target"] == _median(cpu)
            assert (side["cpu_us_per_request_min"], side["cpu_us_per_request_max"]) == (
                min(cpu),
                max(cpu),
            )


def _median(values: list[float]) -> float:
    rates = sorted(values)
    middle = len(rates) // 2
    return round(rates[middle] if len(rates) % 2 else (rates[middle - 1] + rates[middle]) / 2, 3)


def test_fresh_dismisses_get_what_their_rounds_can_use(report: dict[str, Any]) -> None:
    """Each round is seeded for a rate measured before it (the side's idempotent dismiss,
    or a faster real one), bounded; the BFF holds one round's objects at a time."""
    from bff.bench.run import FRESH_MAX, FRESH_MAX_QUICK, FRESH_WARMUP, fresh_count

    sides = report["scenarios"]["dismiss_real"]
    idempotent = report["scenarios"]["dismiss_idempotent"]
    seeded = FRESH_WARMUP * len(sides)
    most = FRESH_WARMUP
    earlier = {s["warmup_rps"] for s in sides.values()}
    earlier |= {r["rps"] for s in sides.values() for r in s["rounds"]}
    for name, side in sides.items():
        idem = idempotent[name]["rounds"][-1]["rps"]
        for one in side["rounds"]:
            assert one["seeded_for_rps"] >= idem
            assert one["seeded_for_rps"] in earlier | {idem}
            assert one["paths"] == fresh_count(
                one["seeded_for_rps"], report["duration_s"], quick=report["quick"]
            )
            assert one["paths"] <= (FRESH_MAX_QUICK if report["quick"] else FRESH_MAX)
            seeded += one["paths"]
            most = max(most, one["paths"])
    assert report["rss_mb"]["fresh_objects_seeded"] == seeded
    assert report["rss_mb"]["fresh_objects_most_at_once"] == most


def _nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))], 3) if ordered else 0.0


def test_review_path_figures_come_from_their_raw_latencies(report: dict[str, Any]) -> None:
    steady = report["review"]["steady"]
    assert steady["rate_per_s"] == 200
    assert steady["seconds"] == 1
    assert steady["sent"] == 200
    assert steady["errors"] == 0  # every review was answered with the repair patch
    raw = steady["latencies_ms"]
    assert len(raw) == steady["sent"] - steady["errors"]
    assert all(isinstance(v, float | int) and v > 0 for v in raw)
    assert steady["p50_ms"] == _nearest_rank(raw, 0.5)
    assert steady["p99_ms"] == _nearest_rank(raw, 0.99)
    assert steady["target_p99_ms"] == 10
    assert steady["met"] is (steady["errors"] == 0 and steady["p99_ms"] <= 10)

    burst = report["review"]["burst"]
    assert burst["reviews"] == 20
    assert 1_700_000 < burst["review_bytes"] < 2_100_000
    assert len(burst["review_ms"]) == 20
    assert burst["review_p50_ms"] == _nearest_rank(burst["review_ms"], 0.5)
    assert burst["review_max_ms"] == max(burst["review_ms"])
    probes = burst["healthz_ms"]
    assert probes, "no /healthz probe ran during the burst"
    assert burst["healthz_p50_ms"] == _nearest_rank(probes, 0.5)
    assert burst["healthz_p99_ms"] == _nearest_rank(probes, 0.99)
    assert burst["target_healthz_p99_ms"] == 50
    assert burst["met"] is (
        burst["errors"] == 0 and burst["healthz_errors"] == 0 and burst["healthz_p99_ms"] <= 50
    )


def test_stream_fan_out_figures_come_from_their_raw_figures(report: dict[str, Any]) -> None:
    fan = report["streams"]
    assert fan["streams"] == 200  # --quick
    assert fan["opened"] == 200
    assert fan["refused"] == 0
    # Every stream got the one change (within the bench's bounded wait).
    assert fan["delivered"] == len(fan["delivery_ms"]) == 200
    assert fan["delivery_p50_ms"] == _nearest_rank(fan["delivery_ms"], 0.5)
    assert fan["delivery_p99_ms"] == _nearest_rank(fan["delivery_ms"], 0.99)
    assert fan["target_delivery_p99_ms"] == 250
    assert fan["delivery_met"] is (fan["delivered"] == 200 and fan["delivery_p99_ms"] <= 250)
    for key in ("rss_before_kb", "rss_open_kb", "rss_after_delivery_kb"):
        assert isinstance(fan[key], int), key
        assert fan[key] > 0, key
    assert fan["rss_per_stream_kb"] == round((fan["rss_open_kb"] - fan["rss_before_kb"]) / 200, 1)
    without, with_streams = fan["get_without_streams"], fan["get_with_streams"]
    for side in (without, with_streams):
        assert side["requests"] > 0
        assert side["p99_ms"] > 0
        assert side["errors"] == 0
    assert fan["get_p99_ratio"] == _ratio(with_streams["p99_ms"], without["p99_ms"])
    assert fan["target_get_p99_ratio"] == 1.5
    assert fan["get_met"] is (fan["get_p99_ratio"] <= 1.5)


def test_rss_figures(report: dict[str, Any]) -> None:
    rss = report["rss_mb"]
    for key in ("idle", "cached_1000", "peak", "mb_per_1000_objects", "forwarder_idle",
                "emulator_peak"):  # fmt: skip
        assert isinstance(rss[key], float | int), key
    assert rss["idle"] > 0
    assert rss["peak"] >= rss["cached_1000"]
    assert rss["mb_per_1000_objects"] == round(rss["cached_1000"] - rss["idle"], 1)


def test_bad_bench_flags_exit_2_with_one_line(tmp_path: Path) -> None:
    for args in (["--rounds", "1"], ["--duration", "0"], ["--kubeconfig", str(tmp_path / "no")],
                 ["--real", "--kubeconfig", __file__]):  # fmt: skip
        done = subprocess.run(
            [sys.executable, "-m", "bff", "bench", *args],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 2, args
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_the_bench_leaves_no_process_behind_when_killed() -> None:
    bench = subprocess.Popen(
        [sys.executable, "-m", "bff", "bench", "--quick", "--load-generator", "python"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert bench.stderr is not None
    try:
        for line in bench.stderr:  # printed once every service is up
            if line.startswith("load generator:"):
                break
        children = _children(bench.pid)
        assert len(children) >= 4  # upstream, BFF, forwarder, ceiling
    finally:
        bench.kill()
        bench.wait()
        bench.stderr.close()
    for _ in range(300):
        alive = [pid for pid in children if _running(pid)]
        if not alive:
            break
        time.sleep(0.1)
    assert alive == []


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_real_outside_a_source_checkout_says_so_in_one_line(tmp_path: Path) -> None:
    """An installed package (no tests/support beside it) refuses --real with one line, exit 2."""
    installed = tmp_path / "site"
    shutil.copytree(Path(bff.__file__).parent, installed / "bff")
    run_installed = (
        f"import sys; sys.path.insert(0, {str(installed)!r}); import runpy; "
        "runpy.run_module('bff', run_name='__main__')"
    )
    done = subprocess.run(
        [sys.executable, "-c", run_installed, "bench", "--real", "--quick"],
        capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "harvester-upgrade-bff: error: --real needs a source checkout of harvester-upgrade-bff "
        "(it starts the test harness's kube-apiserver and Steve from tests/support); "
        "--kubeconfig measures a running cluster"
    ]
