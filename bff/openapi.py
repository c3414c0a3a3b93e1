"""The OpenAPI 3.1 description of every route, served at ``/openapi.json``.

Written by hand, but from the constants the handlers themselves use (client
versions, actions, labels, warning texts, the Steve type), so what can drift
is shared. ``tests/test_openapi.py`` compares the document's paths and methods
with the app's router in both directions, validates the document, and checks
the real request and response shapes against its schemas.

Paths are written without the base path; the one ``servers`` entry carries it,
so a client resolves every path under the prefix the BFF is mounted at.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from bff import __version__, captured
from bff.api.paths import (
    RANCHER_PREFIX,
    STATIC_FILES,
    STEVE_COLLECTION,
    UPGRADE,
    UPGRADE_ACCESS,
    UPGRADE_EVENTS,
    UPGRADES,
)
from bff.auth import CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE
from bff.errors import Code
from bff.patches import WARNINGS
from bff.request_keys import ACTIONS as UPGRADE_ACTIONS
from bff.steve import VERSIONS
from bff.upgrade_resource import API_VERSION, KIND, READ_MESSAGE, STEVE_TYPE, UPGRADE_STATE

JSON = dict[str, object]

ACTIONS = tuple(str(action) for action in UPGRADE_ACTIONS)

# JSON Schema patterns are searches, not full matches: anchor them.
DNS1123_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


API_TAG, STEVE_TAG, OPS_TAG = "upgrades", "steve-compat", "operations"


def _ref(kind: str, name: str) -> JSON:
    return {"$ref": f"#/components/{kind}/{name}"}


def _schema(name: str) -> JSON:
    return _ref("schemas", name)


def _json(schema: JSON, examples: Mapping[str, JSON] | None = None) -> JSON:
    media: JSON = {"schema": schema}
    if examples:
        media["examples"] = dict(examples)
    return {"application/json": media}


# --- errors -----------------------------------------------------------------------------------

#: status -> (component name, description, {code: example message}).
#: The codes are every ``code`` the BFF can answer with for that status.
_ERRORS: dict[int, tuple[str, str, dict[Code, str]]] = {
    400: (
        "BadRequest",
        "Bad input, refused before any upstream call: malformed JSON, a name or namespace "
        "that is not DNS-1123, a body whose identity does not match the URL, a bad label "
        "shape, an invalid labelSelector or an unknown action; a duplicate JSON key; a query "
        "parameter or header that may appear once given twice; a body on an action.",
        {
            Code.INVALID_NAME: "name 'Bad_Name' is not a valid DNS-1123 subdomain "
            "(lower-case alphanumerics, '-' and '.', at most 253 characters)",
            Code.INVALID_SELECTOR: "invalid labelSelector: unexpected character",
            Code.MALFORMED_JSON: "malformed JSON: Expecting value: line 1 column 1 (char 0)",
            Code.EMPTY_BODY: "the request body is empty",
            Code.INVALID_BODY: "apiVersion must be harvesterhci.io/v1beta1",
            Code.IDENTITY_MISMATCH: "metadata.name in the body does not match the name in the URL",
            Code.INVALID_LABELS: "metadata.labels must be an object of strings",
            Code.UNKNOWN_ACTION: "unknown action 'delete'; actions are dismiss and cancel",
            Code.DUPLICATE_KEY: "duplicate key 'name' in the JSON body",
            Code.AMBIGUOUS_REQUEST: "the query parameter action is given 2 times; give it once",
            Code.UNEXPECTED_BODY: "actions take no request body; send none (or {})",
            Code.BAD_REQUEST: "the request could not be understood",
        },
    ),
    401: (
        "Unauthorized",
        "No credential, a malformed Authorization header, or the Kubernetes API did not "
        "accept the token. A request without a credential never reaches the API server.",
        {
            Code.UNAUTHORIZED: "no credential: send 'Authorization: Bearer <token>' "
            "or the R_SESS session cookie",
        },
    ),
    403: (
        "Forbidden",
        "The Kubernetes API refused the caller (RBAC), an Impersonate-* header was sent, "
        "the Origin is not allowed, or a cookie-authenticated write lacks the CSRF header.",
        {
            Code.FORBIDDEN: 'upgrades.harvesterhci.io "hvst-upgrade-7xn6v" is forbidden',
            Code.FORBIDDEN_HEADER: "Impersonate-* headers are not accepted from clients",
            Code.ORIGIN_NOT_ALLOWED: "origin 'https://evil.example' is not allowed",
            Code.INVALID_CSRF_TOKEN: "a cookie-authenticated PUT needs the X-API-CSRF header "
            "equal to the CSRF cookie",
            Code.UNUSABLE_IDENTITY: "the Kubernetes API named a user for this token that cannot "
            "be impersonated (control characters in the user name, uid, groups or extra)",
        },
    ),
    404: (
        "NotFound",
        "No such Upgrade, a client version the BFF does not speak, a cluster id in "
        "/k8s/clusters/{cluster} that is not served (refused before any upstream call), or "
        "live updates without the read cache.",
        {
            Code.NOT_FOUND: 'upgrades.harvesterhci.io "hvst-upgrade-7xn6v" not found',
            Code.UNKNOWN_VERSION: "unknown client version 'v9'; supported versions: "
            + ", ".join(VERSIONS),
            Code.LIVE_UPDATES_OFF: "live updates need the read cache (--read-cache on)",
            Code.UNKNOWN_CLUSTER: "cluster 'c-m-nope' is not served here (see --cluster)",
        },
    ),
    405: (
        "MethodNotAllowed",
        "v1.0.4 clients have no actions: they PUT the object.",
        {Code.METHOD_NOT_ALLOWED: "v1.0.4 clients have no actions; they PUT the object"},
    ),
    409: (
        "Conflict",
        "Nothing was written: the upgrade is still in progress (dismissing it would make "
        "Harvester delete its logs), the body's metadata.uid names another incarnation of "
        "the object, or the object kept changing until the retries ran out.",
        {
            Code.UPGRADE_IN_PROGRESS: "the upgrade is still in progress (state UpgradingNodes); "
            "it can be dismissed once it has Succeeded or Failed",
            Code.UID_MISMATCH: "metadata.uid in the body does not match the live object: "
            "it was deleted and re-created since the client read it",
            Code.CONFLICT_RETRIES_EXHAUSTED: "the upgrade kept changing; gave up after 5 attempts",
            Code.CONFLICT: "the object has been modified; please apply your changes "
            "to the latest version and try again",
        },
    ),
    408: (
        "RequestTimeout",
        "The request body stalled for longer than --idle-timeout.",
        {Code.REQUEST_TIMEOUT: "the request body stalled for more than 15s"},
    ),
    413: (
        "PayloadTooLarge",
        "The request body is over the limit (64 KiB by default).",
        {Code.REQUEST_ENTITY_TOO_LARGE: "the request body is larger than 65536 bytes"},
    ),
    415: (
        "UnsupportedMediaType",
        "A PUT body must be application/json in UTF-8 (a declared charset other than "
        "UTF-8 is refused).",
        {Code.UNSUPPORTED_MEDIA_TYPE: "the body must be application/json, not 'text/plain'"},
    ),
    422: (
        "Invalid",
        "The Kubernetes API refused the write as invalid; its message is passed on, truncated.",
        {Code.INVALID: 'Upgrade.harvesterhci.io "hvst-upgrade-7xn6v" is invalid'},
    ),
    429: (
        "TooManyRequests",
        "The Kubernetes API is throttling; its Retry-After is passed through.",
        {Code.TOO_MANY_REQUESTS: "Too many requests, please try again later."},
    ),
    500: (
        "InternalError",
        "An unexpected failure inside the BFF; the details are in its log, never in the answer. "
        "UpstreamRequestRefused: the BFF's own transport refused to send a request it must "
        "never make; nothing was sent.",
        {
            Code.INTERNAL_ERROR: "internal error; see the BFF's log",
            Code.UPSTREAM_REQUEST_REFUSED: "PUT /apis/harvesterhci.io/v1beta1/namespaces/"
            "harvester-system/upgrades/hvst-upgrade-7xn6v is not a request the BFF makes",
        },
    ),
    502: (
        "BadGateway",
        "The Kubernetes API failed.",
        {Code.UPSTREAM_UNAVAILABLE: "the Kubernetes API answered 500"},
    ),
    503: (
        "ServiceUnavailable",
        "The Kubernetes API is unreachable or answered 503.",
        {Code.UPSTREAM_UNAVAILABLE: "the Kubernetes API is unreachable"},
    ),
    504: (
        "GatewayTimeout",
        "The Kubernetes API did not answer in time.",
        {Code.UPSTREAM_UNAVAILABLE: "the Kubernetes API did not answer in time"},
    ),
}

#: Error statuses per kind of operation, as the contract's error table assigns them
#: (plus 500, which only a bug produces).
_READ_ERRORS = (400, 401, 403, 404, 429, 500, 502, 503, 504)
_PUT_ERRORS = (400, 401, 403, 404, 408, 409, 413, 415, 422, 429, 500, 502, 503, 504)
_ACTION_ERRORS = (400, 401, 403, 404, 405, 408, 409, 413, 422, 429, 500, 502, 503, 504)


def _error_response(status: int) -> JSON:
    _, description, codes = _ERRORS[status]
    headers: JSON = {"X-Request-ID": _ref("headers", "X-Request-ID")}
    if status == 429:
        headers["Retry-After"] = _ref("headers", "Retry-After")
    if status == 405:
        headers["Allow"] = _ref("headers", "Allow")
    schema: JSON = {
        "allOf": [_schema("Error"), {"properties": {"status": {"const": status}}}],
    }
    examples: dict[str, JSON] = {
        code: {
            "summary": code,
            "value": {"type": "error", "status": status, "code": code, "message": message},
        }
        for code, message in codes.items()
    }
    return {"description": description, "headers": headers, "content": _json(schema, examples)}


def _errors(statuses: Iterable[int]) -> JSON:
    return {str(status): _ref("responses", _ERRORS[status][0]) for status in statuses}


# --- schemas ----------------------------------------------------------------------------------

_LABELS_DESCRIPTION = (
    f"`{UPGRADE_STATE}` is Harvester's upgrade state (Succeeded and Failed are finished). "
    f'`{READ_MESSAGE}: "true"` means the "upgrade finished" message was dismissed; it is '
    "the only label a client can change through the BFF, and only to `true`."
)


def _upgrade_schema() -> JSON:
    """The CRD's own ``openAPIV3Schema``, plus what the API server adds to every object.

    ``spec`` and ``status`` are the CRD's, as Harvester ships it; the envelope
    (``apiVersion``, ``kind``, ``metadata``) is always present in what the API returns.
    """
    schema = captured.upgrade_schema()
    schema["description"] = (
        f"A Harvester `{API_VERSION}` `{KIND}`, as the Kubernetes API returns it; "
        "the schema is the CRD's own `openAPIV3Schema`."
    )
    schema["required"] = sorted({*schema.get("required", ()), "apiVersion", "kind", "metadata"})
    properties = schema["properties"]
    properties["apiVersion"] = {**properties["apiVersion"], "const": API_VERSION}
    properties["kind"] = {**properties["kind"], "const": KIND}
    properties["metadata"] = _schema("ObjectMeta")
    properties["status"]["description"] = (
        "Written by Harvester's controller. The CRD has no status subresource, "
        "so a PUT without it would wipe it; the BFF never sends one."
    )
    return schema


def _schemas() -> JSON:
    string_map: JSON = {"type": "object", "additionalProperties": {"type": "string"}}
    object_meta: JSON = {
        "type": "object",
        "required": ["name", "namespace"],
        "properties": {
            "name": {"type": "string", "pattern": DNS1123_SUBDOMAIN, "maxLength": 253},
            "namespace": {"type": "string", "pattern": DNS1123_LABEL, "maxLength": 63},
            "generateName": {"type": "string"},
            "uid": {"type": "string"},
            "resourceVersion": {"type": "string"},
            "generation": {"type": "integer"},
            "creationTimestamp": {"type": "string"},
            "labels": {**string_map, "description": _LABELS_DESCRIPTION},
            "annotations": string_map,
            "finalizers": {"type": "array", "items": {"type": "string"}},
        },
    }
    upgrade = _upgrade_schema()
    links: JSON = {
        "type": "object",
        "required": ["self", "update"],
        "properties": {
            "self": {"type": "string", "format": "uri-reference"},
            "update": {"type": "string", "format": "uri-reference"},
        },
    }
    actions: JSON = {
        "type": "object",
        "description": "v1.0.5 only: the action URLs.",
        "required": list(ACTIONS),
        "properties": {a: {"type": "string", "format": "uri-reference"} for a in ACTIONS},
    }
    resource: JSON = {
        "description": "A Steve-style resource: the Kubernetes object plus Steve's envelope.",
        "allOf": [
            _schema("Upgrade"),
            {
                "type": "object",
                "required": ["id", "type", "links"],
                "properties": {
                    "id": {"type": "string", "description": "`namespace/name`"},
                    "type": {"const": STEVE_TYPE},
                    "links": _schema("SteveLinks"),
                    "actions": _schema("SteveActions"),
                },
            },
        ],
    }
    collection: JSON = {
        "type": "object",
        "required": ["type", "resourceType", "data"],
        "properties": {
            "type": {"const": "collection"},
            "resourceType": {"const": STEVE_TYPE},
            "links": {"type": "object", "properties": {"self": {"type": "string"}}},
            "revision": {"type": "string"},
            "count": {"type": "integer", "minimum": 0},
            "data": {"type": "array", "items": _schema("UpgradeResource")},
        },
    }
    put_body: JSON = {
        "type": "object",
        "description": (
            "The whole object, as a client's `save()` sends it (a Steve model, with or "
            "without `status`). It is reduced to one change at most: "
            f'`{READ_MESSAGE}: "true"`. Every other difference from the live object is '
            "ignored and reported in a `Warning` header; a read-message label missing "
            "from the body never removes it. `metadata.name` (and `namespace`, `id`, "
            "where present) must match the URL; a `metadata.uid` naming another "
            "incarnation of the object is a 409."
        ),
        "required": ["metadata"],
        "properties": {
            "apiVersion": {"const": API_VERSION},
            "kind": {"const": KIND},
            "id": {"type": "string"},
            "metadata": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string"},
                    "namespace": {"type": "string"},
                    "uid": {"type": "string"},
                    "labels": {**string_map, "description": _LABELS_DESCRIPTION},
                },
            },
        },
    }
    error: JSON = {
        "type": "object",
        "description": "Steve's error shape. `message` is a sentence for a human; it never "
        "carries a stack trace, an upstream body or a token.",
        "required": ["type", "status", "code", "message"],
        "additionalProperties": False,
        "properties": {
            "type": {"const": "error"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "code": {"type": "string"},
            "message": {"type": "string"},
        },
    }
    access: JSON = {
        "type": "object",
        "description": "What the caller may do to the Upgrades in the BFF's namespace.",
        "required": ["type", "namespace", "patch"],
        "additionalProperties": False,
        "properties": {
            "type": {"const": "access"},
            "namespace": {"type": "string", "pattern": DNS1123_LABEL, "maxLength": 63},
            "patch": {
                "type": "boolean",
                "description": "Whether the caller may patch Upgrades there: every write the "
                "BFF makes (dismiss, cancel, a reduced PUT) is a label merge patch with the "
                "caller's credentials, so `false` means each would be refused with 403.",
            },
        },
    }
    return {
        "ObjectMeta": object_meta,
        "Upgrade": upgrade,
        "SteveLinks": links,
        "SteveActions": actions,
        "UpgradeResource": resource,
        "UpgradeCollection": collection,
        "Access": access,
        "PutBody": put_body,
        "Error": error,
        "Health": {
            "type": "object",
            "required": ["status"],
            "properties": {"status": {"const": "ok"}},
        },
        "Readiness": {
            "type": "object",
            "required": ["status"],
            "properties": {
                "status": {"enum": ["ready", "not ready"]},
                "reason": {"type": "string"},
            },
        },
    }


def _headers() -> JSON:
    warnings = "; ".join(f'"{text}"' for text in WARNINGS.values())
    return {
        "X-Request-ID": {
            "description": "The request's id: a valid inbound X-Request-ID, else a new one. "
            "Every log line about the request carries it.",
            "schema": {"type": "string", "pattern": r"^[A-Za-z0-9._:-]{1,128}$"},
        },
        "X-Upgrade-Bff-Changed": {
            "description": "Whether this request wrote to the Kubernetes API.",
            "required": True,
            "schema": {"type": "string", "enum": ["true", "false"]},
        },
        "Warning": {
            "description": 'Kubernetes-style `299 - "..."`, one header per category of '
            f"the body that was ignored. The texts: {warnings}.",
            "schema": {"type": "string", "pattern": '^299 - ".*"$'},
        },
        "Retry-After": {
            "description": "Seconds, passed through from the Kubernetes API.",
            "schema": {"type": "integer", "minimum": 0},
        },
        "Allow": {"description": "The methods this route allows.", "schema": {"type": "string"}},
    }


def _parameters() -> JSON:
    return {
        "version": {
            "name": "version",
            "in": "path",
            "required": True,
            "description": "The client generation. Any other value is answered 404 "
            "`UnknownVersion`, listing these.",
            "schema": {"type": "string", "enum": list(VERSIONS)},
        },
        "namespace": {
            "name": "namespace",
            "in": "path",
            "required": True,
            "description": "A DNS-1123 label; Harvester keeps its Upgrades in harvester-system.",
            "schema": {"type": "string", "pattern": DNS1123_LABEL, "maxLength": 63},
            "example": "harvester-system",
        },
        "name": {
            "name": "name",
            "in": "path",
            "required": True,
            "description": "The Upgrade's name, a DNS-1123 subdomain.",
            "schema": {"type": "string", "pattern": DNS1123_SUBDOMAIN, "maxLength": 253},
            "example": "hvst-upgrade-7xn6v",
        },
        "cluster": {
            "name": "cluster",
            "in": "path",
            "required": True,
            "description": "The Rancher cluster id (as in Rancher's /k8s/clusters/<id> proxy). "
            "In Rancher mode (--rancher-url) the request goes to that cluster through Rancher. "
            "Only the served ids (--cluster) are accepted: any other is a 404 UnknownCluster.",
            "schema": {"type": "string", "pattern": DNS1123_SUBDOMAIN, "maxLength": 253},
            "example": "c-m-abcd1234",
        },
        "labelSelector": {
            "name": "labelSelector",
            "in": "query",
            "required": False,
            "description": "A Kubernetes label selector, validated before it is sent upstream.",
            "schema": {"type": "string"},
            "example": f"{UPGRADE_STATE}=Succeeded",
        },
        "action": {
            "name": "action",
            "in": "query",
            "required": True,
            "description": "dismiss: mark the message read; refused (409) while the upgrade "
            "is unfinished. cancel: the dialog's Cancel; on a finished upgrade it marks the "
            "message read like dismiss, on an unfinished one it writes nothing. Either "
            "way status is never touched.",
            "schema": {"type": "string", "enum": list(ACTIONS)},
        },
        "file": {
            "name": "file",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "enum": list(STATIC_FILES)},
        },
        "X-Request-ID": {
            "name": "X-Request-ID",
            "in": "header",
            "required": False,
            "description": "Reused as the request's id when it matches the pattern.",
            "schema": {"type": "string"},
        },
    }


def _responses() -> JSON:
    request_id: JSON = {"X-Request-ID": _ref("headers", "X-Request-ID")}
    write_headers: JSON = {
        **request_id,
        "X-Upgrade-Bff-Changed": _ref("headers", "X-Upgrade-Bff-Changed"),
        "Warning": _ref("headers", "Warning"),
    }
    responses: JSON = {
        "Resource": {
            "description": "The Upgrade as a Steve resource.",
            "headers": request_id,
            "content": _json(_schema("UpgradeResource")),
        },
        "Collection": {
            "description": "The Upgrades as a Steve collection.",
            "headers": request_id,
            "content": _json(_schema("UpgradeCollection")),
        },
        "Written": {
            "description": "The resulting object: as the API server returned it after the "
            "label patch, or the live object when nothing needed writing. Status is intact.",
            "headers": write_headers,
            "content": _json(_schema("UpgradeResource")),
        },
    }
    for status, (name, _, _) in _ERRORS.items():
        responses[name] = _error_response(status)
    return responses


# --- operations -------------------------------------------------------------------------------

_READ_SECURITY: list[JSON] = [{"bearer": []}, {"session": []}]
#: A cookie credential on an unsafe method also needs the CSRF double-submit header.
_WRITE_SECURITY: list[JSON] = [{"bearer": []}, {"session": [], "csrf": []}]


def _operation(
    operation_id: str,
    summary: str,
    tag: str,
    responses: JSON,
    *,
    description: str = "",
    parameters: Iterable[str] = (),
    request_body: JSON | None = None,
    security: list[JSON] | None = None,
) -> JSON:
    op: JSON = {"operationId": operation_id, "summary": summary, "tags": [tag]}
    if description:
        op["description"] = description
    params = [_ref("parameters", p) for p in parameters]
    if security is not None:
        params.append(_ref("parameters", "X-Request-ID"))
        op["security"] = security
    if params:
        op["parameters"] = params
    if request_body is not None:
        op["requestBody"] = request_body
    op["responses"] = responses
    return op


def _put_body() -> JSON:
    # Read per document, so no two documents share (and a caller cannot change) an example.
    # v1.0.2-v1.0.4 send on "Dismiss it" (harvester/harvester issue #7791) the Steve model
    # without status, finalizers and server-owned metadata, plus the label; v1.0.5
    # (harvester/harvester-ui-extension PR #201) the whole Steve object, status included
    # (possibly stale), plus the label.
    return {
        "required": True,
        "description": "The body the client's save() sends.",
        "content": _json(
            _schema("PutBody"),
            {
                "v1.0.4": {
                    "summary": "Extension v1.0.2-v1.0.4 dismiss: no status",
                    "description": "Sent straight to the Kubernetes API this wipes .status.",
                    "value": captured.client_body("v1.0.4"),
                },
                "v1.0.5": {
                    "summary": "Extension v1.0.5 dismiss: whole Steve object, maybe stale",
                    "value": captured.client_body("v1.0.5"),
                },
            },
        ),
    }


#: One server-sent event of the live-update stream (each event, as SSE clients parse it).
_SSE_EVENT = {
    "type": "object",
    "description": "`data` is JSON: the Steve collection for `snapshot`; `{type, id, object}` "
    "for `change` (`object` is null when deleted); `{status, message}` for `error`.",
    "properties": {
        "event": {"type": "string", "enum": ["snapshot", "change", "error"]},
        "data": {"type": "string"},
    },
    "required": ["event", "data"],
}


def _path_params(*names: str) -> list[JSON]:
    return [_ref("parameters", n) for n in names]


def _versioned_paths() -> JSON:
    read = {"200": _ref("responses", "Resource"), **_errors(_READ_ERRORS)}
    return {
        UPGRADES: {
            "parameters": _path_params("version"),
            "get": _operation(
                "listUpgrades",
                "List the Upgrades in the BFF's namespace",
                API_TAG,
                {"200": _ref("responses", "Collection"), **_errors(_READ_ERRORS)},
                parameters=["labelSelector"],
                security=_READ_SECURITY,
            ),
        },
        UPGRADE_EVENTS: {
            "parameters": _path_params("version"),
            "get": _operation(
                "upgradeEvents",
                "Live updates of the Upgrades in the BFF's namespace (server-sent events)",
                API_TAG,
                {
                    "200": {
                        "description": "`event: snapshot` (the collection), then `event: "
                        "change` per change (`type`, `id`, `object`), `: keepalive` every 15 s.",
                        "content": {"text/event-stream": {"schema": _SSE_EVENT}},
                    },
                    **_errors(_READ_ERRORS),
                },
                description="Needs `--read-cache on` (404 `LiveUpdatesOff` otherwise). "
                "Authorised like a read (a `watch` access review, reused for at most 10 s), "
                "and again every `--stream-recheck-interval` while open (`event: error`, "
                "then the end, once access is lost). At most `--max-streams-per-caller` "
                "streams per credential and `--max-streams` in all (429 beyond); a client "
                "that stops reading is dropped after `--stream-write-timeout`.",
                security=_READ_SECURITY,
            ),
        },
        UPGRADE_ACCESS: {
            "parameters": _path_params("version"),
            "get": _operation(
                "upgradeAccess",
                "What the caller may do to the Upgrades in the BFF's namespace",
                API_TAG,
                {
                    "200": {
                        "description": "The caller's permission to write (`patch`).",
                        "headers": {"X-Request-ID": _ref("headers", "X-Request-ID")},
                        "content": _json(
                            _schema("Access"),
                            {
                                "admin": {
                                    "value": {
                                        "type": "access",
                                        "namespace": "harvester-system",
                                        "patch": True,
                                    }
                                },
                                "read-only": {
                                    "value": {
                                        "type": "access",
                                        "namespace": "harvester-system",
                                        "patch": False,
                                    }
                                },
                            },
                        ),
                    },
                    **_errors(_READ_ERRORS),
                },
                description="Authorised like a list (a `list` access review, 403 for a "
                "caller who may not read), then one `patch` review: a SelfSubjectAccessReview "
                "with the caller's token (in Rancher mode through the proxy of the caller's "
                "cluster), or a SubjectAccessReview for the impersonated user. "
                "Allows are reused for at most 10 s; nothing is written. The page enables "
                "Dismiss only when `patch` is not false.",
                security=_READ_SECURITY,
            ),
        },
        UPGRADE: {
            "parameters": _path_params("version", "namespace", "name"),
            "get": _operation(
                "getUpgrade",
                "Read one Upgrade",
                API_TAG,
                read,
                description="v1.0.5 responses also carry `actions`.",
                security=_READ_SECURITY,
            ),
            "put": _operation(
                "putUpgrade",
                "Save an Upgrade the way the client version does; at most the label changes",
                API_TAG,
                {"200": _ref("responses", "Written"), **_errors(_PUT_ERRORS)},
                description="Reduced to the one label merge patch, or to nothing. A body "
                "that sets read-message on an unfinished upgrade is refused (409 "
                "UpgradeInProgress) with no write.",
                request_body=_put_body(),
                security=_WRITE_SECURITY,
            ),
            "post": _operation(
                "upgradeAction",
                "Dismiss or cancel (v1.0.5 only)",
                API_TAG,
                {"200": _ref("responses", "Written"), **_errors(_ACTION_ERRORS)},
                description="v1.0.4 clients have no actions and get 405. Idempotent: when "
                "the message is already read, or there is nothing to write, the answer is "
                "200 with `X-Upgrade-Bff-Changed: false`.",
                parameters=["action"],
                security=_WRITE_SECURITY,
            ),
        },
    }


def _steve_paths(prefix: str, id_prefix: str, cluster: tuple[str, ...]) -> JSON:
    collection = f"{prefix}{STEVE_COLLECTION}"
    listed = {"200": _ref("responses", "Collection"), **_errors(_READ_ERRORS)}
    same = "Behaves exactly like the v1.0.4 route."
    where = " through Rancher's cluster proxy" if cluster else ""
    return {
        collection: {
            **({"parameters": _path_params(*cluster)} if cluster else {}),
            "get": _operation(
                f"{id_prefix}ListUpgrades",
                f"Steve path{where}: list the Upgrades in the BFF's namespace",
                STEVE_TAG,
                listed,
                description=same,
                parameters=["labelSelector"],
                security=_READ_SECURITY,
            ),
        },
        f"{collection}/{{namespace}}": {
            "parameters": _path_params(*cluster, "namespace"),
            "get": _operation(
                f"{id_prefix}ListNamespacedUpgrades",
                f"Steve path{where}: list the Upgrades in a namespace",
                STEVE_TAG,
                listed,
                description=same,
                parameters=["labelSelector"],
                security=_READ_SECURITY,
            ),
        },
        f"{collection}/{{namespace}}/{{name}}": {
            "parameters": _path_params(*cluster, "namespace", "name"),
            "get": _operation(
                f"{id_prefix}GetUpgrade",
                f"Steve path{where}: read one Upgrade",
                STEVE_TAG,
                {"200": _ref("responses", "Resource"), **_errors(_READ_ERRORS)},
                description=same,
                security=_READ_SECURITY,
            ),
            "put": _operation(
                f"{id_prefix}PutUpgrade",
                f"Steve path{where}: the old extension's dismiss PUT, made safe",
                STEVE_TAG,
                {"200": _ref("responses", "Written"), **_errors(_PUT_ERRORS)},
                description=same + " Old extensions send their dismiss here unchanged.",
                request_body=_put_body(),
                security=_WRITE_SECURITY,
            ),
        },
    }


def _ops_paths(metrics_on_api_port: bool) -> JSON:
    request_id: JSON = {"X-Request-ID": _ref("headers", "X-Request-ID")}

    def ok(description: str, content: JSON) -> JSON:
        return {"description": description, "headers": request_id, "content": content}

    text: JSON = {"schema": {"type": "string"}}
    metrics: JSON = {
        "/metrics": {
            "get": _operation(
                "metrics",
                "Prometheus metrics",
                OPS_TAG,
                {"200": ok("Prometheus text format.", {"text/plain": text})},
            )
        }
    }
    return {
        "/healthz": {
            "get": _operation(
                "healthz",
                "Liveness: 200 while the process serves; makes no upstream call",
                OPS_TAG,
                {"200": ok("Serving.", _json(_schema("Health")))},
            )
        },
        "/readyz": {
            "get": _operation(
                "readyz",
                "Readiness: the Kubernetes API answers and serves " + API_VERSION,
                OPS_TAG,
                {
                    "200": ok("Ready.", _json(_schema("Readiness"))),
                    "503": ok("Not ready, with the reason.", _json(_schema("Readiness"))),
                },
            )
        },
        **(metrics if metrics_on_api_port else {}),
        "/openapi.json": {
            "get": _operation(
                "openapi",
                "This document",
                OPS_TAG,
                {"200": ok("OpenAPI 3.1.", _json({"type": "object"}))},
            )
        },
        "/": {
            "get": _operation(
                "page",
                "The page: list Upgrades, dismiss, cancel, try the legacy v1.0.4 PUT",
                OPS_TAG,
                {"200": ok("HTML.", {"text/html": text})},
            )
        },
        "/static/{file}": {
            "parameters": _path_params("file"),
            "get": _operation(
                "staticFile",
                "The page's script, style and icon, and the API description page",
                OPS_TAG,
                {
                    "200": ok(
                        "The file.",
                        {
                            "text/javascript": text,
                            "text/css": text,
                            "text/html": text,
                            "image/svg+xml": text,
                        },
                    ),
                    "404": _ref("responses", "NotFound"),
                },
            ),
        },
    }


def document(base_path: str = "", *, metrics_on_api_port: bool = True) -> dict[str, object]:
    """The OpenAPI 3.1 document for a BFF mounted at ``base_path`` (``""`` for the root);
    ``/metrics`` is in it unless ``--metrics-port`` serves it on a port of its own."""
    paths: JSON = {
        **_ops_paths(metrics_on_api_port),
        **_versioned_paths(),
        **_steve_paths("", "steve", ()),
        **_steve_paths(RANCHER_PREFIX, "rancher", ("cluster",)),
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "harvester-upgrade-bff",
            "version": __version__,
            "summary": "Dismiss Harvester upgrade messages without ever wiping status.",
            "description": (
                "A backend-for-frontend for Harvester `Upgrade` resources. Every dismiss "
                "or cancel, whichever client generation sends it, becomes at most one "
                "label-only JSON merge patch upstream: "
                f'`{READ_MESSAGE}: "true"`, conditional on the resourceVersion the '
                "guards were checked against. Nothing else is ever written."
            ),
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": base_path or "/"}],
        "tags": [
            {"name": API_TAG, "description": "Versioned API for dashboard extensions."},
            {
                "name": STEVE_TAG,
                "description": "Steve's own paths, for extensions that cannot be upgraded: "
                "an Ingress sends them here and they behave like v1.0.4.",
            },
            {"name": OPS_TAG, "description": "Health, metrics, this document, the page."},
        ],
        "paths": paths,
        "components": {
            "schemas": _schemas(),
            "parameters": _parameters(),
            "headers": _headers(),
            "responses": _responses(),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A Kubernetes or Rancher token. In passthrough mode it is "
                    "sent upstream as is; in impersonate mode it is checked by TokenReview.",
                },
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": SESSION_COOKIE,
                    "description": "Rancher's session cookie, as the dashboard sends it.",
                },
                "csrf": {
                    "type": "apiKey",
                    "in": "header",
                    "name": CSRF_HEADER,
                    "description": f"Must equal the `{CSRF_COOKIE}` cookie when the credential "
                    "is the session cookie and the method is unsafe (Rancher's double submit).",
                },
            },
        },
    }
