"""Request middlewares: request id, security headers, errors, metrics.

:func:`middlewares` builds them for one app, with what they need (the trusted
proxies, the allowed origins, the metrics) bound when the app is made: no
middleware reads the settings per request.

Every error a client sees is built here, from a :class:`bff.errors.BffError`
or from aiohttp's own HTTP exceptions (404, 405, 413), as Steve-shaped JSON.
Anything unexpected becomes a 500 with a generic sentence; the details go to
the log, never to the client.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Awaitable, Callable, Collection, Sequence
from time import perf_counter

from aiohttp import web
from aiohttp.typedefs import Middleware

from bff import errors
from bff.auth import client_address, forbidden_header
from bff.logs import request_id, route_template
from bff.metrics import Metrics
from bff.request_keys import ACTION, CLIENT_ADDRESS, CLIENT_VERSION

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
#: On every answer, errors included: what ``doctor --url`` recognises the BFF by behind an
#: Ingress (proxies commonly drop or replace ``Server``, never an unknown header).
SERVED_BY = ("X-Served-By", "harvester-upgrade-bff")
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


def request_context(trusted_proxies: Sequence[str]) -> Middleware:
    """Request id (a valid X-Request-ID or a new one), client address, security headers."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        incoming = request.headers.get("X-Request-ID", "")
        rid = incoming if incoming and _REQUEST_ID.fullmatch(incoming) else os.urandom(16).hex()
        token = request_id.set(rid)
        request[CLIENT_ADDRESS] = client_address(request, trusted_proxies)
        try:
            response = await handler(request)
            response.headers["X-Request-ID"] = rid
            response.headers[SERVED_BY[0]] = SERVED_BY[1]
            for key, value in SECURITY_HEADERS.items():
                response.headers.setdefault(key, value)
            response.headers.setdefault("Content-Security-Policy", "frame-ancestors 'none'")
            return response
        finally:
            request_id.reset(token)

    return middleware


CORS_METHODS = "GET, PUT, POST"
CORS_HEADERS = "Authorization, Content-Type, X-API-CSRF, X-Request-ID"


def cors(allowed_origins: Collection[str]) -> Middleware:
    """CORS headers for the explicitly allowed origins only: echoed, never ``*``.

    Same-origin use (the usual Ingress setup) needs none of this. Errors carry
    them too (they are responses by the time they get here), or the browser
    would hide them from the page.
    """
    allowed = frozenset(allowed_origins)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        origin = request.headers.get("Origin", "").lower()
        if origin in allowed:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Credentials"] = "true"
            response.headers["Access-Control-Expose-Headers"] = (
                "Warning, X-Upgrade-Bff-Changed, X-Request-ID"
            )
            response.headers.add("Vary", "Origin")
        return response

    return middleware


@web.middleware
async def errors_to_responses(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The one place where an error becomes a response (redirects pass through).

    A :class:`bff.errors.BffError` or one of aiohttp's HTTP errors becomes its
    Steve-shaped JSON; anything else is logged in full and answered with a
    plain 500 whose message says nothing about what went wrong.
    """
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(_from_http_exception(exc))
    except errors.BffError as exc:
        return error_response(exc)
    except Exception:
        log.exception("unexpected error while serving %s", route_template(request))
        return error_response(
            errors.BffError("internal error; see the BFF's log", code=errors.Code.INTERNAL_ERROR)
        )


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse impersonation headers outright, before any route runs."""
    name = forbidden_header(request.headers.keys())
    if name is not None:
        raise errors.Forbidden(
            "Impersonate-* headers are not accepted from clients", code=errors.Code.FORBIDDEN_HEADER
        )
    return await handler(request)


def preflight(allowed_origins: Collection[str]) -> Middleware:
    """A CORS preflight: answered for an allowed origin, refused (403) for any other."""
    allowed = frozenset(allowed_origins)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
            return await handler(request)
        if request.headers.get("Origin", "").lower() not in allowed:
            raise errors.Forbidden(
                "this origin may not call the API", code=errors.Code.ORIGIN_NOT_ALLOWED
            )
        response = web.Response(status=204)
        response.headers["Access-Control-Allow-Methods"] = CORS_METHODS
        response.headers["Access-Control-Allow-Headers"] = CORS_HEADERS
        response.headers["Access-Control-Max-Age"] = "600"
        return response

    return middleware


def metrics(m: Metrics) -> Middleware:
    """Requests in flight, and each request counted by version, route, action and status,
    and timed by route, method and status class."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        m.in_flight.inc()
        began = perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:  # a redirect
            status = exc.status
            raise
        finally:
            m.in_flight.dec()
            route = route_template(request)
            m.observe_request(route, request.method, status, perf_counter() - began)
            m.count(
                m.requests,
                request.get(CLIENT_VERSION, "none"),
                route,
                str(request.get(ACTION, "none")),
                str(status),
            )

    return middleware


def middlewares(
    *, trusted_proxies: Sequence[str], allowed_origins: Collection[str], metrics_to: Metrics
) -> tuple[Middleware, ...]:
    """The app's middlewares, outermost first, their configuration bound.

    Errors become responses in exactly one of them, so every middleware outside
    it (headers, CORS, metrics) sees a response, error or not.
    """
    return (
        request_context(trusted_proxies),
        cors(allowed_origins),
        metrics(metrics_to),
        errors_to_responses,
        guard,
        preflight(allowed_origins),
    )
