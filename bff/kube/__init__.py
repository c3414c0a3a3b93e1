"""The only package that talks to the Kubernetes API (and, with the sandbox's
controller, imports its client).

It offers reads, and exactly one write: :meth:`gateways.UpgradeGateway.mark_read`,
a JSON merge patch that adds ``harvesterhci.io/read-message: "true"`` under a
``resourceVersion`` precondition. That promise is kept by :mod:`bff.kube.transport`,
the one door every request passes; the sibling modules build what goes through it:

* :mod:`~bff.kube.config`: where the clusters are (kubeconfig, in-cluster, Rancher);
* :mod:`~bff.kube.calls`: per-request credentials, timeouts, latency observation;
* :mod:`~bff.kube.failures`: the client's failures translated into :mod:`bff.errors`;
* :mod:`~bff.kube.gateways`: Upgrade reads and the one patch, per caller;
* :mod:`~bff.kube.probes`: readiness;
* :mod:`~bff.kube.reviewers`: TokenReview and access reviews;
* :mod:`~bff.kube.watcher`: the read cache's list and watch;
* :mod:`~bff.kube.webhook_certs`: ``--webhook-cert-source self``'s Secret and caBundle;
* :mod:`~bff.kube.upstream`: :func:`~bff.kube.upstream.connect`, which opens them all.

The names the rest of the product uses are re-exported here.
"""

from bff.kube.config import ClusterConfigNotFound, RancherUpstream, UpstreamOptions
from bff.kube.upstream import Upstream, connect
from bff.kube.webhook_certs import CertificateOptions, WebhookCertificateError
from bff.kube.webhook_certs import keeping as keeping_webhook_certificate

__all__ = [
    "CertificateOptions",
    "ClusterConfigNotFound",
    "RancherUpstream",
    "Upstream",
    "UpstreamOptions",
    "WebhookCertificateError",
    "connect",
    "keeping_webhook_certificate",
]
