"""``bench --real --quick`` runs end to end on the real stack and its JSON holds what it promises.

The real kube-apiserver (and real Steve, where the Harvester referee can be built)
from tests/support, as ``bench --real`` starts them. No figure's value is checked:
the keys, and that every ratio (against the API server and against Steve, per
round, CPU per request) is the one the raw figures give. The Python load
generator and rounds of one second keep it short.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from tests.support import harvester, real_apiserver

pytestmark = pytest.mark.skipif(
    real_apiserver.unavailable_reason() is not None,
    reason=str(real_apiserver.unavailable_reason()),
)

SCENARIOS = {"get": "read", "list3": "list3", "list1000": "list1000"}


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    value = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    return round(value, 3)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench-real") / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "bff", "bench", "--real", "--quick", "--duration", "1",
         "--load-generator", "python", "--connections", "8", "--json", str(out)],
        capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "target read_vs_direct >= 3" in done.stdout
    figures: dict[str, Any] = json.loads(out.read_text())
    return figures


def test_every_side_read_the_same_objects(report: dict[str, Any]) -> None:
    assert report["mode"] == "real"
    assert report["caller"] == "sandbox-viewer"
    steve = harvester.unavailable_reason() is None
    sides = {"direct", "bff"} | ({"steve"} if steve else set())
    assert set(report["scenarios"]) == set(SCENARIOS)
    for name, scenario in report["scenarios"].items():
        assert set(scenario) == sides, name
        for side, figures in scenario.items():
            assert len(figures["rounds"]) == report["rounds"], (name, side)
            # Every side answered the caller (a refusal would have stopped the bench);
            # a peer may time out under load, which the figures show: the BFF may not.
            assert figures["answer_bytes"] > 0
            if side == "bff":
                assert figures["errors"] == 0, name
            for measured in figures["rounds"]:
                assert measured["requests"] > 0 or side != "bff", name
                assert set(measured["cpu_us_per_request"]) == {"target", "upstream", "load"}
    assert report["scenarios"]["list1000"]["bff"]["connections"] <= 8


def test_each_ratio_is_computed_from_the_raw_figures(report: dict[str, Any]) -> None:
    for name, group in SCENARIOS.items():
        scenario = report["scenarios"][name]
        for side, figures in scenario.items():
            assert figures["rps"] == _median([r["rps"] for r in figures["rounds"]])
            cpu = {k: _median([r["cpu_us_per_request"][k] for r in figures["rounds"]])
                   for k in ("target", "upstream", "load")}  # fmt: skip
            assert figures["cpu_us_per_request"] == cpu, (name, side)
            assert figures["cpu_us_per_request_total"] == round(cpu["target"] + cpu["upstream"], 3)
        bff = scenario["bff"]
        for other in ("direct", "steve"):
            compared = report["real"][group][other]
            if other not in scenario:
                assert compared is None
                assert report["real"][group][f"vs_{other}"] is None
                continue
            them = scenario[other]
            assert compared["throughput_ratio"] == _ratio(bff["rps"], them["rps"])
            assert report["real"][group][f"vs_{other}"] == compared["throughput_ratio"]
            pairs = zip(bff["rounds"], them["rounds"], strict=True)
            rounds = [_ratio(b["rps"], t["rps"]) for b, t in pairs]
            assert compared["throughput_ratio_rounds"] == rounds
            assert compared["throughput_ratio_min"] == min(
                (r for r in rounds if r is not None), default=None
            )
            assert compared["cpu_ratio"] == _ratio(
                them["cpu_us_per_request_total"], bff["cpu_us_per_request_total"]
            )
            assert compared["p99_ratio"] == _ratio(bff["p99_ms"], them["p99_ms"])
    targets = report["real"]["targets"]
    for key, value in (("read_vs_direct", report["real"]["read"]["vs_direct"]),
                       ("read_vs_steve", report["real"]["read"]["vs_steve"]),
                       ("list1000_vs_steve", report["real"]["list1000"]["vs_steve"])):  # fmt: skip
        assert targets[key]["value"] == value
        assert targets[key]["met"] is (value is not None and value >= targets[key]["target"])
