"""Authentication, impersonation and authorisation, and the review APIs built on them.

The middleware does what kube-apiserver's filter chain does before a handler runs:
bearer token (or anonymous), ``Impersonate-*`` headers, then RBAC on the request's
attributes (the RequestInfo resolver's verb, group, resource, namespace and name). Who is
who, and the rules, live in :mod:`bff.sandbox.identities`.
"""

from __future__ import annotations

from aiohttp import web

from bff.sandbox import identities
from bff.sandbox.httpio import Handler, read_body
from bff.sandbox.identities import Attributes, ImpersonationError, UserInfo
from bff.sandbox.keys import USER
from bff.sandbox.resource import GROUP, JSON, PLURAL, VERSION
from bff.sandbox.status import StatusError

__all__ = ["attributes", "authenticate", "forbidden", "token_review"]


RESOURCE_PREFIX = f"/apis/{GROUP}/{VERSION}/"


def attributes(request: web.Request, user: UserInfo) -> Attributes:
    """What the request asks for, as kube-apiserver's RequestInfo resolver would say."""
    path = request.path
    method = request.method
    if path == "/apis/authentication.k8s.io/v1/tokenreviews":
        return Attributes(user, method.lower() if method != "POST" else "create",
                          api_group="authentication.k8s.io", api_version="v1",
                          resource="tokenreviews")  # fmt: skip
    if path.startswith(RESOURCE_PREFIX):
        parts = path[len(RESOURCE_PREFIX) :].split("/")
        namespace = ""
        if len(parts) >= 2 and parts[0] == "namespaces":
            namespace, parts = parts[1], parts[2:]
        if parts and parts[0] == PLURAL and len(parts) <= 2:
            name = parts[1] if len(parts) == 2 else ""
            verb = {
                "GET": "get",
                "HEAD": "get",
                "POST": "create",
                "PUT": "update",
                "PATCH": "patch",
                "DELETE": "delete",
            }.get(method, method.lower())
            watch = request.query.getone("watch", None)
            if verb == "get" and watch is not None and watch.lower() not in ("false", "0"):
                verb = "watch"
            elif verb == "get" and not name:
                verb = "list"
            elif verb == "delete" and not name:
                verb = "deletecollection"
            return Attributes(user, verb, api_group=GROUP, api_version=VERSION,
                              resource=PLURAL, namespace=namespace, name=name)  # fmt: skip
    return Attributes(user, method.lower(), resource_request=False, path=path)


def forbidden(attrs: Attributes) -> StatusError:
    details = {"name": attrs.name, "group": attrs.api_group, "kind": attrs.resource}
    return StatusError(
        403,
        "Forbidden",
        identities.forbidden_message(attrs),
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
        user = UserInfo(identities.ANONYMOUS, groups=(identities.ALL_UNAUTHENTICATED,))
    else:
        scheme, _, token = header.partition(" ")
        user = identities.authenticate(token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            raise UNAUTHORIZED
    request[USER] = user
    try:
        acting = identities.impersonate(user, list(request.headers.items()))
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
    if not identities.authorize(attrs):
        raise forbidden(attrs)
    return await handler(request)


async def token_review(request: web.Request) -> web.Response:
    body = await read_body(request)
    # Like kube-apiserver, a body without apiVersion/kind is decoded as the endpoint's kind.
    if not isinstance(body, dict) or body.get("kind", "TokenReview") != "TokenReview":
        raise StatusError.bad_request("the body must be a TokenReview")
    spec = body.get("spec") or {}
    token = spec.get("token") or ""
    if not token:
        raise StatusError.bad_request("token is required for TokenReview in authentication")
    user = identities.authenticate(token)
    status: JSON = {"user": {}}
    if user is not None:
        status = {"authenticated": True, "user": user.as_token_review_user()}
        if spec.get("audiences"):
            status["audiences"] = spec["audiences"]
    return web.json_response(
        {
            "kind": "TokenReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": status,
        },
        status=201,
    )
