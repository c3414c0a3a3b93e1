"""The application factory.

``create_app(settings)`` builds the whole BFF: routes, middlewares, metrics,
and a cleanup context that opens the Kubernetes clients once for the app's
life and closes them after in-flight requests have finished.

The API is an application of its own (:func:`api_app`). Without ``--base-path``
it is the app served; with one, it is mounted there as a sub-application of an
app that holds the middlewares (so a path outside the base is answered in the
same JSON), the redirect from the bare base path to its page, and, once
started, the API's state (readiness first: the server turns it off before it
stops listening).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from bff import kube
from bff.access import AccessChecker
from bff.admission.guard import TrustedWriters
from bff.admission.resources import table_from
from bff.admission.tls import DEFAULT_CHECK_INTERVAL
from bff.admission.webhook import Guard, plain_listener, serving
from bff.api import page
from bff.api.routes import add_routes
from bff.auth import Authenticator, ReviewCache
from bff.cache import StreamBudget, UpgradeCache
from bff.identities import AuthMode
from bff.keys import (
    ACCESS,
    AUTH,
    CACHE,
    METRICS,
    READINESS,
    SERVICE,
    SETTINGS,
    STREAMS,
    WEBHOOK_LISTENER,
)
from bff.metrics import Metrics
from bff.middleware import middlewares
from bff.rancher import Clusters
from bff.readiness import Readiness
from bff.settings import CertSource, Settings, served_clusters, split_ref
from bff.upgrades import UpgradeService


def upstream_options(settings: Settings) -> kube.UpstreamOptions:
    rancher = None
    if settings.rancher_url is not None:
        served = served_clusters(settings) or frozenset()
        rancher = kube.RancherUpstream(
            settings.rancher_url, settings.rancher_ca_bundle, tuple(sorted(served))
        )
    return kube.UpstreamOptions(
        kubeconfig=settings.kubeconfig,
        context=settings.context,
        connect_timeout=settings.upstream_connect_timeout,
        read_timeout=settings.upstream_read_timeout,
        pool_size=settings.upstream_pool_size,
        rancher=rancher,
    )


def _clusters(settings: Settings) -> Clusters:
    """The clusters a request may name, and the one it goes to without naming any."""
    default = settings.default_cluster if settings.rancher_url is not None else None
    return Clusters(served_clusters(settings), default)


async def _upstream(app: web.Application) -> AsyncIterator[None]:
    """Open the clients; hand each part of the app only what it calls (never the clients)."""
    settings = app[SETTINGS]
    metrics = app[METRICS]
    impersonate = settings.auth_mode is AuthMode.IMPERSONATE
    async with kube.connect(
        upstream_options(settings), impersonate=impersonate, observer=metrics.observe_upstream
    ) as upstream:
        cache = None
        # Asked for cached reads, and for what a caller may do (the page's buttons).
        access = AccessChecker(
            upstream.access,
            ttl=min(settings.token_review_ttl, 10.0),
            on_review=metrics.access_reviews.inc,
        )
        app[ACCESS] = access
        if settings.read_cache and settings.rancher_url is None:  # never in Rancher mode
            cache = UpgradeCache(upstream.watcher, settings.namespace)
            app[CACHE] = cache
        app[SERVICE] = UpgradeService(
            upstream.gateway,
            max_attempts=settings.conflict_retries,
            cache=cache,
            access=access if cache is not None else None,
        )
        app[AUTH] = Authenticator(
            settings.auth_mode,
            reviewer=upstream.reviewer if impersonate else None,
            cache=ReviewCache(settings.token_review_ttl),
            allowed_origins=settings.allowed_origins,
            on_review=metrics.token_reviews.inc,
            clusters=_clusters(settings),
        )

        async def problem() -> str | None:
            # "is not None": an empty cache has len() 0, so it is falsy.
            return (
                cache.problem() if cache is not None else None
            ) or await upstream.probe.problem()

        app[READINESS] = Readiness(problem)
        if cache is None:
            yield
            return
        cache.start()
        try:
            yield
        finally:
            await cache.stop()


async def _webhook(app: web.Application) -> AsyncIterator[None]:
    """The admission webhook on its own HTTPS port, for as long as the app serves."""
    settings = app[SETTINGS]
    if settings.webhook_port is None:
        yield
        return
    if settings.webhook_cert_source is CertSource.SELF:
        async with kube.keeping_webhook_certificate(
            upstream_options(settings), certificate_options(settings)
        ) as keeper:
            # The pair is reloaded when the keeper swaps it: look as often as it does.
            interval = min(DEFAULT_CHECK_INTERVAL, settings.webhook_cert_check_interval)
            async with _guarding(app, keeper.cert_file, keeper.key_file, interval):
                yield
        return
    cert, key = settings.webhook_tls_cert, settings.webhook_tls_key
    if not cert or not key:
        yield
        return
    async with _guarding(app, cert, key, DEFAULT_CHECK_INTERVAL):
        yield


def certificate_options(settings: Settings) -> kube.CertificateOptions:
    assert settings.webhook_cert_secret
    assert settings.webhook_service
    assert settings.webhook_configuration
    secret_namespace, secret_name = split_ref(settings.webhook_cert_secret)
    service_namespace, service_name = split_ref(settings.webhook_service)
    return kube.CertificateOptions(
        secret_namespace=secret_namespace,
        secret_name=secret_name,
        service_namespace=service_namespace,
        service_name=service_name,
        configuration=settings.webhook_configuration,
        check_interval=settings.webhook_cert_check_interval,
    )


@asynccontextmanager
async def _guarding(
    app: web.Application, cert: str, key: str, check_interval: float
) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    metrics = app[METRICS]
    assert settings.webhook_port is not None
    guard = Guard(
        TrustedWriters.parse(settings.trusted_writers),
        table_from(settings.guard_resources),
        on_restore=lambda resource, reason: metrics.status_restores.labels(
            resource, str(reason)
        ).inc(),
    )
    async with serving(
        guard,
        host=settings.host,
        port=settings.webhook_port,
        cert=cert,
        key=key,
        check_interval=check_interval,
        listen=app.get(WEBHOOK_LISTENER, plain_listener),  # serve's is bounded
    ):
        yield


async def _not_ready(app: web.Application) -> None:
    # on_shutdown runs before in-flight requests are awaited: stop claiming readiness first.
    readiness = app.get(READINESS)
    if readiness is not None:
        readiness.shutting_down = True
    cache = app.get(CACHE)
    if cache is not None:
        cache.close_subscribers()  # live-update streams end now, not at the shutdown timeout


#: The API's state that the served app exposes too, once the API has started.
SHARED = (READINESS, CACHE, SERVICE, AUTH)


def api_app(app: web.Application, settings: Settings, metrics: Metrics) -> web.Application:
    """``app`` serving the API: its settings, metrics, upstream clients and routes."""
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app[STREAMS] = StreamBudget(settings.max_streams, settings.max_streams_per_caller)
    app.cleanup_ctx.append(_upstream)
    app.on_shutdown.append(_not_ready)
    add_routes(app)
    return app


def create_app(settings: Settings) -> web.Application:
    metrics = Metrics()
    bound = middlewares(
        trusted_proxies=settings.trusted_proxies,
        allowed_origins=settings.allowed_origins,
        metrics_to=metrics,
    )
    app = web.Application(middlewares=bound, client_max_size=settings.max_body_bytes)
    base = settings.base_path
    if not base:
        api_app(app, settings, metrics)
        # The webhook belongs to the served app: serve's listener bounds are set on it.
        app.cleanup_ctx.append(_webhook)
        return app
    app[SETTINGS] = settings
    app[METRICS] = metrics
    api = api_app(web.Application(), settings, metrics)
    # One stream budget, which serve bounds on the served app before it starts.
    app[STREAMS] = api[STREAMS]
    app.cleanup_ctx.append(_webhook)
    # Before the mount: for the bare base path, the first resource registered answers.
    app.router.add_get(base, page.to_index, allow_head=False)
    app.add_subapp(base, api)

    async def share(app: web.Application) -> None:
        # Runs after the API's own startup (add_subapp registered that first).
        for key in SHARED:
            if key in api:
                app[key] = api[key]  # type: ignore[misc]

    app.on_startup.append(share)
    return app
