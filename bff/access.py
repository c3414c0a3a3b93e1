"""May this caller read Upgrades here? Asked of the API server, for reads served from the cache.

A read answered from the cache never reaches the API server with the
caller's credentials, so the API server is asked instead:

* passthrough mode: a ``SelfSubjectAccessReview`` sent *with the caller's
  token* (an unknown or expired token is refused by the API server with 401,
  exactly as a direct read would be);
* impersonate mode: a ``SubjectAccessReview`` for the user the TokenReview
  confirmed (name, uid, groups, extra), sent with the BFF's identity.

An ``allowed`` answer is reused for at most ``ttl`` seconds per credential
(a SHA-256 of the token, or of the impersonated user), verb and namespace.
Denials and errors are never reused as allowed: the next request asks again.
Concurrent requests for the same key share one review in flight, so an
expired allow costs one review, not one per request waiting on it.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from bff import errors
from bff.identities import Caller, ImpersonatedCaller, RancherCaller, TokenCaller
from bff.upgrade_resource import GROUP, PLURAL


class Reviews(Protocol):
    """What this module needs from upstream (``bff.kube.reviewers.AccessReviewer`` provides it)."""

    async def self_review(self, caller: TokenCaller, verb: str, namespace: str) -> bool: ...

    async def subject_review(
        self, caller: ImpersonatedCaller, verb: str, namespace: str
    ) -> bool: ...


#: SHA-256 with each kind of credential's prefix already hashed. A digest starts from a
#: copy: OpenSSL then skips finding the algorithm, which under load costs several times
#: what hashing a token does (a cached read's largest share of its own work).
_TOKEN = hashlib.sha256(b"token\0")
_RANCHER = hashlib.sha256(b"rancher\0")
_USER = hashlib.sha256(b"user\0")


def credential_key(caller: Caller) -> bytes:
    """A digest that stands for the caller's credential (the token is never kept)."""
    if isinstance(caller, RancherCaller):
        # One Rancher token acts as a different user's permissions in each cluster.
        digest = _RANCHER.copy()
        digest.update(caller.cluster.encode() + b"\0" + caller.token.encode())
        return digest.digest()
    if isinstance(caller, TokenCaller):  # every cached read
        digest = _TOKEN.copy()
        digest.update(caller.token.encode())
        return digest.digest()
    digest = _USER.copy()  # impersonate mode: every cached read too
    digest.update(caller.username.encode() + b"\0" + caller.uid.encode())
    for group in caller.groups:
        digest.update(b"\0g" + group.encode())
    for key in sorted(caller.extra):
        digest.update(b"\0x" + key.encode())
        for value in caller.extra[key]:
            digest.update(b"\0v" + value.encode())
    return digest.digest()


class AccessChecker:
    def __init__(
        self,
        reviews: Reviews,
        *,
        ttl: float = 10.0,
        max_entries: int = 4096,
        clock: Callable[[], float] = time.monotonic,
        on_review: Callable[[str], None] = lambda result: None,
    ) -> None:
        if ttl > 10.0:
            raise ValueError("access decisions may be reused for at most 10 seconds")
        self._reviews = reviews
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._allowed: OrderedDict[tuple[bytes, str, str], float] = OrderedDict()
        self._in_flight: dict[tuple[bytes, str, str], asyncio.Future[bool]] = {}
        self._on_review = on_review

    async def allows(self, caller: Caller, verb: str, namespace: str) -> bool:
        """Whether ``caller`` may ``verb`` Upgrades in ``namespace``; a denial is False.

        For a question about permissions (``GET /api/{version}/upgrades/access``), where
        a denial is the answer, not a refusal. A review that fails (401 for an unknown
        token, the API server unreachable) still raises.
        """
        allowed = await self._decide(caller, verb, namespace, None)
        if not allowed:
            self._on_review("denied")
        return allowed

    async def check(
        self, caller: Caller, verb: str, namespace: str, *, max_age: float | None = None
    ) -> None:
        """Return if ``caller`` may ``verb`` Upgrades in ``namespace``; raise otherwise.

        401 (the API server does not know the token) and 403 (it knows the
        caller, who may not) come out as the API server's own answers would.
        ``max_age``: reuse an allow only if it is at most so many seconds old (an
        open stream's re-check, which bounds how long a revoked caller keeps it).
        """
        if not await self._decide(caller, verb, namespace, max_age):
            self._on_review("denied")
            who = (
                f'User "{caller.username}"'
                if isinstance(caller, ImpersonatedCaller)
                else ("the caller")
            )
            raise errors.Forbidden(
                f'{PLURAL}.{GROUP} is forbidden: {who} cannot {verb} resource "{PLURAL}" '
                f'in API group "{GROUP}" in the namespace "{namespace}"',
                upstream_status=403,
            )

    def allowed_now(
        self, caller: Caller, verb: str, namespace: str, *, max_age: float | None = None
    ) -> bool:
        """Whether an allow kept for ``caller`` answers now, with no review (a hit).

        False means ask :meth:`check`: a cached read's authorisation, without a
        coroutine for the common case.
        """
        return self._kept((credential_key(caller), verb, namespace), max_age)

    def _kept(self, key: tuple[bytes, str, str], max_age: float | None) -> bool:
        """An allow still fresh enough (counted as a hit); a stale one is dropped."""
        expires = self._allowed.get(key)
        if expires is None:
            return False
        now = self._clock()
        fresh_enough = max_age is None or now - (expires - self._ttl) <= max_age
        if now < expires and fresh_enough:
            self._on_review("hit")
            return True
        del self._allowed[key]
        return False

    async def _decide(
        self, caller: Caller, verb: str, namespace: str, max_age: float | None
    ) -> bool:
        """An allow still fresh enough, a review shared with one in flight, or a new one."""
        key = (credential_key(caller), verb, namespace)
        if self._kept(key, max_age):
            return True
        shared = self._in_flight.get(key)
        if shared is not None:
            return await asyncio.shield(shared)
        return await self._review(key, caller, verb, namespace)

    async def _review(
        self, key: tuple[bytes, str, str], caller: Caller, verb: str, namespace: str
    ) -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            if isinstance(caller, TokenCaller):
                allowed = await self._reviews.self_review(caller, verb, namespace)
            else:
                allowed = await self._reviews.subject_review(caller, verb, namespace)
        except BaseException as exc:
            if isinstance(exc, errors.BffError):
                self._on_review("error")
            future.set_exception(exc)
            future.exception()  # retrieved here: a review nobody shared must not warn
            raise
        finally:
            del self._in_flight[key]
        future.set_result(allowed)
        if allowed:
            self._on_review("allowed")
            if self._ttl > 0:
                self._allowed[key] = self._clock() + self._ttl
                self._allowed.move_to_end(key)
                while len(self._allowed) > self._max:
                    self._allowed.popitem(last=False)
        return allowed
