"""What Harvester's dashboard extension v1.0.4 PUTs when it saves a resource: the one helper.

Until ``tests/support/shell.py`` (the real ``save()`` of ``@rancher/shell``, run in
Node) is on main, this applies the v1.0.4 model's ``cleanForSave`` rules to a real
object. v1.0.4's models do not override ``cleanForSave`` (v1.0.5 added
``cleanForSave(data) { return data; }`` to ``models/harvester.js``), so the save
goes through ``@rancher/shell``'s SteveModel ``cleanForSave``, which deletes
``status``, ``links`` and ``actions`` at the top and ``finalizers``, ``uid``,
``creationTimestamp``, ``generation``, ``managedFields`` and ``ownerReferences``
from ``metadata`` (the same list as ``contracts/consumer/src/extension.js``, whose
consumer test checks it sends exactly the captured v1.0.4 body). The edit the user
made in the form is applied before the save, as the form does.

To switch to the real save: replace the body of :func:`v104_saved_body` with
``shell.saved_body("v1.0.4", resource_type, steve_object, edit=edit)``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

JSON = dict[str, Any]

NEVER_SAVED_TOP = ("status", "links", "actions")
NEVER_SAVED_METADATA = (
    "finalizers",
    "uid",
    "creationTimestamp",
    "generation",
    "managedFields",
    "ownerReferences",
)


def v104_saved_body(
    resource_type: str, steve_object: JSON, edit: Callable[[JSON], None] | None = None
) -> JSON:
    """The body v1.0.4's ``save()`` PUTs for ``steve_object`` (of Steve type
    ``resource_type``, e.g. ``loadbalancer.harvesterhci.io.ippool``) after ``edit``."""
    del resource_type  # the same rules for every type in v1.0.4
    body = copy.deepcopy(steve_object)
    if edit is not None:
        edit(body)
    for key in NEVER_SAVED_TOP:
        body.pop(key, None)
    for key in NEVER_SAVED_METADATA:
        body.get("metadata", {}).pop(key, None)
    return body
