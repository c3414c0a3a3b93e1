"""The request middleware: request id, metrics, errors, CORS and security headers.

:func:`middlewares` builds it for one app, with what it needs (the trusted
proxies, the allowed origins, the metrics) bound when the app is made: nothing
reads the settings per request.

Every error a client sees is built here, from a :class:`bff.errors.BffError`
or from aiohttp's own HTTP exceptions (404, 405, 413), as Steve-shaped JSON.
Anything unexpected becomes a 500 with a generic sentence; the details go to
the log, never to the client.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
from collections.abc import Awaitable, Callable, Collection, Sequence
from time import perf_counter

from aiohttp import hdrs, web
from aiohttp.typedefs import Middleware
from multidict import istr

from bff import errors
from bff.auth import client_address, forbidden_header
from bff.logs import access_line, request_id, route_template
from bff.metrics import Metrics
from bff.request_keys import ACTION, CLIENT_VERSION

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
#: Header names looked up on every request are given case-folded already (``istr``):
#: a plain ``str`` is folded again on each lookup.
REQUEST_ID_HEADER = istr("X-Request-ID")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
#: On every answer, errors included: what ``doctor --url`` recognises the BFF by behind an
#: Ingress (proxies commonly drop or replace ``Server``, never an unknown header).
SERVED_BY = (istr("X-Served-By"), "harvester-upgrade-bff")
#: What every answer carries unless it set its own: the security headers, a CSP that
#: forbids framing, and :data:`SERVED_BY`. An answer that carries ``X-Served-By``
#: already (the JSON answers, made with all of these) is not looked over again.
ANSWER_HEADERS = {
    **SECURITY_HEADERS,
    "Content-Security-Policy": "frame-ancestors 'none'",
    SERVED_BY[0]: SERVED_BY[1],
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


CORS_METHODS = "GET, PUT, POST"
CORS_HEADERS = "Authorization, Content-Type, X-API-CSRF, X-Request-ID"


#: New request ids: 16 hex digits drawn once per process and a 16-digit count, 32 in all
#: (os.urandom per request was a system call each). An id correlates log lines; it
#: grants nothing, so it must be unique, not unguessable.
_ID_PREFIX = os.urandom(8).hex()
_id_count = itertools.count(1)


def _request_id(request: web.Request) -> str:
    """The client's X-Request-ID when it is a valid one, else a new one."""
    incoming = request.headers.get(REQUEST_ID_HEADER)
    if incoming and _REQUEST_ID.fullmatch(incoming):
        return incoming
    return "%s%016x" % (_ID_PREFIX, next(_id_count))  # noqa: UP031 (a third faster)


def _refusal(request: web.Request, allowed: frozenset[str]) -> web.Response | None:
    """What is answered before any route runs: impersonation headers, CORS preflights.

    Impersonation headers are refused (403) and a CORS preflight is answered (for an
    allowed origin) or refused; any other request gets None and goes to its route.
    """
    if forbidden_header(request.headers.keys()) is not None:
        raise errors.Forbidden(
            "Impersonate-* headers are not accepted from clients",
            code=errors.Code.FORBIDDEN_HEADER,
        )
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        return _preflight(request, allowed)
    return None


def _error_answer(request: web.Request, exc: Exception) -> web.Response:
    """The answer to an error: the one place where an error becomes a response.

    A :class:`bff.errors.BffError` or one of aiohttp's HTTP errors becomes its
    Steve-shaped JSON; anything else is logged in full and answered with a plain 500
    whose message says nothing about what went wrong.
    """
    if isinstance(exc, errors.BffError):
        return error_response(exc)
    if isinstance(exc, web.HTTPException):
        return error_response(_from_http_exception(exc))
    log.exception("unexpected error while serving %s", route_template(request))
    return error_response(
        errors.BffError("internal error; see the BFF's log", code=errors.Code.INTERNAL_ERROR)
    )


def _preflight(request: web.Request, allowed: frozenset[str]) -> web.Response:
    """A CORS preflight: answered for an allowed origin, refused (403) for any other."""
    if request.headers.get("Origin", "").lower() not in allowed:
        raise errors.Forbidden(
            "this origin may not call the API", code=errors.Code.ORIGIN_NOT_ALLOWED
        )
    response = web.Response(status=204)
    response.headers["Access-Control-Allow-Methods"] = CORS_METHODS
    response.headers["Access-Control-Allow-Headers"] = CORS_HEADERS
    response.headers["Access-Control-Max-Age"] = "600"
    return response


def _cors(request: web.Request, response: web.StreamResponse, allowed: frozenset[str]) -> None:
    """CORS headers for the explicitly allowed origins only: echoed, never ``*``.

    Same-origin use (the usual Ingress setup) needs none of this. Errors carry
    them too (they are responses by now), or the browser would hide them from the page.
    """
    origin = request.headers.get(hdrs.ORIGIN)
    if origin is None or not allowed:
        return
    origin = origin.lower()
    if origin in allowed:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Access-Control-Expose-Headers"] = (
            "Warning, X-Upgrade-Bff-Changed, X-Request-ID"
        )
        response.headers.add("Vary", "Origin")


def middlewares(
    *, trusted_proxies: Sequence[str], allowed_origins: Collection[str], metrics_to: Metrics
) -> tuple[Middleware, ...]:
    """The app's middleware, its configuration bound: one, doing in this order

    1. the request id (a valid X-Request-ID or a new one, in the log context) and,
       behind trusted proxies, the client address from X-Forwarded-For;
    2. metrics: requests in flight, and each request counted by version, route,
       action and status, and timed by route, method and status class; and the
       request's access line (:func:`bff.logs.access_line`), with the same route and
       duration (the server's access logger writes only the answers it gives itself);
    3. :func:`_refusal`: refusals before any route (impersonation headers, CORS
       preflights), and :func:`_error_answer`: every error made a response;

    then CORS headers, the request id and the security headers on the answer, so
    every answer carries them, error or not. One middleware rather than a chain of
    six: each layer of aiohttp's chain is a coroutine per request, about a tenth of
    what a cached read costs.
    """
    trusted = tuple(trusted_proxies)
    allowed = frozenset(allowed_origins)
    m = metrics_to
    # Requests in flight: a plain count the gauge reads when scraped (the event loop is
    # the only writer), instead of a locked increment and decrement per request.
    in_flight = [0]
    m.in_flight.set_function(lambda: in_flight[0])

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        rid = _request_id(request)
        # Never reset: aiohttp serves each request in a task of its own, whose copy of
        # the context ends with it.
        request_id.set(rid)
        # The access log's address: the peer's, which is the client's unless a trusted
        # proxy forwarded the request.
        if trusted and hdrs.X_FORWARDED_FOR in request.headers:
            client = client_address(request, trusted)
        else:
            client = request.remote or "-"
        in_flight[0] += 1
        began = perf_counter()
        status = 500
        try:
            try:
                refused = _refusal(request, allowed)
                response = refused if refused is not None else await handler(request)
            except web.HTTPException as exc:
                if exc.status < 400:  # a redirect passes through
                    status = exc.status
                    raise
                response = _error_answer(request, exc)
            except Exception as exc:
                response = _error_answer(request, exc)
            status = response.status
        finally:
            in_flight[0] -= 1
            seconds = perf_counter() - began
            route = route_template(request)
            method = request.method
            m.served(
                request.get(CLIENT_VERSION, "none"), route, request.get(ACTION, "none"),
                method, status, seconds,
            )  # fmt: skip
            access_line(client, method, route, status, seconds, rid)
        # --- the answer's headers: on every answer, errors included ---------------------
        if allowed:
            _cors(request, response, allowed)
        headers = response.headers
        headers[REQUEST_ID_HEADER] = rid
        if SERVED_BY[0] not in headers:
            for key, value in ANSWER_HEADERS.items():
                headers.setdefault(key, value)
        return response

    return (middleware,)
