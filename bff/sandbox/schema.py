"""The CRD's structural schema: decoding, pruning, defaulting and type checks.

What ``apiextensions-apiserver`` does to a request object before the registry sees it:
the decoder's kind/apiVersion checks, pruning of unknown fields (reported as warnings, as
``fieldValidation=Warn`` does by default), structural defaulting, and the type and
``required`` checks of the ``openAPIV3Schema``, worded like kube-openapi's validator.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from bff import captured
from bff.label_selectors import go_quote
from bff.sandbox.objectmeta import OBJECT_META_FIELDS, json_type
from bff.sandbox.resource import API_VERSION, JSON, VERSION
from bff.sandbox.status import FieldError, StatusError, required

__all__ = [
    "SCHEMA",
    "apply_defaults",
    "decode",
    "json_type",
    "load_crd",
    "prune",
    "schema_errors",
]


def load_crd() -> JSON:
    return captured.crd()


def _schema() -> JSON:
    crd = load_crd()
    for version in crd["spec"]["versions"]:
        if version["name"] == VERSION:
            schema: JSON = version["schema"]["openAPIV3Schema"]
            return schema
    raise RuntimeError(f"the CRD does not serve {VERSION}")


SCHEMA = _schema()


def _type_ok(value: Any, expected: str) -> bool:
    if expected == "object":
        return isinstance(value, dict)
    if expected == "array":
        return isinstance(value, list)
    if expected == "string":
        return isinstance(value, str)
    if expected == "boolean":
        return isinstance(value, bool)
    if expected == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if expected == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return True


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def prune(obj: Any, schema: JSON, path: str, unknown: list[str]) -> Any:
    """Drop fields the schema does not know, and nulls of non-nullable fields.

    ``unknown`` collects the dropped paths, which the server reports as warnings
    (``fieldValidation=Warn`` is the default).
    """
    if isinstance(obj, dict) and ("properties" in schema or "additionalProperties" in schema):
        props: JSON = schema.get("properties", {})
        additional = schema.get("additionalProperties")
        out: JSON = {}
        for key, value in obj.items():
            sub: JSON | None
            if key in props:
                sub = props[key]
            elif isinstance(additional, dict):
                sub = additional
            else:
                sub = None
            if sub is None and not schema.get("x-kubernetes-preserve-unknown-fields"):
                unknown.append(_child(path, key))
                continue
            if value is None and sub is not None and not sub.get("nullable"):
                continue
            out[key] = prune(value, sub, _child(path, key), unknown) if sub else value
        return out
    if isinstance(obj, list) and isinstance(schema.get("items"), dict):
        return [prune(v, schema["items"], f"{path}[{i}]", unknown) for i, v in enumerate(obj)]
    return obj


def apply_defaults(obj: Any, schema: JSON) -> None:
    """Structural defaulting: fill ``default`` values of absent properties, in place."""
    if isinstance(obj, dict):
        for key, sub in schema.get("properties", {}).items():
            if key not in obj and "default" in sub:
                obj[key] = copy.deepcopy(sub["default"])
            if key in obj:
                apply_defaults(obj[key], sub)
        additional = schema.get("additionalProperties")
        if isinstance(additional, dict):
            for key, value in obj.items():
                if key not in schema.get("properties", {}):
                    apply_defaults(value, additional)
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for value in obj:
            apply_defaults(value, schema["items"])


def schema_errors(obj: Any, schema: JSON, path: str) -> list[FieldError]:
    """Type and ``required`` checks, worded like kube-openapi's validator."""
    errs: list[FieldError] = []
    expected = schema.get("type")
    if expected and not _type_ok(obj, expected):
        got = json_type(obj)
        return [
            FieldError(
                "FieldValueTypeInvalid",
                path,
                got,
                f"{path or 'body'} in body must be of type {expected}: {go_quote(got)}",
            )
        ]
    if isinstance(obj, dict):
        errs.extend(required(_child(path, r)) for r in schema.get("required", []) if r not in obj)
        props: JSON = schema.get("properties", {})
        additional = schema.get("additionalProperties")
        for key in sorted(obj):
            if path == "" and key == "metadata":
                continue
            sub = props.get(key, additional if isinstance(additional, dict) else None)
            if sub is not None:
                errs.extend(schema_errors(obj[key], sub, _child(path, key)))
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for i, value in enumerate(obj):
            errs.extend(schema_errors(value, schema["items"], f"{path}[{i}]"))
    return errs


def decode(body: Any) -> tuple[JSON, list[str]]:
    """Type-check, prune and default a request object; return it with warnings."""
    if not isinstance(body, dict):
        raise StatusError.bad_request(
            f"json: cannot unmarshal {json_type(body)} into Go value of type "
            "map[string]interface {}"
        )
    raw = json.dumps(body, separators=(",", ":"))
    if not body.get("kind"):
        raise StatusError.bad_request(f"Object 'Kind' is missing in '{raw}'")
    if not body.get("apiVersion"):
        raise StatusError.bad_request(f"Object 'apiVersion' is missing in '{raw}'")
    if body["apiVersion"] != API_VERSION:
        raise StatusError.bad_request(
            f"the API version in the data ({body['apiVersion']}) does not match the "
            f"expected API version ({API_VERSION})"
        )
    metadata = body.get("metadata", {})
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise StatusError.bad_request(
            f"json: cannot unmarshal {json_type(metadata)} into Go struct field "
            "ObjectMeta.metadata of type v1.ObjectMeta"
        )
    unknown: list[str] = []
    obj = prune(copy.deepcopy(body), SCHEMA, "", unknown)
    meta: JSON = {}
    for key, value in metadata.items():
        if key in OBJECT_META_FIELDS:
            if value is not None:
                meta[key] = copy.deepcopy(value)
        else:
            unknown.append(f"metadata.{key}")
    obj["metadata"] = meta
    apply_defaults(obj, SCHEMA)
    warnings = [f"unknown field {go_quote(path)}" for path in unknown]
    return obj, warnings
