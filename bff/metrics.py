"""Prometheus metrics, one registry per app.

Labels are bounded by construction: client version, route template, action,
status code, upstream verb, ignored-field category. Never an object name, a
user or a token.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
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
            "Access reviews for reads from the cache, by result (hit: a reused allow).",
            ["result"],
            registry=r,
        )

        #: Label children by label values: ``labels()`` costs more than the count itself.
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}

    def count(self, metric: Counter, *labels: str) -> None:
        """Add one to ``metric`` with these label values (their child looked up once)."""
        key = (metric, labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        child.inc()

    def observe_upstream(self, verb: str, seconds: float, status: int) -> None:
        self.upstream_latency.labels(verb).observe(seconds)
        if not 200 <= status < 300:
            self.upstream_errors.labels(str(status)).inc()
