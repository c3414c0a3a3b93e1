"""The benchmark runs end to end and measures what it says (no timing is asserted here)."""

from __future__ import annotations

from bff.bench import _run, _table


async def test_bench_measures_every_scenario_on_both_sides() -> None:
    pairs = await _run(total=20, concurrency=4, memory_requests=10)
    assert [p.scenario for p in pairs] == [
        "get one upgrade",
        "list upgrades",
        "dismiss, one write each",
        "whole-object PUT, one write each",
    ]
    for pair in pairs:
        for side in (pair.direct, pair.bff):
            assert side.requests == 20
            assert side.errors == 0
            assert side.heap_peak_kib > 0
        assert pair.latency_ratio > 0
        assert pair.throughput_ratio > 0
    assert "ratio" in _table(pairs)
