"""The emulator's storage and registry: what etcd plus the generic registry store do.

One :class:`Store` holds every Upgrade, a single increasing ``resourceVersion`` counter
(as etcd's revision), a bounded history of watch events, and the rules the real API
server applies on each write. The rules come from reading upstream source:

- ``registry/generic/registry/store.go`` (Create/Update/Delete, the optimistic lock,
  no-op updates, finalizers);
- ``registry/rest/create.go``, ``update.go`` (BeforeCreate/BeforeUpdate);
- ``apiextensions-apiserver/pkg/registry/customresource/strategy.go`` and ``validator.go``
  (generation, status kept without a status subresource, no unconditional update);
- ``apimachinery/pkg/api/validation/objectmeta.go`` (metadata validation);
- the CRD's structural schema for pruning, defaulting and type checks.

Errors are :class:`StatusError`, which carry the exact ``Status`` body to answer.
Nothing here knows HTTP; :mod:`bff.sandbox.emulator` maps it onto routes.
"""

from __future__ import annotations

import asyncio
import builtins
import copy
import json
import secrets
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import Any, ClassVar

import yaml

from bff.labels import (
    Selector,
    dns1123_label_errors,
    dns1123_subdomain_errors,
    go_quote,
    label_key_errors,
    label_value_errors,
)

__all__ = [
    "GROUP",
    "KIND",
    "PLURAL",
    "VERSION",
    "Event",
    "FieldError",
    "StatusError",
    "Store",
    "WatchSubscription",
]

GROUP = "harvesterhci.io"
VERSION = "v1beta1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "Upgrade"
LIST_KIND = "UpgradeList"
PLURAL = "upgrades"
QUALIFIED_RESOURCE = f"{PLURAL}.{GROUP}"
QUALIFIED_KIND = f"{KIND}.{GROUP}"

OPTIMISTIC_LOCK_MSG = (
    "the object has been modified; please apply your changes to the latest version and try again"
)
# k8s.io/apimachinery/pkg/util/rand: consonants and digits that cannot spell words.
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_MAX_GENERATED_NAME_LENGTH = 63 - 5
_OBJECT_META_FIELDS = frozenset(
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
_TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024

JSON = dict[str, Any]


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- Status errors ------------------------------------------------------------------------


class UInt64(int):
    """A Go ``uint64``: shown as ``%#v`` (``0x0``) in field errors, as store.go's is."""


@dataclass(frozen=True)
class FieldError:
    """One ``field.Error``: type is the CauseType (``FieldValueInvalid``...)."""

    type: str
    field: str
    bad_value: Any = None
    detail: str = ""

    _TYPE_TEXT: ClassVar[dict[str, str]] = {
        "FieldValueNotFound": "Not found",
        "FieldValueRequired": "Required value",
        "FieldValueDuplicate": "Duplicate value",
        "FieldValueInvalid": "Invalid value",
        "FieldValueNotSupported": "Unsupported value",
        "FieldValueForbidden": "Forbidden",
        "FieldValueTooLong": "Too long",
        "FieldValueTooMany": "Too many",
        "InternalError": "Internal error",
        "FieldValueTypeInvalid": "Invalid value",
    }

    def body(self) -> str:
        text = self._TYPE_TEXT[self.type]
        if self.type in (
            "FieldValueRequired",
            "FieldValueForbidden",
            "FieldValueTooLong",
            "InternalError",
        ):
            s = text
        else:
            s = f"{text}: {_go_value(self.bad_value)}"
        if self.detail:
            s += f": {self.detail}"
        return s

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}"


def _go_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, UInt64):
        return hex(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return go_quote(value)
    return json.dumps(value, separators=(",", ":"))


def invalid(field_path: str, value: Any, detail: str) -> FieldError:
    return FieldError("FieldValueInvalid", field_path, value, detail)


def required(field_path: str, detail: str = "") -> FieldError:
    return FieldError("FieldValueRequired", field_path, "", detail)


def forbidden_field(field_path: str, detail: str) -> FieldError:
    return FieldError("FieldValueForbidden", field_path, "", detail)


class StatusError(Exception):
    """An API error, carrying the ``Status`` object the server answers with."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: JSON | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    @property
    def status(self) -> JSON:
        body: JSON = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details:
            body["details"] = self.details
        body["code"] = self.code
        return body

    # Constructors named after k8s.io/apimachinery/pkg/api/errors.

    @classmethod
    def not_found(cls, name: str, resource: str = PLURAL, group: str = GROUP) -> StatusError:
        gr = f"{resource}.{group}" if group else resource
        return cls(
            404,
            "NotFound",
            f'{gr} "{name}" not found',
            {"name": name, "group": group, "kind": resource},
        )

    @classmethod
    def already_exists(cls, name: str) -> StatusError:
        return cls(
            409,
            "AlreadyExists",
            f'{QUALIFIED_RESOURCE} "{name}" already exists',
            {"name": name, "group": GROUP, "kind": PLURAL},
        )

    @classmethod
    def conflict(cls, name: str, why: str = OPTIMISTIC_LOCK_MSG) -> StatusError:
        return cls(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {QUALIFIED_RESOURCE} "{name}": {why}',
            {"name": name, "group": GROUP, "kind": PLURAL},
        )

    @classmethod
    def invalid(
        cls, name: str, errors: list[FieldError], group: str = GROUP, kind: str = KIND
    ) -> StatusError:
        unique: list[str] = []
        for e in errors:
            if str(e) not in unique:
                unique.append(str(e))
        qualified = f"{kind}.{group}" if group else kind
        if not unique:
            message = f"{qualified} {go_quote(name)} is invalid"
        elif len(unique) == 1:
            message = f"{qualified} {go_quote(name)} is invalid: {unique[0]}"
        else:
            message = f"{qualified} {go_quote(name)} is invalid: [{', '.join(unique)}]"
        details: JSON = {"name": name, "group": group, "kind": kind}
        details["causes"] = [
            {"reason": e.type, "message": e.body(), "field": e.field} for e in errors
        ]
        return cls(422, "Invalid", message, {k: v for k, v in details.items() if v != ""})

    @classmethod
    def bad_request(cls, message: str) -> StatusError:
        return cls(400, "BadRequest", message)

    @classmethod
    def unsupported_media_type(cls, accepted: Iterable[str]) -> StatusError:
        return cls(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: "
            + ", ".join(accepted),
        )

    @classmethod
    def expired(cls, message: str) -> StatusError:
        return cls(410, "Expired", message)

    @classmethod
    def method_not_allowed(cls) -> StatusError:
        return cls(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )

    @classmethod
    def unprocessable(cls, server_message: str) -> StatusError:
        """``NewGenericServerResponse(422, ...)``: what a failed JSON patch operation gets."""
        return cls(
            422,
            "Invalid",
            "the server rejected our request due to an error in our request",
            {"causes": [{"reason": "UnexpectedServerResponse", "message": server_message}]},
        )


# --- the CRD's structural schema -----------------------------------------------------------


def load_crd() -> JSON:
    text = (
        resources.files("bff.sandbox") / "seed" / "upgrades.harvesterhci.io.crd.yaml"
    ).read_text()
    crd: JSON = yaml.safe_load(text)
    return crd


def _schema() -> JSON:
    crd = load_crd()
    for version in crd["spec"]["versions"]:
        if version["name"] == VERSION:
            schema: JSON = version["schema"]["openAPIV3Schema"]
            return schema
    raise RuntimeError(f"the CRD does not serve {VERSION}")


_SCHEMA = _schema()

_JSON_TYPE_NAMES = {
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return _JSON_TYPE_NAMES.get(type(value), "object")


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
        got = _json_type(obj)
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


# --- metadata validation -------------------------------------------------------------------


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
                _json_type(value),
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
        if total > _TOTAL_ANNOTATION_SIZE_LIMIT:
            errs.append(
                FieldError(
                    "FieldValueTooLong",
                    "metadata.annotations",
                    "",
                    f"may not be more than {_TOTAL_ANNOTATION_SIZE_LIMIT} bytes",
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


# --- events and watchers -------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """One change: ``obj`` is the new state (the last state for DELETED)."""

    type: str
    resource_version: int
    obj: JSON
    prev: JSON | None = None


@dataclass(eq=False)
class WatchSubscription:
    """A queue of events for one watch; ``None`` in the queue means the server is stopping."""

    queue: asyncio.Queue[Event | None] = field(default_factory=asyncio.Queue)


# --- the store ----------------------------------------------------------------------------


def _key(obj: JSON) -> tuple[str, str]:
    meta = obj["metadata"]
    return meta["namespace"], meta["name"]


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def _without_rv(obj: JSON) -> JSON:
    out = copy.deepcopy(obj)
    out.get("metadata", {}).pop("resourceVersion", None)
    return out


class Store:
    """Objects, the revision counter, watch history and the write rules.

    ``get``/``list`` hand out deep copies, so tests can read freely. Every write bumps
    ``resource_version`` by one and records one event.
    """

    def __init__(self, history_limit: int = 1000, start_revision: int = 1000) -> None:
        self._objects: dict[tuple[str, str], JSON] = {}
        self._rv = start_revision
        self._history: deque[Event] = deque()
        self._history_limit = history_limit
        self._history_start = start_revision
        self._watchers: set[WatchSubscription] = set()

    # -- reads -------------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        return self._rv

    @property
    def history_start(self) -> int:
        """The oldest resourceVersion a watch may start from."""
        return self._history_start

    def get(self, namespace: str, name: str) -> JSON | None:
        obj = self._objects.get((namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    def list(
        self, namespace: str | None = None, selector: Selector | None = None
    ) -> builtins.list[JSON]:
        """Every object (in ``namespace`` if given) matching ``selector``, sorted by key."""
        out = []
        for key in sorted(self._objects):
            obj = self._objects[key]
            if namespace is not None and key[0] != namespace:
                continue
            if selector is not None and not selector.matches(obj["metadata"].get("labels") or {}):
                continue
            out.append(copy.deepcopy(obj))
        return out

    def events_since(self, resource_version: int) -> builtins.list[Event]:
        return [e for e in self._history if e.resource_version > resource_version]

    # -- watch plumbing ----------------------------------------------------------------

    def subscribe(self) -> WatchSubscription:
        sub = WatchSubscription()
        self._watchers.add(sub)
        return sub

    def unsubscribe(self, sub: WatchSubscription) -> None:
        self._watchers.discard(sub)

    def close_watchers(self) -> None:
        """End every open watch (server shutdown)."""
        for sub in list(self._watchers):
            sub.queue.put_nowait(None)
        self._watchers.clear()

    def compact(self) -> None:
        """Forget all history, as etcd compaction does: older watches get 410 Gone."""
        self._history.clear()
        self._history_start = self._rv

    def bump(self, namespace: str, name: str) -> JSON:
        """Rewrite an object unchanged under a new resourceVersion (tests: force a 409)."""
        obj = self._objects.get((namespace, name))
        if obj is None:
            raise StatusError.not_found(name)
        return self._write("MODIFIED", copy.deepcopy(obj), obj)

    def _write(self, kind: str, obj: JSON, prev: JSON | None) -> JSON:
        # Go's encoding/json writes map keys sorted; an unstructured object is all maps.
        obj = _sorted(obj)
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        key = _key(obj)
        if kind == "DELETED":
            self._objects.pop(key, None)
        else:
            self._objects[key] = obj
        event = Event(kind, self._rv, copy.deepcopy(obj), copy.deepcopy(prev) if prev else None)
        self._history.append(event)
        while len(self._history) > self._history_limit:
            dropped = self._history.popleft()
            self._history_start = dropped.resource_version
        for sub in list(self._watchers):
            sub.queue.put_nowait(event)
        return copy.deepcopy(obj)

    # -- decoding shared by create and update ---------------------------------------------

    @staticmethod
    def decode(body: Any) -> tuple[JSON, builtins.list[str]]:
        """Type-check, prune and default a request object; return it with warnings."""
        if not isinstance(body, dict):
            raise StatusError.bad_request(
                f"json: cannot unmarshal {_json_type(body)} into Go value of type "
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
                f"json: cannot unmarshal {_json_type(metadata)} into Go struct field "
                "ObjectMeta.metadata of type v1.ObjectMeta"
            )
        unknown: list[str] = []
        obj = prune(copy.deepcopy(body), _SCHEMA, "", unknown)
        meta: JSON = {}
        for key, value in metadata.items():
            if key in _OBJECT_META_FIELDS:
                if value is not None:
                    meta[key] = copy.deepcopy(value)
            else:
                unknown.append(f"metadata.{key}")
        obj["metadata"] = meta
        apply_defaults(obj, _SCHEMA)
        warnings = [f"unknown field {go_quote(path)}" for path in unknown]
        return obj, warnings

    @staticmethod
    def _validate(obj: JSON) -> builtins.list[FieldError]:
        errs: builtins.list[FieldError] = []
        if obj.get("kind") != KIND:
            errs.append(invalid("kind", obj.get("kind"), f"must be {KIND}"))
            return errs
        errs.extend(validate_metadata(obj["metadata"]))
        errs.extend(schema_errors(obj, _SCHEMA, ""))
        return errs

    # -- writes -------------------------------------------------------------------------

    def create(self, namespace: str, body: Any) -> tuple[JSON, builtins.list[str]]:
        """POST: returns the stored object and the warnings; raises StatusError."""
        obj, warnings = self.decode(body)
        meta = obj["metadata"]
        if meta.get("namespace") and meta["namespace"] != namespace:
            raise StatusError.bad_request(
                "the namespace of the provided object does not match the namespace sent on "
                "the request"
            )
        meta["namespace"] = namespace
        if meta.get("resourceVersion"):
            # etcd3 store: a plain error, so the client sees a 500.
            raise StatusError(
                500,
                "InternalError",
                "Internal error occurred: resourceVersion should not be set on objects to be "
                "created",
                {
                    "causes": [
                        {"message": "resourceVersion should not be set on objects to be created"}
                    ]
                },
            )
        # FillObjectMetaSystemFields, then BeforeCreate.
        meta["creationTimestamp"] = now_rfc3339()
        meta["uid"] = str(uuid.uuid4())
        generated = bool(meta.get("generateName")) and not meta.get("name")
        if generated:
            meta["name"] = self._generate_name(meta["generateName"])
        meta.pop("deletionTimestamp", None)
        meta.pop("deletionGracePeriodSeconds", None)
        meta["generation"] = 1
        meta.pop("managedFields", None)
        errs = self._validate(obj)
        if errs:
            raise StatusError.invalid(meta.get("name", ""), errs)
        if (namespace, meta["name"]) in self._objects:
            raise StatusError.already_exists(meta["name"])
        return self._write("ADDED", obj, None), warnings

    def _generate_name(self, base: str) -> str:
        if len(base) > _MAX_GENERATED_NAME_LENGTH:
            base = base[:_MAX_GENERATED_NAME_LENGTH]
        for _ in range(8):
            name = base + "".join(secrets.choice(_NAME_ALPHABET) for _ in range(5))
            if not any(k[1] == name for k in self._objects):
                return name
        return name

    def update(
        self,
        namespace: str,
        name: str,
        updated: Callable[[JSON], Any],
        *,
        uid_precondition: str | None = None,
    ) -> tuple[JSON, builtins.list[str], bool]:
        """The generic store's Update for PUT and PATCH.

        ``updated`` gets a copy of the live object and returns the new body (for PUT it
        ignores the live object; for PATCH it applies the patch). Returns the stored
        object, the warnings, and whether anything was written.
        """
        existing = self._objects.get((namespace, name))
        existing_uid = existing["metadata"].get("uid", "") if existing else ""
        if uid_precondition and uid_precondition != existing_uid:
            raise StatusError.conflict(
                name,
                f"Precondition failed: UID in precondition: {uid_precondition}, "
                f"UID in object meta: {existing_uid}",
            )
        if existing is None:
            raise StatusError.not_found(name)
        obj, warnings = self.decode(updated(copy.deepcopy(existing)))
        meta = obj["metadata"]
        new_rv_text = meta.get("resourceVersion", "")
        try:
            new_rv = int(new_rv_text) if new_rv_text else 0
            if new_rv < 0:
                raise ValueError
        except (TypeError, ValueError):
            # etcd3's storage parses the version with strconv.ParseUint and the error
            # surfaces unwrapped: kube-apiserver answers 500 with Go's own message.
            raise StatusError(
                500,
                "InternalError",
                f'strconv.ParseUint: parsing "{new_rv_text!s}": invalid syntax',
            ) from None
        if new_rv == 0:
            # customResourceStrategy.AllowUnconditionalUpdate() is false.
            raise StatusError.invalid(
                name,
                [invalid("metadata.resourceVersion", UInt64(0), "must be specified for an update")],
                kind=PLURAL,
            )
        if new_rv != int(existing["metadata"]["resourceVersion"]):
            raise StatusError.conflict(name)
        # BeforeUpdate
        if meta.get("namespace") and meta["namespace"] != namespace:
            raise StatusError.bad_request(
                "the namespace of the provided object does not match the namespace sent on "
                "the request"
            )
        old_meta = existing["metadata"]
        meta["generation"] = old_meta.get("generation", 0)
        meta.pop("managedFields", None)
        # customResourceStrategy.PrepareForUpdate: no status subresource, so status is
        # whatever the body says, and any change outside metadata bumps generation.
        if {k: v for k, v in obj.items() if k != "metadata"} != {
            k: v for k, v in existing.items() if k != "metadata"
        }:
            meta["generation"] = int(old_meta.get("generation", 0)) + 1
        if not meta.get("uid"):
            meta["uid"] = old_meta.get("uid")
        if old_meta.get("creationTimestamp"):
            meta["creationTimestamp"] = old_meta["creationTimestamp"]
        if old_meta.get("deletionTimestamp"):
            meta["deletionTimestamp"] = old_meta["deletionTimestamp"]
        if (
            old_meta.get("deletionGracePeriodSeconds") is not None
            and meta.get("deletionGracePeriodSeconds") is None
        ):
            meta["deletionGracePeriodSeconds"] = old_meta["deletionGracePeriodSeconds"]
        if not meta.get("namespace"):
            meta["namespace"] = namespace
        errs = self._validate(obj)
        if not errs:
            errs = validate_metadata_update(meta, old_meta)
        if errs:
            raise StatusError.invalid(name, errs)
        # ShouldDeleteDuringUpdate: a deleting object whose last finalizer is gone.
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            meta["resourceVersion"] = old_meta["resourceVersion"]
            return self._write("DELETED", obj, existing), warnings, True
        meta["resourceVersion"] = old_meta["resourceVersion"]
        if _without_rv(obj) == _without_rv(existing):
            return copy.deepcopy(existing), warnings, False
        return self._write("MODIFIED", obj, existing), warnings, True

    def delete(
        self,
        namespace: str,
        name: str,
        *,
        uid_precondition: str | None = None,
        rv_precondition: str | None = None,
    ) -> tuple[JSON | None, JSON]:
        """DELETE: returns (object still present, or None; the Status or object to answer)."""
        existing = self._objects.get((namespace, name))
        if existing is None:
            raise StatusError.not_found(name)
        meta = existing["metadata"]
        if uid_precondition is not None and uid_precondition != meta.get("uid"):
            raise StatusError.conflict(
                name,
                f"Precondition failed: UID in precondition: {uid_precondition}, "
                f"UID in object meta: {meta.get('uid')}",
            )
        if rv_precondition is not None and rv_precondition != meta.get("resourceVersion"):
            raise StatusError.conflict(
                name,
                f"Precondition failed: ResourceVersion in precondition: {rv_precondition}, "
                f"ResourceVersion in object meta: {meta.get('resourceVersion')}",
            )
        if meta.get("finalizers"):
            if meta.get("deletionTimestamp"):
                return copy.deepcopy(existing), copy.deepcopy(existing)
            obj = copy.deepcopy(existing)
            # markAsDeleting: generation bumps once, grace period is zero.
            if int(meta.get("generation", 0)) > 0:
                obj["metadata"]["generation"] = int(meta["generation"]) + 1
            obj["metadata"]["deletionTimestamp"] = now_rfc3339()
            obj["metadata"]["deletionGracePeriodSeconds"] = 0
            written = self._write("MODIFIED", obj, existing)
            return written, written
        self._write("DELETED", copy.deepcopy(existing), existing)
        status: JSON = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {"name": name, "group": GROUP, "kind": PLURAL, "uid": meta.get("uid")},
        }
        return None, status
