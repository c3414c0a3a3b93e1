"""The Upgrade gateways: reads of Upgrades and the one label merge patch, per caller.

In Rancher mode, :class:`ClusterGateways` picks the gateway of the cluster a
caller's request names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bff import errors
from bff.identities import Caller, RancherCaller
from bff.kube.calls import Calls, JSONObject, credentials
from bff.kube.transport import MERGE_PATCH
from bff.patches import mark_read_patch
from bff.upgrade_resource import GROUP, PLURAL, VERSION


class UpgradeGateway(Calls):
    """Reads Upgrades, and writes the one label merge patch. Nothing else."""

    async def get(self, caller: Caller, namespace: str, name: str) -> JSONObject:
        obj: JSONObject = await self._call(
            "get",
            self._objects.get_namespaced_custom_object,
            GROUP, VERSION, namespace, PLURAL, name,
            **credentials(caller),
        )  # fmt: skip
        return obj

    async def list(self, caller: Caller, namespace: str, label_selector: str = "") -> JSONObject:
        kwargs: dict[str, Any] = credentials(caller)
        if label_selector:
            kwargs["label_selector"] = label_selector
        result: JSONObject = await self._call(
            "list",
            self._objects.list_namespaced_custom_object,
            GROUP, VERSION, namespace, PLURAL,
            **kwargs,
        )  # fmt: skip
        return result

    async def mark_read(
        self, caller: Caller, namespace: str, name: str, resource_version: str
    ) -> JSONObject:
        """The one write: label merge patch, conditional on ``resource_version``.

        The content type is named explicitly: for a dict body the client would
        otherwise choose JSON patch.
        """
        obj: JSONObject = await self._call(
            "patch",
            self._objects.patch_namespaced_custom_object,
            GROUP, VERSION, namespace, PLURAL, name,
            mark_read_patch(resource_version),
            _content_type=MERGE_PATCH,
            **credentials(caller),
        )  # fmt: skip
        return obj


class ClusterGateways:
    """Rancher mode: the gateway of the cluster a caller's request names.

    A caller that names no served cluster is refused before anything is sent.
    """

    def __init__(self, gateways: Mapping[str, UpgradeGateway]) -> None:
        self._gateways = dict(gateways)

    def _for(self, caller: Caller) -> UpgradeGateway:
        gateway = self._gateways.get(caller.cluster) if isinstance(caller, RancherCaller) else None
        if gateway is None:
            raise errors.UpstreamRequestRefused("a request for no served cluster")
        return gateway

    async def get(self, caller: Caller, namespace: str, name: str) -> JSONObject:
        return await self._for(caller).get(caller, namespace, name)

    async def list(self, caller: Caller, namespace: str, label_selector: str = "") -> JSONObject:
        return await self._for(caller).list(caller, namespace, label_selector)

    async def mark_read(
        self, caller: Caller, namespace: str, name: str, resource_version: str
    ) -> JSONObject:
        return await self._for(caller).mark_read(caller, namespace, name, resource_version)
