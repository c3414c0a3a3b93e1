"""Open the BFF's upstream once: its clients, gateways, probe, reviewers and watcher.

Every client is built by :func:`bff.kube.transport.api_client`, so every request
passes the one allowlist. In passthrough mode the callers' client carries no
credentials of its own; in Rancher mode each served cluster has a client for
``<rancher>/k8s/clusters/<id>`` with none either.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from bff import proxy
from bff.kube.calls import Observer, noop
from bff.kube.config import (
    RancherUpstream,
    UpstreamOptions,
    anonymous_copy,
    load_configuration,
    rancher_configuration,
)
from bff.kube.gateways import ClusterGateways, UpgradeGateway
from bff.kube.probes import ClusterProbe, RancherProbe
from bff.kube.reviewers import AccessReviewer, ClusterAccessReviewers, TokenReviewer
from bff.kube.transport import api_client
from bff.kube.watcher import UpgradeWatcher

log = logging.getLogger("bff.kube")


@dataclass(frozen=True)
class Upstream:
    gateway: UpgradeGateway | ClusterGateways
    probe: ClusterProbe | RancherProbe
    reviewer: TokenReviewer
    watcher: UpgradeWatcher
    #: Access reviews: for the read cache's reads, and for what a caller may do (in
    #: Rancher mode only the latter, through each served cluster's proxy).
    access: AccessReviewer | ClusterAccessReviewers


@asynccontextmanager
async def connect(
    options: UpstreamOptions,
    *,
    impersonate: bool,
    observer: Observer = noop,
) -> AsyncIterator[Upstream]:
    """Open the upstream clients once (per app) and close them on the way out."""
    own_config = await load_configuration(options)
    own = await api_client(own_config)
    if options.rancher is not None:
        try:
            async with _rancher(own, options, options.rancher, observer) as up:
                yield up
        finally:
            await own.close()
        return
    try:
        callers = own if impersonate else await api_client(anonymous_copy(own_config))
    except BaseException:
        await own.close()
        raise
    try:
        yield Upstream(
            gateway=UpgradeGateway(callers, options, observer),
            probe=ClusterProbe(own, options, observer),
            reviewer=TokenReviewer(own, options, observer),
            watcher=UpgradeWatcher(own, options, observer),
            access=AccessReviewer(callers, own, options, observer),
        )
    finally:
        if callers is not own:
            await callers.close()
        await own.close()


@asynccontextmanager
async def _rancher(
    own: Any,
    options: UpstreamOptions,
    rancher: RancherUpstream,
    observer: Observer,
) -> AsyncIterator[Upstream]:
    """Rancher mode: one credential-less client per served cluster, one for Rancher's /ping."""
    clients: list[Any] = []
    try:
        gateways = {}
        reviewers = {}
        for cluster in rancher.clusters:
            config = rancher_configuration(rancher, f"/k8s/clusters/{cluster}", options.pool_size)
            clients.append(await api_client(config))
            gateways[cluster] = UpgradeGateway(clients[-1], options, observer)
            reviewers[cluster] = AccessReviewer(clients[-1], own, options, observer)
        log.info("Rancher mode: callers' requests go to %s/k8s/clusters/<id> for %s",
                 rancher.url, ", ".join(rancher.clusters))  # fmt: skip
        ping = rancher_configuration(rancher, "", 2)
        if ping.proxy:
            log.info("Rancher is reached through the proxy %s", proxy.redacted(ping.proxy))
        clients.append(await api_client(ping))
        yield Upstream(
            gateway=ClusterGateways(gateways),
            probe=RancherProbe(own, clients[-1], rancher.url, options, observer),
            reviewer=TokenReviewer(own, options, observer),
            watcher=UpgradeWatcher(own, options, observer),
            access=ClusterAccessReviewers(reviewers),
        )
    finally:
        for client in clients:
            await client.close()
