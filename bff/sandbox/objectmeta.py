"""``ObjectMeta`` validation: ``k8s.io/apimachinery/pkg/api/validation/objectmeta.go``.

``validate_metadata`` is ``ValidateObjectMetaAccessor`` for a namespaced resource whose
names are DNS subdomains; ``validate_metadata_update`` is
``ValidateObjectMetaAccessorUpdate``.
"""

from __future__ import annotations

from typing import Any

from bff.label_selectors import (
    dns1123_label_errors,
    dns1123_subdomain_errors,
    go_quote,
    label_key_errors,
    label_value_errors,
)
from bff.sandbox.resource import JSON
from bff.sandbox.status import FieldError, forbidden_field, invalid, required

__all__ = [
    "OBJECT_META_FIELDS",
    "TOTAL_ANNOTATION_SIZE_LIMIT",
    "validate_metadata",
    "validate_metadata_update",
]

OBJECT_META_FIELDS = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    }
)
TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024


def json_type(value: Any) -> str:
    """The JSON type name of a decoded value, as the validator's messages say it."""
    if value is None:
        return "null"
    return _JSON_TYPE_NAMES.get(type(value), "object")


_JSON_TYPE_NAMES = {
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
}


def _name_errors(name: str, prefix: bool) -> list[str]:
    # NameIsDNSSubdomain: a generateName may end in '-', which is masked before checking.
    if prefix and name.endswith("-"):
        name = name[:-1] + "a"
    return dns1123_subdomain_errors(name)


def _qualified_name_field_errors(value: str, path: str) -> list[FieldError]:
    return [invalid(path, value, m) for m in label_key_errors(value)]


def _string_map_errors(value: Any, path: str) -> list[FieldError]:
    if value is None:
        return []
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        return [
            FieldError(
                "FieldValueTypeInvalid",
                path,
                json_type(value),
                f"{path} in body must be a map of strings",
            )
        ]
    return []


def validate_metadata(meta: JSON) -> list[FieldError]:
    """``ValidateObjectMetaAccessor`` for a namespaced resource with DNS-subdomain names."""
    errs: list[FieldError] = []
    generate_name = meta.get("generateName") or ""
    name = meta.get("name") or ""
    if generate_name:
        errs.extend(
            invalid("metadata.generateName", generate_name, m)
            for m in _name_errors(generate_name, True)
        )
    if not name:
        errs.append(required("metadata.name", "name or generateName is required"))
    else:
        errs.extend(invalid("metadata.name", name, m) for m in _name_errors(name, False))
    namespace = meta.get("namespace") or ""
    if not namespace:
        errs.append(required("metadata.namespace"))
    else:
        errs.extend(
            invalid("metadata.namespace", namespace, m) for m in dns1123_label_errors(namespace)
        )
    generation = meta.get("generation", 0)
    if isinstance(generation, int) and generation < 0:
        errs.append(
            invalid("metadata.generation", generation, "must be greater than or equal to 0")
        )
    labels = meta.get("labels") or {}
    errs.extend(_string_map_errors(labels, "metadata.labels"))
    if isinstance(labels, dict):
        for key in sorted(labels):
            errs.extend(invalid("metadata.labels", key, m) for m in label_key_errors(key))
            value = labels[key]
            if isinstance(value, str):
                errs.extend(invalid("metadata.labels", value, m) for m in label_value_errors(value))
    annotations = meta.get("annotations") or {}
    errs.extend(_string_map_errors(annotations, "metadata.annotations"))
    if isinstance(annotations, dict):
        total = 0
        for key in sorted(annotations):
            # ValidateAnnotations checks the lower-cased key but reports the key as sent.
            errs.extend(
                invalid("metadata.annotations", key, m) for m in label_key_errors(key.lower())
            )
            total += len(key.encode()) + len(str(annotations[key]).encode())
        if total > TOTAL_ANNOTATION_SIZE_LIMIT:
            errs.append(
                FieldError(
                    "FieldValueTooLong",
                    "metadata.annotations",
                    "",
                    f"may not be more than {TOTAL_ANNOTATION_SIZE_LIMIT} bytes",
                )
            )
    finalizers = meta.get("finalizers") or []
    for i, finalizer in enumerate(finalizers if isinstance(finalizers, list) else []):
        if isinstance(finalizer, str):
            errs.extend(_qualified_name_field_errors(finalizer, f"metadata.finalizers[{i}]"))
    return errs


def validate_metadata_update(new: JSON, old: JSON) -> list[FieldError]:
    """``ValidateObjectMetaAccessorUpdate``: immutable fields and finalizers while deleting."""
    errs: list[FieldError] = []
    if old.get("deletionTimestamp"):
        added = [f for f in new.get("finalizers") or [] if f not in (old.get("finalizers") or [])]
        if added:
            errs.append(
                forbidden_field(
                    "metadata.finalizers",
                    "no new finalizers can be added if the object is being deleted, "
                    "found new finalizers []string{" + ", ".join(go_quote(f) for f in added) + "}",
                )
            )
    if int(new.get("generation", 0)) < int(old.get("generation", 0)):
        errs.append(
            invalid("metadata.generation", new.get("generation"), "must not be decremented")
        )
    for key in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp"):
        if new.get(key) != old.get(key):
            errs.append(invalid(f"metadata.{key}", new.get(key), "field is immutable"))
    if new.get("deletionGracePeriodSeconds") != old.get("deletionGracePeriodSeconds"):
        errs.append(
            invalid(
                "metadata.deletionGracePeriodSeconds",
                new.get("deletionGracePeriodSeconds"),
                "field is immutable",
            )
        )
    return errs
