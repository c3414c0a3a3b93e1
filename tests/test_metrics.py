"""bff.metrics: one registry per app, counts by bounded labels, and the upstream's
latency and failures, read back through prometheus_client's own exposition."""

from __future__ import annotations

from prometheus_client import generate_latest

from bff.metrics import Metrics


def _exposed(metrics: Metrics) -> str:
    return generate_latest(metrics.registry).decode()


def test_each_app_counts_in_its_own_registry() -> None:
    one, other = Metrics(), Metrics()
    one.count(one.requests, "v1.0.5", "/api/{version}/upgrades", "list", "200")
    one.count(one.requests, "v1.0.5", "/api/{version}/upgrades", "list", "200")
    line = (
        'bff_http_requests_total{action="list",client_version="v1.0.5",'
        'route="/api/{version}/upgrades",status="200"} 2.0'
    )
    assert line in _exposed(one)
    assert "bff_http_requests_total{" not in _exposed(other)


def test_counts_with_other_labels_are_other_series() -> None:
    metrics = Metrics()
    metrics.count(metrics.writes, "performed")
    metrics.count(metrics.writes, "skipped")
    metrics.count(metrics.writes, "skipped")
    text = _exposed(metrics)
    assert 'bff_writes_total{result="performed"} 1.0' in text
    assert 'bff_writes_total{result="skipped"} 2.0' in text


def test_upstream_latency_by_verb_and_only_failures_counted() -> None:
    metrics = Metrics()
    metrics.observe_upstream("GET", 0.02, 200)
    metrics.observe_upstream("PATCH", 0.3, 409)
    metrics.observe_upstream("GET", 7.0, 0)  # no answer at all
    text = _exposed(metrics)
    assert 'bff_upstream_request_duration_seconds_count{verb="GET"} 2.0' in text
    assert 'bff_upstream_request_duration_seconds_bucket{le="0.025",verb="GET"} 1.0' in text
    assert 'bff_upstream_errors_total{status="409"} 1.0' in text
    assert 'bff_upstream_errors_total{status="0"} 1.0' in text
    assert 'bff_upstream_errors_total{status="200"}' not in text
