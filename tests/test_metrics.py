"""bff.metrics: one registry per app, counts by bounded labels, and the upstream's
latency and failures, read back through prometheus_client's own exposition; the
process, platform and GC collectors, the build info, no ``_created`` series; the
request-duration histogram through a real BFF (route templates, never raw paths);
``serve --metrics-port``: /metrics on its own port and not on the API port;
the loop-only counter and histogram exposed exactly as prometheus_client's own."""

from __future__ import annotations

import platform
import re
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bff import __version__
from bff.metrics import DURATION_BUCKETS, LoopCounter, LoopHistogram, Metrics
from bff.sandbox.kubeconfig import write_kubeconfig
from tests.conftest import Stack
from tests.support.processes import Child, command


def _exposed(metrics: Metrics) -> str:
    return generate_latest(metrics.registry).decode()


#: On, between and beyond the bounds: the first and last buckets, a value on an edge, +Inf.
_AMOUNTS = (0.0, 0.0004, 0.001, 0.0011, 0.0025, 0.3, 1.0, 29.9, 30.0, 30.01, 1e6)


def test_the_loop_histogram_is_exposed_as_prometheus_clients_own() -> None:
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    real = Histogram("t_seconds", "doc", ["route", "method"], buckets=DURATION_BUCKETS,
                     registry=theirs)  # fmt: skip
    loop = LoopHistogram("t_seconds", "doc", ["route", "method"], DURATION_BUCKETS)
    ours.register(loop)
    for index, amount in enumerate(_AMOUNTS):
        labels = ("/a", "GET") if index % 3 else ("/b", "PUT")
        real.labels(*labels).observe(amount)
        loop.observe(labels, amount)
    expected = generate_latest(theirs).decode()
    # prometheus_client also writes the series' creation times; the BFF turns them off.
    expected = "\n".join(line for line in expected.split("\n") if "_created" not in line)
    assert generate_latest(ours).decode() == expected
    assert 't_seconds_bucket{le="0.001",method="GET",route="/a"}' in expected


def test_the_loop_counter_is_exposed_as_prometheus_clients_own() -> None:
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    real = Counter("t_requests", "doc", ["route", "status"], registry=theirs)
    loop = LoopCounter("t_requests", "doc", ["route", "status"])
    ours.register(loop)
    for status in (200, 200, 404, 200):
        real.labels("/a", str(status)).inc()
        loop.inc("/a", status)  # label values become text when scraped
    expected = "\n".join(
        line for line in generate_latest(theirs).decode().split("\n") if "_created" not in line
    )
    assert generate_latest(ours).decode() == expected
    assert 't_requests_total{route="/a",status="200"} 3.0' in expected


def test_a_served_request_is_counted_and_timed_as_the_two_series_would_be_apart() -> None:
    """``served`` keeps each request's two series found once; what it counts is what
    counting and observing each series on its own gives, label for label."""
    together, apart = Metrics(), Metrics()
    asked = [
        ("v1.0.5", "/api/{version}/upgrades/{namespace}/{name}", "get", "GET", 200, 0.0004),
        ("v1.0.5", "/api/{version}/upgrades/{namespace}/{name}", "get", "GET", 200, 0.003),
        ("v1.0.4", "/api/{version}/upgrades/{namespace}/{name}", "put", "PUT", 409, 0.02),
        ("none", "unmatched", "none", "BREW", 404, 0.001),
        ("none", "unmatched", "none", "GET", 404, 7.0),
    ]
    for version, route, action, method, status, seconds in asked:
        together.served(version, route, action, method, status, seconds)
        apart.requests.inc(version, route, action, status)
        known = method if method in ("GET", "PUT") else "other"
        apart.request_duration.observe((route, known, f"{status // 100}xx"), seconds)
    exposed = _exposed(together)
    assert _requests_series(exposed) == _requests_series(_exposed(apart))
    # 3 counted series (both 404s are one), 4 timed ones (each its buckets, +Inf, count
    # and sum), and the in-flight gauge.
    assert len(_requests_series(exposed)) == 3 + 4 * (len(DURATION_BUCKETS) + 3) + 1
    assert (
        'bff_http_requests_total{action="get",client_version="v1.0.5",'
        'route="/api/{version}/upgrades/{namespace}/{name}",status="200"} 2.0' in exposed
    )
    assert 'le="0.001",method="GET",route="/api/{version}/upgrades/{namespace}/{name}"' in exposed


def _requests_series(exposed: str) -> list[str]:
    return [line for line in exposed.splitlines() if line.startswith("bff_http_request")]


def test_each_app_counts_in_its_own_registry() -> None:
    one, other = Metrics(), Metrics()
    one.requests.inc("v1.0.5", "/api/{version}/upgrades", "list", "200")
    one.requests.inc("v1.0.5", "/api/{version}/upgrades", "list", "200")
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


def test_the_registry_has_the_process_platform_and_gc_collectors() -> None:
    names = {family.name for family in text_string_to_metric_families(_exposed(Metrics()))}
    assert {"process_resident_memory_bytes", "process_cpu_seconds", "process_open_fds"} <= names
    assert "python_info" in names
    assert "python_gc_objects_collected" in names


def test_build_info_is_one_with_version_revision_and_python() -> None:
    (family,) = [
        f
        for f in text_string_to_metric_families(_exposed(Metrics()))
        if f.name == "harvester_upgrade_bff_build_info"
    ]
    (sample,) = family.samples
    assert sample.value == 1
    assert sample.labels["version"] == __version__
    assert sample.labels["python"] == platform.python_version()
    assert sample.labels["revision"]  # "unknown" outside an install from a VCS URL


def test_the_exposition_has_no_created_series() -> None:
    metrics = Metrics()
    metrics.count(metrics.writes, "performed")
    metrics.observe_upstream("GET", 0.02, 500)
    metrics.served("none", "/healthz", "none", "GET", 200, 0.001)
    metrics.status_wipes_prevented.inc()
    text = _exposed(metrics)
    assert "bff_writes_total" in text  # counters are there, their creation times are not
    assert "_created" not in text


def test_request_duration_labels_are_bounded() -> None:
    metrics = Metrics()
    metrics.served("none", "unmatched", "none", "BREW", 418, 0.001)
    metrics.served("none", "unmatched", "none", "FROB", 404, 0.002)
    metrics.served("none", "/healthz", "none", "GET", 204, 0.003)
    text = _exposed(metrics)
    assert (
        'bff_http_request_duration_seconds_count{method="other",route="unmatched",'
        'status_class="4xx"} 2.0' in text
    )
    assert (
        'bff_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/healthz",'
        'status_class="2xx"} 1.0' in text
    )
    assert "BREW" not in text
    assert "FROB" not in text


async def test_requests_are_timed_by_route_template_method_and_status_class(
    emulator_stack: Stack,
) -> None:
    client = emulator_stack.client
    headers = {"Authorization": "Bearer sandbox-admin"}
    for name in ("hvst-upgrade-7xn6v", "no-such-upgrade"):
        await client.get(f"/api/v1.0.5/upgrades/harvester-system/{name}", headers=headers)
    await client.get("/no/such/route/abc123")
    await client.get("/healthz")
    text = await (await client.get("/metrics")).text()
    durations = {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "bff_http_request_duration_seconds"
        for sample in family.samples
        if sample.name.endswith("_count")
    }
    one = "/api/{version}/upgrades/{namespace}/{name}"
    assert durations[(("method", "GET"), ("route", one), ("status_class", "2xx"))] == 1
    assert durations[(("method", "GET"), ("route", one), ("status_class", "4xx"))] == 1
    assert durations[(("method", "GET"), ("route", "unmatched"), ("status_class", "4xx"))] == 1
    assert durations[(("method", "GET"), ("route", "/healthz"), ("status_class", "2xx"))] == 1
    assert "hvst-upgrade-7xn6v" not in text
    assert "abc123" not in text
    assert "_created" not in text


def _get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 (loopback)
            return answer.status, answer.headers["Content-Type"], answer.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.headers["Content-Type"], refused.read().decode()


@pytest.mark.parametrize("base_path", ["", "/under"])
def test_metrics_port_serves_metrics_and_the_api_port_does_not(
    tmp_path: Path, base_path: str
) -> None:
    # Nothing listens at the cluster's address: serve starts without reaching it.
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", "http://127.0.0.1:9", token="t")
    argv = command("serve", "--kubeconfig", str(kubeconfig), "--port", "0",
                   "--metrics-port", "0", "--base-path", base_path or "/")  # fmt: skip
    child = Child(argv, stderr=subprocess.STDOUT)
    try:
        metrics_url = child.read_until(r"metrics serving on (http://[\d.:]+/metrics)").group(1)
        api_url = child.read_until(r"serving on (http://[\d.:]+\S*)").group(1)
        assert _get(api_url + "/healthz")[0] == 200
        status, _, _ = _get(api_url + "/metrics")
        assert status == 404
        status, content_type, text = _get(metrics_url)
        assert status == 200
        assert content_type.startswith("text/plain; version=")
        assert "harvester_upgrade_bff_build_info{" in text
        # The healthz request above was timed on the API port and shows here.
        assert re.search(
            r'bff_http_request_duration_seconds_count\{[^}]*route="[^"]*/healthz"', text
        )
        assert _get(metrics_url.removesuffix("/metrics") + "/healthz")[0] == 404
    finally:
        assert child.stop() == 0


def test_served_requests_are_counted_in_once_settle_at_wait_without_a_scrape(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bff import metrics as module

    monkeypatch.setattr(module, "SETTLE_AT", 3)
    metrics = Metrics()
    route = "/api/{version}/upgrades/{namespace}/{name}"
    count = metrics.requests.cell(("v1.0.5", route, "get", 200))
    for _ in range(2):
        metrics.served("v1.0.5", route, "get", "GET", 200, 0.001)
        assert count == [0]  # kept, not counted yet
    metrics.served("v1.0.5", route, "get", "GET", 200, 0.001)
    assert count == [3]
    metrics.served("v1.0.5", route, "get", "GET", 200, 0.001)
    assert 'status="200"} 4.0' in _exposed(metrics)  # a scrape counts the rest in


@pytest.mark.parametrize("series", ["requests", "request_duration"])
def test_each_served_series_counts_in_what_waits_when_read_on_its_own(series: str) -> None:
    metrics = Metrics()
    metrics.served("v1.0.5", "/r", "get", "GET", 200, 0.001)
    (family,) = getattr(metrics, series).collect()
    counted = [s.value for s in family.samples if s.name.endswith(("_total", "_count"))]
    assert counted == [1]
