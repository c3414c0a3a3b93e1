"""What Harvester's dashboard extension v1.0.4 PUTs when it saves a resource: the one helper.

The body comes from the extension's own code: :func:`tests.support.shell.saved_body`
runs v1.0.4's real ``save()`` (``@rancher/shell`` 3.0.1-rc.4 and the extension's
vendored model files, in Node) on the object, served the way Steve serves an item,
with the edit the user made in the form. v1.0.4's models do not override
``cleanForSave``, so ``@rancher/shell``'s SteveModel drops ``status``,
``metadata.finalizers`` and ``metadata.ownerReferences`` (among others) before the
whole-object PUT; the guard's tests send that body as it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bff.sandbox.legacy_save import steve_item
from tests.support import shell

JSON = dict[str, Any]


def form_edit(obj: Mapping[str, Any], label_value: str) -> tuple[str, ...]:
    """An edit the form makes: a label, and the description where the spec has one."""
    edits = [shell.label("example.com/edited", label_value)]
    spec = obj.get("spec")
    if isinstance(spec, Mapping) and "description" in spec:
        edits.append(shell.set_field("spec.description", "edited in the form"))
    return tuple(edits)


def v104_saved_body(resource_type: str, obj: Mapping[str, Any], edit: Sequence[str] = ()) -> JSON:
    """The body v1.0.4's real ``save()`` PUTs for ``obj`` (of ``resource_type``: a key
    or value of :data:`tests.support.shell.TYPES`) after ``edit`` (shell edits)."""
    shell.built_or_skip()
    steve_type = shell.TYPES.get(resource_type, resource_type)
    return shell.saved_body("v1.0.4", resource_type, steve_item(obj, steve_type), edit=edit)
