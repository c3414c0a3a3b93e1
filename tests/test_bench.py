"""``bench --quick`` runs end to end and its JSON holds what it promises.

No figure's value is checked (timings belong to the bench, not to tests): the
keys, their types, and that every ratio is the one its raw figures give.
The Python load generator is used so the test runs the same where wrk is not
installed, and rounds of one second (``--quick --duration 1``, the shortest the
bench accepts) keep the run to about a minute: every scenario, side and round
still runs, only for less time.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

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
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "LIST of 1,000: BFF / forwarder CPU" in done.stdout
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
    # Medians over the rounds, from the rounds themselves.
    for sides in s.values():
        for side in sides.values():
            rates = sorted(r["rps"] for r in side["rounds"])
            middle = len(rates) // 2
            median = rates[middle] if len(rates) % 2 else (rates[middle - 1] + rates[middle]) / 2
            assert side["rps"] == round(median, 3)


def test_rss_figures(report: dict[str, Any]) -> None:
    rss = report["rss_mb"]
    for key in ("idle", "cached_1000", "peak", "mb_per_1000_objects", "forwarder_idle"):
        assert isinstance(rss[key], float | int), key
    assert rss["idle"] > 0
    assert rss["peak"] >= rss["cached_1000"]
    assert rss["mb_per_1000_objects"] == round(rss["cached_1000"] - rss["idle"], 1)


def test_bad_bench_flags_exit_2_with_one_line(tmp_path: Path) -> None:
    for args in (["--rounds", "1"], ["--duration", "0"], ["--kubeconfig", str(tmp_path / "no")]):
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
