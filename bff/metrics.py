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

from bff import __version__

#: Methods that get a label value of their own; anything else is ``other`` (bounded).
METHODS = frozenset({"GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS"})
#: Status classes by the hundreds digit: five values whatever the code.
_STATUS_CLASSES = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}
#: Request latency buckets: the BFF answers reads from its cache in a millisecond or two,
#: writes after one or two upstream round trips; live-update streams end in +Inf.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


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
        self.request_duration = Histogram(
            "bff_http_request_duration_seconds",
            "Time to answer an HTTP request on the API port, by route template (unmatched: "
            "no route), method (other: not one the BFF serves) and status class (2xx, 4xx, ...).",
            ["route", "method", "status_class"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.requests = Counter(
            "bff_http_requests",
            "HTTP requests served, by client version, route template, action and status.",
            ["client_version", "route", "action", "status"],
            registry=r,
        )
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
        self.token_reviews = Counter(
            "bff_token_reviews",
            "Impersonate mode: TokenReviews by result (hit: served from cache).",
            ["result"],
            registry=r,
        )
        self.access_reviews = Counter(
            "bff_access_reviews",
            "Access reviews for reads from the cache and the page's access question, by result "
            "(hit: a reused answer).",
            ["result"],
            registry=r,
        )

        #: Label children by label values: ``labels()`` costs more than the count itself.
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}
        #: The duration histogram's children by (route, method, status // 100).
        self._durations: dict[tuple[str, str, int], Any] = {}

    def count(self, metric: Counter, *labels: str) -> None:
        """Add one to ``metric`` with these label values (their child looked up once)."""
        key = (metric, labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        child.inc()

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """One request's duration; the label child is looked up once per label values."""
        key = (route, method, status // 100)
        child = self._durations.get(key)
        if child is None:
            # Keyed by the raw method: only the known ones are kept, so the dict stays bounded.
            known = method in METHODS
            child = self.request_duration.labels(
                route, method if known else "other", status_class(status)
            )
            if known:
                self._durations[key] = child
        child.observe(seconds)

    def observe_upstream(self, verb: str, seconds: float, status: int) -> None:
        self.upstream_latency.labels(verb).observe(seconds)
        if not 200 <= status < 300:
            self.upstream_errors.labels(str(status)).inc()
