"""What extension v1.0.2-v1.0.4's ``save()`` PUTs: the sandbox's stand-in for the real code.

The sandbox runs without Node, so the demo and the page build the v1.0.4 bodies
here. ``@rancher/shell``'s SteveModel ``cleanForSave`` (which v1.0.4's models do not
override) drops :data:`NEVER_SAVED` and :data:`NEVER_SAVED_METADATA` from the Steve
item before its whole-object PUT. ``tests/sandbox/test_legacy_save.py`` holds
:func:`v104_body` equal to what the extension's real ``save()`` sends, for every
resource the guard covers.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

JSON = dict[str, Any]

NEVER_SAVED = ("status", "links", "actions")
NEVER_SAVED_METADATA = (
    "finalizers",
    "uid",
    "creationTimestamp",
    "generation",
    "managedFields",
    "ownerReferences",
)


def steve_item(obj: Mapping[str, Any], steve_type: str) -> JSON:
    """``obj`` as Steve serves it to the dashboard: ``id``, ``type`` and the links its
    model saves to, beside the object's own fields."""
    meta = obj["metadata"]
    ident = f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]
    path = f"/v1/{steve_type}/{ident}"
    item: JSON = {"id": ident, "type": steve_type, "links": {"self": path, "update": path}}
    item.update(copy.deepcopy(dict(obj)))
    return item


def v104_body(item: Mapping[str, Any]) -> JSON:
    """The body v1.0.4's ``save()`` PUTs for the Steve ``item``, edited as the form left it."""
    body = {k: copy.deepcopy(v) for k, v in item.items() if k not in NEVER_SAVED}
    for key in NEVER_SAVED_METADATA:
        body["metadata"].pop(key, None)
    return body
