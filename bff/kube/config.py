"""Where the clusters are: the BFF's own cluster configuration, and Rancher's.

``--kubeconfig``/``KUBECONFIG`` or the in-cluster service account, never anything
else; the callers' credential-less copy of it; a configuration per Rancher
cluster. No request is made here.
"""

from __future__ import annotations

import copy
import logging
import os
from dataclasses import dataclass
from typing import Any

import yaml
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config
from kubernetes_asyncio.config.config_exception import ConfigException

from bff import proxy

log = logging.getLogger("bff.kube")


class ClusterConfigNotFound(Exception):
    """No kubeconfig and not running in a cluster: ``serve`` cannot start."""


@dataclass(frozen=True)
class RancherUpstream:
    """Rancher's cluster proxy as the callers' upstream (Rancher mode)."""

    #: ``https://rancher.example.com``: the clusters are ``<url>/k8s/clusters/<id>``.
    url: str
    #: PEM CA bundle TLS to Rancher is verified against; None: the system's CAs.
    ca_bundle: str | None
    clusters: tuple[str, ...]


@dataclass(frozen=True)
class UpstreamOptions:
    kubeconfig: str | None = None
    context: str | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    pool_size: int = 32
    rancher: RancherUpstream | None = None


async def load_configuration(options: UpstreamOptions) -> Any:
    """Cluster configuration from ``--kubeconfig``/``KUBECONFIG``, else in-cluster.

    Never anything else: with neither, this raises :class:`ClusterConfigNotFound`.
    """
    configuration = k8s.Configuration()
    path = options.kubeconfig or os.environ.get("KUBECONFIG")
    try:
        if path:
            await k8s_config.load_kube_config(
                config_file=path,
                context=options.context,
                client_configuration=configuration,
                persist_config=False,
            )
        else:
            k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except (ConfigException, OSError) as exc:
        where = f"kubeconfig {path!r}" if path else "in-cluster service account"
        reason = " ".join(str(exc).split()).rstrip(". ")
        raise ClusterConfigNotFound(
            f"cannot load cluster configuration from {where}: {reason}"
        ) from exc
    except (yaml.YAMLError, ValueError, TypeError, AttributeError, KeyError) as exc:
        # A file that is not YAML, or YAML that is not a kubeconfig.
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise ClusterConfigNotFound(
            f"cannot load cluster configuration from kubeconfig {path!r}: "
            f"it is not a valid kubeconfig file{at}"
        ) from None
    configuration.connection_pool_maxsize = options.pool_size
    if not configuration.proxy:  # a kubeconfig proxy-url wins, as with kubectl
        configuration.proxy = proxy.for_server(configuration.host or "")
    if configuration.proxy:
        log.info("the Kubernetes API is reached through the proxy %s",
                 proxy.redacted(configuration.proxy))  # fmt: skip
    return configuration


def anonymous_copy(configuration: Any) -> Any:
    """The same cluster, CA and TLS settings, with every credential removed.

    Passthrough requests use this, so a request that somehow lacked the caller's
    token would reach the API server anonymous, never as the BFF. A client
    certificate must go too: the API server authenticates x509 before bearer
    tokens, so a kept certificate would silently win over the caller's token.
    """
    anon = copy.copy(configuration)
    anon.api_key = {}
    anon.api_key_prefix = {}
    anon.refresh_api_key_hook = None
    anon.cert_file = None
    anon.key_file = None
    anon.username = None
    anon.password = None
    return anon


def rancher_configuration(rancher: RancherUpstream, path: str, pool_size: int) -> Any:
    """A client configuration for ``<rancher url><path>``: TLS verified, no credentials."""
    configuration = k8s.Configuration()
    configuration.host = rancher.url + path
    configuration.ssl_ca_cert = rancher.ca_bundle
    configuration.verify_ssl = True
    configuration.api_key = {}
    configuration.connection_pool_maxsize = pool_size
    configuration.proxy = proxy.for_server(configuration.host)
    return configuration
