"""Request middlewares: request id, security headers, errors, metrics.

Every error a client sees is built here, from a :class:`bff.errors.BffError`
or from aiohttp's own HTTP exceptions (404, 405, 413), as Steve-shaped JSON.
Anything unexpected becomes a 500 with a generic sentence; the details go to
the log, never to the client.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from bff import errors
from bff.auth import client_address, forbidden_header
from bff.keys import ACTION, CLIENT_ADDRESS, CLIENT_VERSION, METRICS, SETTINGS
from bff.logs import request_id, route_template

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


def error_response(exc: errors.BffError) -> web.Response:
    response = web.json_response(exc.body(), status=exc.status)
    for key, value in exc.headers.items():
        response.headers[key] = value
    return response


def _from_http_exception(exc: web.HTTPException) -> errors.BffError:
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        return errors.MethodNotAllowed(
            f"{exc.method} is not allowed here; allowed: {allowed}", headers={"Allow": allowed}
        )
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return errors.PayloadTooLarge("the request body is larger than the limit")
    if isinstance(exc, web.HTTPNotFound):
        return errors.NotFound("no such route")
    code = errors.Code.BAD_REQUEST if exc.status < 500 else errors.Code.INTERNAL_ERROR
    error = errors.BffError(exc.reason, code=code)
    error.status = exc.status
    return error


async def answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The handler's response, or the Steve-shaped error it raised (redirects pass through)."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(_from_http_exception(exc))
    except errors.BffError as exc:
        return error_response(exc)


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request id (a valid X-Request-ID or a new one), client address, security headers."""
    incoming = request.headers.get("X-Request-ID", "")
    rid = incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
    token = request_id.set(rid)
    request[CLIENT_ADDRESS] = client_address(request, request.app[SETTINGS].trusted_proxies)
    try:
        response = await answer(request, handler)
        response.headers["X-Request-ID"] = rid
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        response.headers.setdefault("Content-Security-Policy", "frame-ancestors 'none'")
        return response
    finally:
        request_id.reset(token)


CORS_METHODS = "GET, PUT, POST"
CORS_HEADERS = "Authorization, Content-Type, X-API-CSRF, X-Request-ID"


@web.middleware
async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """CORS for the explicitly allowed origins only: echoed, never ``*``.

    Same-origin use (the usual Ingress setup) needs none of this. A preflight
    from any other origin gets no CORS headers, so the browser refuses it.
    """
    origin = request.headers.get("Origin", "").lower()
    allowed = origin in request.app[SETTINGS].allowed_origins
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        if not allowed:
            raise errors.Forbidden(
                "this origin may not call the API", code=errors.Code.ORIGIN_NOT_ALLOWED
            )
        response: web.StreamResponse = web.Response(status=204)
        response.headers["Access-Control-Allow-Methods"] = CORS_METHODS
        response.headers["Access-Control-Allow-Headers"] = CORS_HEADERS
        response.headers["Access-Control-Max-Age"] = "600"
    else:
        # Errors too carry the CORS headers, or the browser hides them from the page.
        response = await answer(request, handler)
    if allowed:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Access-Control-Expose-Headers"] = (
            "Warning, X-Upgrade-Bff-Changed, X-Request-ID"
        )
        response.headers.add("Vary", "Origin")
    return response


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse impersonation headers outright, before any route runs."""
    name = forbidden_header(request.headers.keys())
    if name is not None:
        raise errors.Forbidden(
            "Impersonate-* headers are not accepted from clients", code=errors.Code.FORBIDDEN_HEADER
        )
    return await handler(request)


@web.middleware
async def unexpected(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The last line: an unexpected exception is logged in full and answered with a plain 500."""
    try:
        return await handler(request)
    except (web.HTTPException, errors.BffError):
        raise
    except Exception:
        log.exception("unexpected error while serving %s", route_template(request))
        raise errors.BffError(
            "internal error; see the BFF's log", code=errors.Code.INTERNAL_ERROR
        ) from None


@web.middleware
async def metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
    m = request.app[METRICS]
    m.in_flight.inc()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except errors.BffError as exc:
        status = exc.status
        raise
    finally:
        m.in_flight.dec()
        m.requests.labels(
            request.get(CLIENT_VERSION, "none"),
            route_template(request),
            request.get(ACTION, "none"),
            str(status),
        ).inc()


MIDDLEWARES = (request_context, cors, metrics, guard, unexpected)
