"""Authentication, impersonation and authorisation, and the review APIs built on them.

The middleware does what kube-apiserver's filter chain does before a handler runs:
bearer token (or anonymous), ``Impersonate-*`` headers, then RBAC on the request's
attributes (the RequestInfo resolver's verb, group, resource, namespace and name). Who is
who, and the rules, live in :mod:`bff.sandbox.users`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bff.sandbox import protobuf, users
from bff.sandbox.httpio import Handler, json_response, media_type, read_body
from bff.sandbox.keys import USER
from bff.sandbox.resource import JSON
from bff.sandbox.status import StatusError, invalid
from bff.sandbox.store import now_rfc3339
from bff.sandbox.users import Attributes, ImpersonationError, UserInfo

__all__ = [
    "attributes",
    "authenticate",
    "forbidden",
    "self_subject_access_review",
    "self_subject_review",
    "subject_access_review",
    "token_review",
]


_VERBS = {
    "GET": "get",
    "HEAD": "get",
    "POST": "create",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}


def attributes(request: web.Request, user: UserInfo) -> Attributes:
    """What the request asks for, as kube-apiserver's RequestInfo resolver says it.

    ``/apis/<group>/<version>/[namespaces/<ns>/]<resource>[/<name>[/<subresource>]]`` and
    ``/api/<version>/...`` are resource requests; every other path is a non-resource one,
    whose verb is the lower-cased method.
    """
    path = request.path
    method = request.method
    parts = [p for p in path.split("/") if p]
    group = ""
    if parts[:1] == ["apis"] and len(parts) >= 4:
        group, version, rest = parts[1], parts[2], parts[3:]
    elif parts[:1] == ["api"] and len(parts) >= 3:
        version, rest = parts[1], parts[2:]
    else:
        return Attributes(user, method.lower(), resource_request=False, path=path)
    namespace = ""
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    verb = _VERBS.get(method, method.lower())
    watch = request.query.getone("watch", None)
    if verb == "get" and watch is not None and watch.lower() not in ("false", "0"):
        verb = "watch"
    elif verb == "get" and not name:
        verb = "list"
    elif verb == "delete" and not name:
        verb = "deletecollection"
    return Attributes(
        user,
        verb,
        api_group=group,
        api_version=version,
        resource=resource,
        subresource=subresource,
        namespace=namespace,
        name=name,
    )


def forbidden(attrs: Attributes) -> StatusError:
    details = {"name": attrs.name, "group": attrs.api_group, "kind": attrs.resource}
    return StatusError(
        403,
        "Forbidden",
        users.forbidden_message(attrs),
        {k: v for k, v in details.items() if v} or None,
    )


UNAUTHORIZED = StatusError(401, "Unauthorized", "Unauthorized")


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    header = request.headers.get("Authorization", "")
    user: UserInfo | None
    if not header:
        # Anonymous requests are authenticated as system:anonymous and then authorised,
        # like kube-apiserver with anonymous auth on (its default): 403, not 401.
        user = UserInfo(users.ANONYMOUS, groups=(users.ALL_UNAUTHENTICATED,))
    else:
        scheme, _, token = header.partition(" ")
        user = users.authenticate(token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            raise UNAUTHORIZED
    request[USER] = user
    try:
        acting = users.impersonate(user, list(request.headers.items()))
    except ImpersonationError as exc:
        if exc.attributes is None:
            return web.Response(
                status=500,
                text=f'Internal Server Error: "{request.path}": {exc}',
                content_type="text/plain",
            )
        raise forbidden(exc.attributes) from None
    if acting is not None:
        request[USER] = acting
        user = acting
    attrs = attributes(request, user)
    if not users.authorize(attrs):
        raise forbidden(attrs)
    return await handler(request)


async def token_review(request: web.Request) -> web.Response:
    body = await read_review(request, "TokenReview")
    spec = body.get("spec") or {}
    token = spec.get("token") or ""
    if not token:
        raise StatusError.bad_request("token is required for TokenReview in authentication")
    user = users.authenticate(token)
    status: JSON = {"user": {}}
    if user is not None:
        status = {"authenticated": True, "user": user.as_token_review_user()}
        if spec.get("audiences"):
            status["audiences"] = spec["audiences"]
    return json_response(
        {
            "kind": "TokenReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": status,
        },
        status=201,
    )


async def self_subject_review(request: web.Request) -> web.Response:
    """``authentication.k8s.io/v1`` SelfSubjectReview: who the request is (``auth whoami``)."""
    await read_review(request, "SelfSubjectReview")
    return json_response(
        {
            "kind": "SelfSubjectReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": now_rfc3339()},
            "status": {"userInfo": request[USER].as_token_review_user()},
        },
        status=201,
    )


async def self_subject_access_review(request: web.Request) -> web.Response:
    """``authorization.k8s.io/v1`` SelfSubjectAccessReview (``auth can-i``): the RBAC
    decision for the request's own user on the attributes in the spec."""
    body = await read_review(request, "SelfSubjectAccessReview")
    spec = body.get("spec") or {}
    return _access_review("SelfSubjectAccessReview", request[USER], spec)


async def subject_access_review(request: web.Request) -> web.Response:
    """``authorization.k8s.io/v1`` SubjectAccessReview: the RBAC decision for the user,
    uid, groups and extra the spec names (what an authorising proxy asks)."""
    body = await read_review(request, "SubjectAccessReview")
    spec = body.get("spec") or {}
    if not spec.get("user") and not spec.get("groups"):
        error = invalid("spec.user", None, "at least one of user or group must be specified")
        raise StatusError.invalid("", [error], group="authorization.k8s.io", kind="")
    raw_extra = spec.get("extra")
    extra: dict[str, Any] = raw_extra if isinstance(raw_extra, dict) else {}
    subject = UserInfo(
        username=str(spec.get("user") or ""),
        uid=str(spec.get("uid") or ""),
        groups=tuple(str(g) for g in spec.get("groups") or ()),
        extra={str(k): tuple(str(x) for x in v or ()) for k, v in extra.items()},
    )
    return _access_review("SubjectAccessReview", subject, spec)


def _access_review(kind: str, user: UserInfo, spec: Any) -> web.Response:
    resource = spec.get("resourceAttributes")
    non_resource = spec.get("nonResourceAttributes")
    if isinstance(resource, dict):
        attrs = Attributes(
            user,
            str(resource.get("verb") or ""),
            api_group=str(resource.get("group") or ""),
            api_version=str(resource.get("version") or ""),
            resource=str(resource.get("resource") or ""),
            subresource=str(resource.get("subresource") or ""),
            namespace=str(resource.get("namespace") or ""),
            name=str(resource.get("name") or ""),
        )
    elif isinstance(non_resource, dict):
        attrs = Attributes(
            user,
            str(non_resource.get("verb") or ""),
            resource_request=False,
            path=str(non_resource.get("path") or ""),
        )
    else:
        error = invalid(
            "spec.resourceAttributes",
            None,
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        )
        raise StatusError.invalid("", [error], group="authorization.k8s.io", kind="")
    return json_response(
        {
            "kind": kind,
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {},
            "spec": spec,
            "status": {"allowed": users.authorize(attrs)},
        },
        status=201,
    )


async def read_review(request: web.Request, kind: str) -> JSON:
    """A review body, JSON, YAML or (as kubectl sends them) protobuf; like kube-apiserver,
    one without apiVersion/kind is taken as ``kind``."""
    if media_type(request) == protobuf.MEDIA_TYPE:
        try:
            body: Any = protobuf.decode_review(await request.read())
        except protobuf.ProtobufError as exc:
            raise StatusError.bad_request(f"failed to decode the protobuf body: {exc}") from None
    else:
        body = await read_body(request)
    if not isinstance(body, dict) or body.get("kind", kind) != kind:
        raise StatusError.bad_request(f"the body must be a {kind}")
    return body
