"""Prometheus metrics, one registry per app.

Labels are bounded by construction: client version, route template, action,
status code or class, method (the few the BFF serves, else ``other``), upstream
verb, ignored-field category. Never an object name, a raw path, a user or a token.

The registry also carries the process, platform and garbage-collector collectors
(``process_*``, ``python_info``, ``python_gc_*``) and
``harvester_upgrade_bff_build_info``; no series has a ``_created`` sample
(prometheus_client's ``disable_created_metrics``, called once when the first
registry is made: it is a process-wide switch, and no caller wants them).
"""

from __future__ import annotations

import json
import platform
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from importlib import metadata
from typing import Any

import prometheus_client
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from bff import __version__

#: Methods that get a label value of their own; anything else is ``other`` (bounded).
METHODS = frozenset({"GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS"})
#: Status classes by the hundreds digit: five values whatever the code.
_STATUS_CLASSES = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}
#: Request latency buckets: the BFF answers reads from its cache in a millisecond or two,
#: writes after one or two upstream round trips; live-update streams end in +Inf.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
#: Requests served that :meth:`Metrics.served` keeps before counting them in (a scrape
#: counts them in at any number).
SETTLE_AT = 1024


def revision() -> str:
    """The source revision installed: pip records it for an install from a VCS URL."""
    try:
        text = metadata.distribution("harvester-upgrade-bff").read_text("direct_url.json")
        commit = json.loads(text or "{}").get("vcs_info", {}).get("commit_id")
    except (metadata.PackageNotFoundError, ValueError, AttributeError):
        commit = None
    return str(commit)[:40] if commit else "unknown"


def status_class(status: int) -> str:
    return _STATUS_CLASSES.get(status // 100, "other")


class LoopCounter(Collector):
    """A labelled counter kept in plain numbers, for the serving loop's hot path.

    A prometheus_client child takes a lock on every update, because the registry is
    shared with the webhook's thread. Series counted only on the serving loop, and
    scraped there (``/metrics`` is served on it), need none: one dict update per
    request. Label values are given in ``labels``' order, each made text when
    scraped (so a status code may be counted as an int). Never call it from another
    thread.
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        labels: Sequence[str],
        before_collect: Callable[[], None] = lambda: None,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labels)
        #: Each series' count, in a one-item list a caller may keep and add to.
        self._counts: dict[tuple[object, ...], list[int]] = {}
        #: Run first when the series are read: counts still to add are added.
        self._before_collect = before_collect

    def inc(self, *values: object) -> None:
        self.cell(values)[0] += 1

    def cell(self, values: tuple[object, ...]) -> list[int]:
        """The series with these label values: a one-item list holding its count."""
        cell = self._counts.get(values)
        if cell is None:
            cell = self._counts[values] = [0]
        return cell

    def describe(self) -> Iterator[Metric]:
        yield CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self) -> Iterator[Metric]:
        self._before_collect()
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, (count,) in self._counts.items():
            family.add_metric([str(v) for v in values], count)
        yield family


class LoopHistogram(Collector):
    """A labelled histogram kept in plain numbers; the same rules as :class:`LoopCounter`.

    Each series is one list: the count in each bucket (the last is +Inf), then the sum.
    A value lands in the first bucket whose upper bound it does not exceed, as
    prometheus_client's would.
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        labels: Sequence[str],
        buckets: Sequence[float],
        before_collect: Callable[[], None] = lambda: None,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labels)
        self._before_collect = before_collect
        self.bounds = tuple(sorted(buckets))
        self._edges = [*(floatToGoString(b) for b in self.bounds), "+Inf"]  # type: ignore[no-untyped-call]
        self._series: dict[tuple[str, ...], list[float]] = {}

    def observe(self, values: tuple[str, ...], amount: float) -> None:
        row = self.row(values)
        row[bisect_left(self.bounds, amount)] += 1
        row[-1] += amount

    def row(self, values: tuple[str, ...]) -> list[float]:
        """The series with these label values (a caller may keep it and observe into it
        as :meth:`observe` does)."""
        row = self._series.get(values)
        if row is None:
            row = self._series[values] = [0] * (len(self.bounds) + 1) + [0.0]
        return row

    def describe(self) -> Iterator[Metric]:
        yield HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self) -> Iterator[Metric]:
        self._before_collect()
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, row in self._series.items():
            cumulative, buckets = 0.0, []
            for edge, count in zip(self._edges, row, strict=False):
                cumulative += count
                buckets.append((edge, cumulative))
            family.add_metric(list(values), buckets, row[-1])
        yield family


class Metrics:
    def __init__(self) -> None:
        # No ``*_created`` series: they double the counters' series, and Prometheus
        # ignores them in the text format. A process-wide switch, idempotent.
        prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self.build_info = Gauge(
            "harvester_upgrade_bff_build_info",
            "Always 1: the BFF's version, source revision and Python version as labels.",
            ["version", "revision", "python"],
            registry=r,
        )
        self.build_info.labels(__version__, revision(), platform.python_version()).set(1)
        # The API port's per-request series: counted on the serving loop only.
        self.request_duration = LoopHistogram(
            "bff_http_request_duration_seconds",
            "Time to answer an HTTP request on the API port, by route template (unmatched: "
            "no route), method (other: not one the BFF serves) and status class (2xx, 4xx, ...).",
            ["route", "method", "status_class"],
            DURATION_BUCKETS,
            before_collect=self.settle,
        )
        self.requests = LoopCounter(
            "bff_http_requests",
            "HTTP requests served, by client version, route template, action and status.",
            ["client_version", "route", "action", "status"],
            before_collect=self.settle,
        )
        r.register(self.request_duration)
        r.register(self.requests)
        self.in_flight = Gauge(
            "bff_http_requests_in_flight", "HTTP requests being served now.", registry=r
        )
        self.upstream_latency = Histogram(
            "bff_upstream_request_duration_seconds",
            "Latency of requests to the Kubernetes API, by verb.",
            ["verb"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.upstream_errors = Counter(
            "bff_upstream_errors",
            "Failed requests to the Kubernetes API, by HTTP status (0: no answer).",
            ["status"],
            registry=r,
        )
        self.status_wipes_prevented = Counter(
            "bff_status_wipes_prevented",
            "Client PUT bodies that would have wiped or regressed .status if forwarded.",
            registry=r,
        )
        self.status_restores = Counter(
            "bff_status_restores",
            "Admission webhook: values an untrusted write would have changed, put back, by "
            "guarded resource (ippools.loadbalancer.harvesterhci.io, ...) and reason "
            "(status_removed, status_changed, status_added, finalizers_dropped, "
            "owner_references_dropped, deletion_changed). Dry runs are not counted.",
            ["resource", "reason"],
            registry=r,
        )
        self.ignored_fields = Counter(
            "bff_ignored_fields",
            "Request body fields ignored, by category (status, spec, labels, ...).",
            ["category"],
            registry=r,
        )
        self.writes = Counter(
            "bff_writes",
            "Write requests: performed (one label patch sent) or skipped (idempotent, no write).",
            ["result"],
            registry=r,
        )
        self.conflict_retries = Counter(
            "bff_conflict_retries",
            "409 answers from the resourceVersion precondition that were re-read and retried.",
            registry=r,
        )
        self.token_reviews = LoopCounter(
            "bff_token_reviews",
            "Impersonate mode: TokenReviews by result (hit: served from cache).",
            ["result"],
        )
        self.access_reviews = LoopCounter(
            "bff_access_reviews",
            "Access reviews for reads from the cache and the page's access question, by result "
            "(hit: a reused answer).",
            ["result"],
        )
        r.register(self.token_reviews)
        r.register(self.access_reviews)

        #: Label children by label values: ``labels()`` costs more than the count itself.
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}
        #: Each served request's two series, by its labels.
        self._served: dict[tuple[object, ...], tuple[list[int], list[float]]] = {}
        self._bounds = self.request_duration.bounds
        #: Requests served and not yet counted in: their labels and seconds.
        self._unsettled: list[tuple[object, str, object, str, int, float]] = []

    def count(self, metric: Counter, *labels: str) -> None:
        """Add one to ``metric`` with these label values (their child looked up once)."""
        key = (metric, labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        child.inc()

    def served(
        self, version: object, route: str, action: object, method: str, status: int,
        seconds: float,
    ) -> None:  # fmt: skip
        """One request served on the API port: counted by client version, route, action
        and status, and timed by route, method (a known one, else ``other``) and status
        class. Every label is bounded, so the series found for them are kept.

        Kept as it is and counted in when the series are next read (a scrape), or once
        :data:`SETTLE_AT` wait: counting a few hundred at once, in one loop, costs a
        fraction of counting each as it is served (the most frequent request there is
        spends a twentieth of its time here otherwise).
        """
        unsettled = self._unsettled
        unsettled.append((version, route, action, method, status, seconds))
        if len(unsettled) >= SETTLE_AT:
            self.settle()

    def settle(self) -> None:
        """Count in the requests served since the last time (see :meth:`served`)."""
        unsettled, self._unsettled = self._unsettled, []
        served, bounds = self._served, self._bounds
        for version, route, action, method, status, seconds in unsettled:
            if method not in METHODS:
                method = "other"
            key = (version, route, action, method, status)
            series = served.get(key)
            if series is None:
                series = served[key] = (
                    self.requests.cell((version, route, action, status)),
                    self.request_duration.row((route, method, status_class(status))),
                )
            count, row = series
            count[0] += 1
            row[bisect_left(bounds, seconds)] += 1
            row[-1] += seconds

    def observe_upstream(self, verb: str, seconds: float, status: int) -> None:
        self.upstream_latency.labels(verb).observe(seconds)
        if not 200 <= status < 300:
            self.upstream_errors.labels(str(status)).inc()
