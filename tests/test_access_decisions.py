"""Access decisions for reads from the cache (bff.access): what an allow is reused for.

(Named apart from tests/sandbox/test_access.py, the emulator's authorizer: pytest
needs unique basenames here.)

An allow is keyed by the caller's whole identity: the same username in other groups
(impersonate mode) is a different caller and is asked about again. An open stream's
re-check reuses an allow only if it is young enough (``max_age``).
"""

from __future__ import annotations

import hashlib

import pytest

from bff import errors
from bff.access import AccessChecker, credential_key
from bff.identities import ImpersonatedCaller, RancherCaller, TokenCaller


class GroupRbac:
    """Stands in for the API server's SubjectAccessReview: members of one group may read."""

    def __init__(self, group: str) -> None:
        self.group = group
        self.asked: list[tuple[str, ...]] = []

    async def self_review(self, caller: TokenCaller, verb: str, namespace: str) -> bool:
        raise AssertionError("impersonate mode asks SubjectAccessReviews only")

    async def subject_review(self, caller: ImpersonatedCaller, verb: str, namespace: str) -> bool:
        self.asked.append(caller.groups)
        return self.group in caller.groups


async def test_an_allow_is_never_reused_for_the_same_user_in_other_groups() -> None:
    rbac = GroupRbac("upgrade-viewers")
    checker = AccessChecker(rbac, ttl=10.0)
    member = ImpersonatedCaller("alice", "uid-1", ("upgrade-viewers",))
    outsider = ImpersonatedCaller("alice", "uid-1", ("contractors",))
    assert credential_key(member) != credential_key(outsider)
    await checker.check(member, "get", "harvester-system")
    await checker.check(member, "get", "harvester-system")  # reused: one review so far
    assert rbac.asked == [("upgrade-viewers",)]
    with pytest.raises(errors.Forbidden):
        await checker.check(outsider, "get", "harvester-system")
    assert rbac.asked == [("upgrade-viewers",), ("contractors",)]


async def test_an_allow_older_than_max_age_is_asked_again() -> None:
    now = [100.0]
    rbac = GroupRbac("upgrade-viewers")
    checker = AccessChecker(rbac, ttl=10.0, clock=lambda: now[0])
    member = ImpersonatedCaller("alice", "uid-1", ("upgrade-viewers",))
    await checker.check(member, "watch", "harvester-system")
    now[0] += 3.0
    await checker.check(member, "watch", "harvester-system", max_age=5.0)  # young enough
    assert len(rbac.asked) == 1
    await checker.check(member, "watch", "harvester-system", max_age=2.0)  # too old
    assert len(rbac.asked) == 2


async def test_allowed_now_answers_from_kept_allows_only_and_never_asks() -> None:
    """A cached read's first question: a kept allow answers it (a hit); anything else,
    never asked, and not a denial (False only says: ask ``check``)."""
    now = [100.0]
    results: list[str] = []
    rbac = GroupRbac("upgrade-viewers")
    checker = AccessChecker(rbac, ttl=10.0, clock=lambda: now[0], on_review=results.append)
    member = ImpersonatedCaller("alice", "uid-1", ("upgrade-viewers",))
    outsider = ImpersonatedCaller("alice", "uid-1", ("contractors",))
    assert not checker.allowed_now(member, "get", "harvester-system")
    assert rbac.asked == []
    await checker.check(member, "get", "harvester-system")
    assert checker.allowed_now(member, "get", "harvester-system")
    assert not checker.allowed_now(member, "list", "harvester-system")  # another verb
    assert not checker.allowed_now(member, "get", "default")  # another namespace
    assert not checker.allowed_now(outsider, "get", "harvester-system")  # another caller
    with pytest.raises(errors.Forbidden):
        await checker.check(outsider, "get", "harvester-system")
    assert not checker.allowed_now(outsider, "get", "harvester-system")  # denials are not kept
    now[0] += 10.0
    assert not checker.allowed_now(member, "get", "harvester-system")  # expired
    assert results == ["allowed", "hit", "denied"]
    assert len(rbac.asked) == 2


def test_a_credentials_key_is_its_sha256_whatever_came_before() -> None:
    """Each key is the digest of its own prefix and credential: the shared starting
    states are copied, never hashed into."""
    keys = [credential_key(c) for c in (TokenCaller("a"), TokenCaller("b"), TokenCaller("a"))]
    assert keys[0] == keys[2] == hashlib.sha256(b"token\0a").digest()
    assert keys[1] == hashlib.sha256(b"token\0b").digest()
    rancher = [credential_key(RancherCaller("t", cluster=c)) for c in ("c-1", "c-2", "c-1")]
    assert rancher[0] == rancher[2] == hashlib.sha256(b"rancher\0c-1\0t").digest()
    assert rancher[1] != rancher[0]
    user = ImpersonatedCaller("alice", uid="u1", groups=("g1",), extra={"k": ("v",)})
    expected = hashlib.sha256(b"user\0alice\0u1\0gg1\0xk\0vv").digest()
    assert credential_key(user) == credential_key(user) == expected
