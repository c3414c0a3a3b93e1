"""Readiness: the API server (and Rancher, in Rancher mode) answer as the BFF needs."""

from __future__ import annotations

from typing import Any

from kubernetes_asyncio import client as k8s

from bff import errors
from bff.kube.calls import Calls, Observer
from bff.kube.config import UpstreamOptions
from bff.kube.failures import read_ok
from bff.upgrade_resource import GROUP, PLURAL, VERSION


class ClusterProbe(Calls):
    """Readiness: is the API reachable, and does it serve Upgrades? (BFF's own identity.)"""

    async def problem(self) -> str | None:
        try:
            resources = await self._call(
                "discovery", self._objects.get_api_resources, GROUP, VERSION
            )
        except errors.BffError as exc:
            return f"{GROUP}/{VERSION} discovery failed: {exc.message}"
        names = {r.name for r in (resources.resources or [])}
        if PLURAL not in names:
            return f"the API server does not serve {PLURAL}.{GROUP}/{VERSION}"
        return None


class RancherProbe(Calls):
    """Rancher-mode readiness, with no caller: the BFF's own API server answers ``/version``
    (its kubeconfig or service account), and Rancher answers ``/ping`` over verified TLS.

    The Upgrades live on the clusters behind Rancher, which the BFF reaches only with a
    caller's token, so the Upgrade API itself is not part of readiness here.
    """

    def __init__(
        self, own: Any, rancher: Any, url: str, options: UpstreamOptions, observer: Observer
    ) -> None:
        super().__init__(own, options, observer)
        self._rancher = rancher
        self._url = url

    async def problem(self) -> str | None:
        try:
            await self._call("discovery", k8s.VersionApi(self._api).get_code)
        except errors.BffError as exc:
            return f"the BFF's own Kubernetes API did not answer /version: {exc.message}"
        try:
            response = await self._call(
                "discovery",
                self._rancher.call_api,
                "/ping", "GET",
                auth_settings=[],
                _preload_content=False,
            )  # fmt: skip
            body = await read_ok(response)
        except errors.BffError as exc:
            reason = exc.message.replace("the Kubernetes API", "it")
            return f"Rancher {self._url}/ping: {reason}"
        if body.strip() != b"pong":
            return f"Rancher {self._url}/ping did not answer pong"
        return None
