"""Server-side printing: a ``meta.k8s.io/v1`` Table when the client asks ``as=Table``.

kubectl asks for a Table on every human-readable ``get``, and on ``get -w``. The columns
are a custom resource's: Name, then the CRD's ``additionalPrinterColumns`` (simple
``.a.b`` JSON paths), or Name and Age when it has none, as this CRD does. Each row
carries the object as ``includeObject`` says (``Metadata`` by default: a
PartialObjectMetadata). In a watch, only the first event carries the column
definitions, as kube-apiserver sends them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from bff.sandbox.resource import JSON, VERSION
from bff.sandbox.schema import load_crd
from bff.sandbox.status import StatusError

__all__ = ["columns", "human_duration", "table", "wants_table"]

_NAME = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "description": "Name must be unique within a namespace. Is required when creating "
    "resources, although some resources may allow a client to request the generation of an "
    "appropriate name automatically. Name is primarily intended for creation idempotence and "
    "configuration definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
    "priority": 0,
}
_AGE = {
    "name": "Age",
    "type": "date",
    "format": "",
    "description": "CreationTimestamp is a timestamp representing the server time when this "
    "object was created. It is not guaranteed to be set in happens-before order across "
    "separate operations. Clients may not set this value. It is represented in RFC3339 form "
    "and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
    "priority": 0,
}
_INCLUDE = ("None", "Metadata", "Object")


def wants_table(request: web.Request) -> bool:
    """True when the Accept header asks for ``application/json;as=Table;g=meta.k8s.io``."""
    for entry in request.headers.get("Accept", "").split(","):
        media, *params = (p.strip() for p in entry.split(";"))
        values = dict(p.partition("=")[::2] for p in params)
        if (
            media in ("application/json", "*/*")
            and values.get("as") == "Table"
            and values.get("g") == "meta.k8s.io"
            and values.get("v") in ("v1", "v1beta1")
        ):
            return True
    return False


def human_duration(seconds: float) -> str:
    """``k8s.io/apimachinery/pkg/util/duration.HumanDuration``."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 60 * 2:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rest = s % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y" if days == 0 else f"{years}y{days}d"
    return f"{hours // 24 // 365}y"


def columns(crd: JSON | None = None) -> list[JSON]:
    """The column definitions, with each column's JSON path (``None`` for the name)."""
    crd = crd if crd is not None else load_crd()
    version = next(v for v in crd["spec"]["versions"] if v["name"] == VERSION)
    printer = version.get("additionalPrinterColumns") or []
    if not printer:
        return [_NAME | {"jsonPath": None}, _AGE | {"jsonPath": ".metadata.creationTimestamp"}]
    out: list[JSON] = [_NAME | {"jsonPath": None}]
    for column in printer:
        out.append(
            {
                "name": column["name"],
                "type": column["type"],
                "format": column.get("format", ""),
                "description": column.get("description", ""),
                "priority": column.get("priority", 0),
                "jsonPath": column["jsonPath"],
            }
        )
    return out


def _at(obj: Any, path: str) -> Any:
    for part in filter(None, path.split(".")):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def _cell(obj: JSON, column: JSON, now: datetime) -> Any:
    path = column["jsonPath"]
    if path is None:
        return obj["metadata"]["name"]
    value = _at(obj, path)
    if column["type"] == "date":
        if not isinstance(value, str):
            return "<unknown>"
        created = datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        return human_duration((now - created).total_seconds())
    return value


def include_object(request: web.Request) -> str:
    value = request.query.get("includeObject", "") or "Metadata"
    if value not in _INCLUDE:
        raise StatusError.bad_request(f"includeObject: unsupported value {value!r}")
    return value


def table(
    objects: Iterable[JSON],
    metadata: JSON,
    *,
    include: str = "Metadata",
    with_columns: bool = True,
    now: datetime | None = None,
) -> JSON:
    """A Table of ``objects``; ``metadata`` is the list's (or the object's resourceVersion)."""
    now = now or datetime.now(UTC)
    defined = columns()
    rows = []
    for obj in objects:
        row: JSON = {"cells": [_cell(obj, c, now) for c in defined]}
        if include == "Object":
            row["object"] = obj
        elif include == "Metadata":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj["metadata"],
            }
        else:
            row["object"] = None
        rows.append(row)
    answer: JSON = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata}
    if with_columns:
        answer["columnDefinitions"] = [
            {k: v for k, v in c.items() if k != "jsonPath"} for c in defined
        ]
    answer["rows"] = rows
    return answer
