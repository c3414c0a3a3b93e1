"""Who is calling, and may this request go on?

* The credential is ``Authorization: Bearer`` or the ``R_SESS`` cookie. Without
  one the request ends here with 401, before any upstream call. There is no
  fallback to the BFF's own identity.
* Any inbound ``Impersonate-*`` header (any case, ``_`` for ``-``) is refused
  with 403: only the BFF sets those, and only in impersonate mode.
* A cookie credential on an unsafe method needs ``X-API-CSRF`` equal to the
  ``CSRF`` cookie (Rancher's double-submit convention), and ``Origin``, when
  present, must be the BFF's own or an allowed one.
* In impersonate mode the token is checked with a TokenReview; successful
  reviews are reused for at most ``ttl`` seconds, failures never.
* A ``/k8s/clusters/{cluster}`` id that is not served is a 404 first of all
  (:class:`bff.rancher.Clusters`); in Rancher mode the caller is the token
  for the request's cluster (:class:`bff.identities.RancherCaller`).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Protocol

from aiohttp import hdrs, web

from bff import errors
from bff.identities import AuthMode, Caller, ImpersonatedCaller, RancherCaller, TokenCaller
from bff.rancher import Clusters

SESSION_COOKIE = "R_SESS"
CSRF_COOKIE = "CSRF"
CSRF_HEADER = "X-API-CSRF"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Reviewer(Protocol):
    async def review(self, token: str) -> ImpersonatedCaller | None: ...


#: A header name that asks to impersonate: any case, ``_`` for ``-`` (one name a line).
_IMPERSONATE = re.compile(r"^impersonate[-_][^\n]*", re.IGNORECASE | re.MULTILINE | re.ASCII)


def forbidden_header(names: Iterable[str]) -> str | None:
    """The first inbound header that tries to impersonate, if any.

    Every request's header names are looked over, so all at once (a name never holds
    a line break: the HTTP parser refuses one) rather than one by one, and the pattern
    searched only when the word is there at all: a case-blind pattern search costs
    twice the plain test.
    """
    joined = "\n".join(names)
    if "impersonate" not in joined.lower():
        return None
    found = _IMPERSONATE.search(joined)
    return found[0] if found is not None else None


def _once(request: web.Request, cookie: str) -> None:
    """400 when ``cookie`` is sent more than once (in one Cookie header or several).

    aiohttp keeps the last of them; a browser, a proxy or another parser may keep the
    first, so ``R_SESS=viewer; R_SESS=admin`` would be one user to one reader and
    another to the next. Refused, as a repeated Authorization header is.
    """
    count = 0
    for header in request.headers.getall("Cookie", []):
        for pair in header.split(";"):
            if pair.partition("=")[0].strip() == cookie:
                count += 1
    if count > 1:
        raise errors.BadRequest(
            f"the cookie {cookie} is given more than once; give it once",
            code=errors.Code.AMBIGUOUS_REQUEST,
        )


#: ``Bearer <token>``: the scheme in any case, one space, then one word (whitespace
#: around it is dropped; whitespace is what ``str.split`` splits on).
_BEARER = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] \s*(\S+)\s*")


def credential(request: web.Request) -> tuple[str, bool]:
    """The caller's token and whether it came from a cookie. 401 when there is none."""
    headers = request.headers
    if hdrs.COOKIE in headers:
        _once(request, SESSION_COOKIE)
    given = headers.getall(hdrs.AUTHORIZATION, ())
    if len(given) > 1:
        raise errors.BadRequest(
            "the header Authorization is given more than once; give it once",
            code=errors.Code.AMBIGUOUS_REQUEST,
        )
    header = given[0] if given else ""
    if header:
        bearer = _BEARER.fullmatch(header)
        if bearer is None:
            raise errors.Unauthorized("the Authorization header must be 'Bearer <token>'")
        return bearer[1], False
    cookie = request.cookies.get(SESSION_COOKIE, "")
    if cookie:
        return cookie, True
    raise errors.Unauthorized(
        "no credential: send 'Authorization: Bearer <token>' or the R_SESS session cookie"
    )


def check_origin(request: web.Request, allowed: Iterable[str]) -> None:
    origin = request.headers.get(hdrs.ORIGIN)
    if origin is None:
        return
    origin = origin.lower()
    own = {f"{scheme}://{request.host}".lower() for scheme in ("http", "https")}
    if origin not in own and origin not in set(allowed):
        raise errors.Forbidden(
            f"origin {origin[:100]!r} is not allowed", code=errors.Code.ORIGIN_NOT_ALLOWED
        )


def check_csrf(request: web.Request) -> None:
    _once(request, CSRF_COOKIE)
    if len(request.headers.getall(CSRF_HEADER, [])) > 1:
        raise errors.BadRequest(
            f"the header {CSRF_HEADER} is given more than once; give it once",
            code=errors.Code.AMBIGUOUS_REQUEST,
        )
    sent = request.headers.get(CSRF_HEADER, "")
    expected = request.cookies.get(CSRF_COOKIE, "")
    if not sent or not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise errors.Forbidden(
            f"a cookie-authenticated {request.method} needs the {CSRF_HEADER} header "
            f"equal to the {CSRF_COOKIE} cookie",
            code=errors.Code.INVALID_CSRF_TOKEN,
        )


#: SHA-256 of nothing yet, copied for each token's digest.
_SHA256 = hashlib.sha256()


class ReviewCache:
    """Successful TokenReviews by token digest, for at most ``ttl`` seconds."""

    def __init__(
        self, ttl: float, *, max_entries: int = 4096, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[bytes, tuple[float, ImpersonatedCaller]] = OrderedDict()

    @staticmethod
    def _key(token: str) -> bytes:
        digest = _SHA256.copy()  # as bff.access.credential_key does: no algorithm lookup
        digest.update(token.encode())
        return digest.digest()

    def get(self, token: str) -> ImpersonatedCaller | None:
        key = self._key(token)
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, caller = entry
        if self._clock() >= expires:
            del self._entries[key]
            return None
        return caller

    def put(self, token: str, caller: ImpersonatedCaller) -> None:
        if self._ttl <= 0:
            return
        self._entries[self._key(token)] = (self._clock() + self._ttl, caller)
        self._entries.move_to_end(self._key(token))
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)


class Authenticator:
    def __init__(
        self,
        mode: AuthMode,
        *,
        reviewer: Reviewer | None = None,
        cache: ReviewCache | None = None,
        allowed_origins: Iterable[str] = (),
        on_review: Callable[[str], None] = lambda result: None,
        clusters: Clusters | None = None,
    ) -> None:
        if mode is AuthMode.IMPERSONATE and reviewer is None:
            raise ValueError("impersonate mode needs a token reviewer")
        if mode is AuthMode.IMPERSONATE and clusters is not None and clusters.rancher:
            raise ValueError("Rancher impersonates the user itself: no impersonate mode with it")
        self._clusters = clusters or Clusters(None, None)
        self._mode = mode
        self._reviewer = reviewer
        self._cache = cache or ReviewCache(10.0)
        self._allowed = tuple(allowed_origins)
        self._on_review = on_review

    async def caller(self, request: web.Request) -> Caller:
        """Check the cluster, the credential and browser protections; return who it acts for."""
        token, cluster = self._checked(request)
        known = self._known(token, cluster)
        return known if known is not None else await self._reviewed(token)

    def caller_now(self, request: web.Request) -> Caller | None:
        """:meth:`caller` when no TokenReview is needed, without a coroutine; None when
        one is (impersonate mode, the token's review not kept): ask :meth:`caller`."""
        return self._known(*self._checked(request))

    def _checked(self, request: web.Request) -> tuple[str, str | None]:
        """The request's token and cluster, once the cluster, the credential and the
        browser protections are checked (404, 400, 401 or 403 otherwise)."""
        cluster = self._clusters.upstream(request.match_info)  # 404 before anything else
        token, from_cookie = credential(request)
        check_origin(request, self._allowed)
        if from_cookie and request.method not in SAFE_METHODS:
            check_csrf(request)
        return token, cluster

    def _known(self, token: str, cluster: str | None) -> Caller | None:
        if cluster is not None:
            return RancherCaller(token, cluster)
        if self._mode is AuthMode.PASSTHROUGH:
            return TokenCaller(token)
        cached = self._cache.get(token)
        if cached is not None:
            self._on_review("hit")
        return cached

    async def _reviewed(self, token: str) -> ImpersonatedCaller:
        """A new TokenReview of ``token`` (none is kept for it)."""
        assert self._reviewer is not None
        try:
            reviewed = await self._reviewer.review(token)
        except errors.BffError:
            self._on_review("error")
            raise
        if reviewed is None or not reviewed.username:
            self._on_review("rejected")
            raise errors.Unauthorized("the token was not accepted by the Kubernetes API")
        self._on_review("accepted")
        self._cache.put(token, reviewed)
        return reviewed


def client_address(request: web.Request, trusted: Iterable[str]) -> str:
    """The client's address for logs: X-Forwarded-For only when the peer is a trusted proxy."""
    peer = request.remote or "-"
    forwarded = request.headers.get("X-Forwarded-For")
    if not forwarded or not trusted:
        return peer
    try:
        peer_ip = ipaddress.ip_address(peer)
    except ValueError:
        return peer
    if not any(peer_ip in ipaddress.ip_network(net) for net in trusted):
        return peer
    first = forwarded.split(",")[0].strip()
    try:
        return str(ipaddress.ip_address(first))
    except ValueError:
        return peer
