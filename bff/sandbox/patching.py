"""The two patch types a custom resource accepts: JSON merge patch and JSON patch.

``apply_merge_patch`` is RFC 7396's ``MergePatch`` pseudo-code, on plain JSON values;
``create_merge_patch`` computes a patch that turns one document into another, which
tests use to check the round trip. ``apply_json_patch`` is RFC 6902 through
``jsonpatch``, one operation at a time; a failed operation is the generic 422
kube-apiserver v1.36 answers, which does not say which operation failed.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch

from bff.sandbox.resource import JSON
from bff.sandbox.status import StatusError

__all__ = ["apply_json_patch", "apply_merge_patch", "create_merge_patch"]


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """Return ``target`` with ``patch`` applied; neither argument is modified.

    - A patch that is not an object replaces the target wholesale.
    - In an object patch, ``null`` removes a member, anything else merges recursively.
    - Nulls inside a value that is copied in (not merged) are removed too, as in RFC 7396
      section 2 (``MergePatch({}, value)`` drops null members at every depth).
    """
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result: dict[str, Any] = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


def create_merge_patch(original: Any, modified: Any) -> Any:
    """A merge patch that turns ``original`` into ``modified``.

    Only exact for documents without ``null`` values, which a merge patch cannot set.
    """
    if not isinstance(original, dict) or not isinstance(modified, dict):
        return copy.deepcopy(modified)
    patch: dict[str, Any] = {}
    for key in original:
        if key not in modified:
            patch[key] = None
    for key, value in modified.items():
        if key not in original:
            patch[key] = copy.deepcopy(value)
        elif original[key] != value or type(original[key]) is not type(value):
            if isinstance(original[key], dict) and isinstance(value, dict):
                patch[key] = create_merge_patch(original[key], value)
            else:
                patch[key] = copy.deepcopy(value)
    return patch


def apply_json_patch(live: JSON, patch: Any) -> Any:
    if not isinstance(patch, list) or not all(isinstance(op, dict) for op in patch):
        raise StatusError.bad_request(
            f"json: cannot unmarshal {type(patch).__name__} into Go value of type jsonpatch.Patch"
        )
    doc: Any = live
    for op in patch:
        if op.get("op") not in ("add", "remove", "replace", "move", "copy", "test"):
            raise StatusError.unprocessable()
        try:
            doc = jsonpatch.JsonPatch([op]).apply(doc)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException):
            raise StatusError.unprocessable() from None
    return doc
