"""The project's own errors, and nothing else.

Every failure a client can see is one of these. Handlers and the domain raise
them; ``bff.kube`` translates the Kubernetes client's exceptions into them (so no
client-library type leaks upward); one middleware turns them into Steve-shaped
JSON. Messages are written for a human and never contain an upstream body, a
header or a token.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import ClassVar

#: Upstream ``Status.message`` text is passed on, but never more than this.
MAX_UPSTREAM_MESSAGE = 256


class Code(enum.StrEnum):
    """Every ``code`` the BFF answers with; the API description lists exactly these."""

    AMBIGUOUS_REQUEST = "AmbiguousRequest"
    BAD_REQUEST = "BadRequest"
    CONFLICT = "Conflict"
    CONFLICT_RETRIES_EXHAUSTED = "ConflictRetriesExhausted"
    DUPLICATE_KEY = "DuplicateKey"
    EMPTY_BODY = "EmptyBody"
    FORBIDDEN = "Forbidden"
    FORBIDDEN_HEADER = "ForbiddenHeader"
    IDENTITY_MISMATCH = "IdentityMismatch"
    INTERNAL_ERROR = "InternalError"
    INVALID = "Invalid"
    INVALID_BODY = "InvalidBody"
    INVALID_CSRF_TOKEN = "InvalidCSRFToken"  # noqa: S105 (a code, not a secret)
    INVALID_LABELS = "InvalidLabels"
    INVALID_NAME = "InvalidName"
    INVALID_SELECTOR = "InvalidSelector"
    LIVE_UPDATES_OFF = "LiveUpdatesOff"
    MALFORMED_JSON = "MalformedJSON"
    METHOD_NOT_ALLOWED = "MethodNotAllowed"
    NOT_FOUND = "NotFound"
    ORIGIN_NOT_ALLOWED = "OriginNotAllowed"
    REQUEST_ENTITY_TOO_LARGE = "RequestEntityTooLarge"
    REQUEST_TIMEOUT = "RequestTimeout"
    TOO_MANY_REQUESTS = "TooManyRequests"
    UID_MISMATCH = "UidMismatch"
    UNAUTHORIZED = "Unauthorized"
    UNEXPECTED_BODY = "UnexpectedBody"
    UNKNOWN_ACTION = "UnknownAction"
    UNKNOWN_CLUSTER = "UnknownCluster"
    UNKNOWN_VERSION = "UnknownVersion"
    UNSUPPORTED_MEDIA_TYPE = "UnsupportedMediaType"
    UNUSABLE_IDENTITY = "UnusableIdentity"
    UPGRADE_IN_PROGRESS = "UpgradeInProgress"
    UPSTREAM_REQUEST_REFUSED = "UpstreamRequestRefused"
    UPSTREAM_UNAVAILABLE = "UpstreamUnavailable"


class BffError(Exception):
    """An error with an HTTP status, a Steve ``code`` and a human sentence."""

    #: The HTTP status; a class default that one error kind may set per instance.
    status: int = 500
    default_code: ClassVar[Code] = Code.INTERNAL_ERROR

    def __init__(
        self,
        message: str,
        *,
        code: Code | None = None,
        headers: Mapping[str, str] | None = None,
        upstream_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.headers: dict[str, str] = dict(headers or {})
        #: The status the Kubernetes API answered, when the error came from it.
        self.upstream_status = upstream_status

    def body(self) -> dict[str, object]:
        """The Steve error shape: ``{"type":"error","status":..,"code":..,"message":..}``."""
        return {"type": "error", "status": self.status, "code": self.code, "message": self.message}


class BadRequest(BffError):
    status = 400
    default_code = Code.BAD_REQUEST


class Unauthorized(BffError):
    status = 401
    default_code = Code.UNAUTHORIZED


class Forbidden(BffError):
    status = 403
    default_code = Code.FORBIDDEN


class NotFound(BffError):
    status = 404
    default_code = Code.NOT_FOUND


class MethodNotAllowed(BffError):
    status = 405
    default_code = Code.METHOD_NOT_ALLOWED


class Conflict(BffError):
    status = 409
    default_code = Code.CONFLICT


class PayloadTooLarge(BffError):
    status = 413
    default_code = Code.REQUEST_ENTITY_TOO_LARGE


class UnsupportedMediaType(BffError):
    status = 415
    default_code = Code.UNSUPPORTED_MEDIA_TYPE


class Invalid(BffError):
    status = 422
    default_code = Code.INVALID


class TooManyRequests(BffError):
    status = 429
    default_code = Code.TOO_MANY_REQUESTS


class UpstreamUnavailable(BffError):
    """The Kubernetes API could not be reached, failed, or was too slow.

    The HTTP status is chosen per instance (502, 503 or 504); the code is always
    ``UpstreamUnavailable`` so clients have one thing to match on.
    """

    default_code = Code.UPSTREAM_UNAVAILABLE

    def __init__(
        self, message: str, *, http_status: int = 502, upstream_status: int | None = None
    ) -> None:
        super().__init__(message, upstream_status=upstream_status)
        self.status = http_status


class UpstreamConflict(Conflict):
    """The API server refused a write because the object changed (HTTP 409).

    The domain catches this to re-read, re-check and retry; it only reaches a
    client as ``ConflictRetriesExhausted`` once the retries are spent.
    """


class UpstreamRequestRefused(BffError):
    """The transport refused to send a request its allowlist does not name.

    Never a client's doing: it means code tried to send something the BFF must
    not send. Nothing went upstream; the client gets a plain 500.
    """

    default_code = Code.UPSTREAM_REQUEST_REFUSED


def truncate(message: str, limit: int = MAX_UPSTREAM_MESSAGE) -> str:
    """Shorten an upstream message so a client never gets a wall of text."""
    message = " ".join(message.split())
    return message if len(message) <= limit else message[: limit - 1] + "…"
