"""Steve's shapes: what the dashboard expects a resource and a collection to look like."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bff.model import STEVE_TYPE
from bff.patches import JSONObject, metadata


@dataclass(frozen=True)
class Family:
    """A family of routes one client speaks: where its links point, whether it has actions."""

    client_version: str
    #: URL of the collection, e.g. ``/api/v1.0.5/upgrades`` or a Steve path.
    collection_url: str
    actions: bool


def resource(obj: JSONObject, family: Family) -> dict[str, object]:
    meta = metadata(obj)
    namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
    self_url = f"{family.collection_url}/{namespace}/{name}"
    shaped: dict[str, object] = dict(obj)
    shaped["id"] = f"{namespace}/{name}"
    shaped["type"] = STEVE_TYPE
    shaped["links"] = {"self": self_url, "update": self_url}
    if family.actions:
        shaped["actions"] = {
            "dismiss": f"{self_url}?action=dismiss",
            "cancel": f"{self_url}?action=cancel",
        }
    return shaped


def collection(listed: Mapping[str, object], family: Family, self_url: str) -> dict[str, object]:
    items = listed.get("items")
    data = [
        resource(item, family)
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
