"""Rancher mode: which cluster a request is for, and whether the BFF serves it.

With ``--rancher-url`` the BFF sends each caller's request to Rancher's cluster
proxy, ``<rancher>/k8s/clusters/<id>/...``, with the caller's own Rancher token
(the ``R_SESS`` cookie's value or the same as a bearer token) and nothing of
its own. Rancher authenticates the token and forwards to that cluster as the
Rancher user. The id comes from the route ``/k8s/clusters/{cluster}/...`` or,
for paths without it, from ``--default-cluster``.

An id that is not served (``--cluster``) is refused here with 404, before the
credential is looked at and before any upstream call. Without ``--rancher-url``
the id still only builds links (every path reaches the kubeconfig's cluster),
but ``--cluster`` restricts it the same way.

The requests themselves go through the same transport as every other
(:mod:`bff.kube`): a cluster is just another base URL of the one guarded client.
"""

from __future__ import annotations

from collections.abc import Mapping

from bff import errors


class Clusters:
    """The cluster ids the BFF serves, and the one a request goes to."""

    def __init__(self, served: frozenset[str] | None, default: str | None) -> None:
        if default is not None and served is not None and default not in served:
            raise ValueError("the default cluster must be served")
        self._served = served
        self._default = default

    @property
    def rancher(self) -> bool:
        """Whether requests go to Rancher's proxy of the cluster (Rancher mode)."""
        return self._default is not None

    def upstream(self, match_info: Mapping[str, str]) -> str | None:
        """The cluster this request goes to in Rancher mode, else None.

        Raises :class:`errors.NotFound` (``UnknownCluster``) for an id not served.
        """
        cluster = match_info.get("cluster")
        if cluster is None:
            return self._default
        if self._served is not None and cluster not in self._served:
            # Answered before the credential is looked at: name no served cluster, or
            # anyone could list them.
            raise errors.NotFound(
                f"cluster {cluster[:63]!r} is not served here (see --cluster)",
                code=errors.Code.UNKNOWN_CLUSTER,
            )
        return cluster if self.rancher else None
