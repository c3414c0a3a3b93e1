"""API errors as kube-apiserver words them: ``field.Error`` and the ``Status`` body.

Constructors are named after ``k8s.io/apimachinery/pkg/api/errors``; the field error
texts after ``k8s.io/apimachinery/pkg/util/validation/field``. Nothing here knows HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from bff.label_selectors import go_quote
from bff.sandbox.resource import GROUP, JSON, KIND, PLURAL, QUALIFIED_RESOURCE

__all__ = [
    "OPTIMISTIC_LOCK_MSG",
    "FieldError",
    "StatusError",
    "UInt64",
    "forbidden_field",
    "invalid",
    "required",
]

OPTIMISTIC_LOCK_MSG = (
    "the object has been modified; please apply your changes to the latest version and try again"
)


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
        if self.details is not None:
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
            {k: v for k, v in {"name": name, "group": group, "kind": resource}.items() if v},
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
    def unprocessable(cls) -> StatusError:
        """What a failed JSON patch operation gets from kube-apiserver v1.36: a generic 422
        with empty details (the failing operation is not named)."""
        return cls(
            422, "Invalid", "the server rejected our request due to an error in our request", {}
        )
