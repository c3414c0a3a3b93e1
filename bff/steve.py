"""Steve's shapes: the client versions, and the resource and collection each expects."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from bff.patches import JSONObject, metadata
from bff.upgrade_resource import STEVE_TYPE


@dataclass(frozen=True)
class ClientVersion:
    """A client generation the BFF speaks, and where one request's links point.

    ``name`` and ``actions`` are the generation's own; ``collection_url`` is set per
    request (:meth:`at`), because the base path and a Rancher cluster prefix change it.
    """

    name: str
    #: v1.0.5 clients call ``?action=dismiss|cancel``; v1.0.4 only PUTs.
    actions: bool
    #: URL of the collection, e.g. ``/api/v1.0.5/upgrades`` or a Steve path.
    collection_url: str = ""

    def at(self, collection_url: str) -> ClientVersion:
        return _at(self, collection_url)


@functools.lru_cache(maxsize=256)
def _at(version: ClientVersion, collection_url: str) -> ClientVersion:
    # Once per version and URL, not once per request (dataclasses.replace is not cheap).
    return replace(version, collection_url=collection_url)


V104 = ClientVersion("v1.0.4", actions=False)
V105 = ClientVersion("v1.0.5", actions=True)
VERSIONS = {v.name: v for v in (V104, V105)}
#: Steve paths are what v1.0.2 to v1.0.4 call; they behave exactly like v1.0.4.
STEVE = V104


def resource(obj: JSONObject, version: ClientVersion) -> dict[str, object]:
    meta = metadata(obj)
    namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
    self_url = f"{version.collection_url}/{namespace}/{name}"
    shaped: dict[str, object] = dict(obj)
    shaped["id"] = f"{namespace}/{name}"
    shaped["type"] = STEVE_TYPE
    shaped["links"] = {"self": self_url, "update": self_url}
    if version.actions:
        shaped["actions"] = {
            "dismiss": f"{self_url}?action=dismiss",
            "cancel": f"{self_url}?action=cancel",
        }
    return shaped


def collection(
    listed: Mapping[str, object], version: ClientVersion, self_url: str
) -> dict[str, object]:
    items = listed.get("items")
    data = [
        resource(item, version)
        for item in (items if isinstance(items, Iterable) else [])
        if isinstance(item, Mapping)
    ]
    return {
        "type": "collection",
        "resourceType": STEVE_TYPE,
        "links": {"self": self_url},
        "revision": str(metadata(listed).get("resourceVersion", "")),
        "count": len(data),
        "data": data,
    }
