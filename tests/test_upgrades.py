"""bff.upgrades.UpgradeService against a fake gateway implementing the Protocol.

No HTTP here: the fake answers ``get`` from a script of objects and ``mark_read``
from a script of outcomes (an object, or a 409), and records every call, so the
retry loop's decisions are visible one by one.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import pytest

from bff import captured, errors
from bff.identities import Caller, TokenCaller
from bff.upgrade_resource import READ_MESSAGE
from bff.upgrades import Gateway, UpgradeService

NS, NAME = "harvester-system", "hvst-upgrade-7xn6v"
CALLER = TokenCaller("t")
CONFLICT = errors.UpstreamConflict("the object has been modified", upstream_status=409)


def live(resource_version: str, *, uid: str | None = None, read: bool = False) -> dict[str, Any]:
    obj = captured.upgrade("succeeded")
    obj["metadata"]["resourceVersion"] = resource_version
    if uid is not None:
        obj["metadata"]["uid"] = uid
    labels = obj["metadata"]["labels"]
    labels.pop(READ_MESSAGE, None)
    if read:
        labels[READ_MESSAGE] = "true"
    return obj


@dataclass
class FakeGateway:
    """Answers from scripts; records (method, resourceVersion) of every call."""

    reads: list[dict[str, Any]]
    patches: list[dict[str, Any] | Exception] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)

    async def get(self, caller: Caller, namespace: str, name: str) -> dict[str, object]:
        obj = self.reads.pop(0)
        self.calls.append(("get", obj["metadata"]["resourceVersion"]))
        return copy.deepcopy(obj)

    async def list(
        self, caller: Caller, namespace: str, label_selector: str = ""
    ) -> dict[str, object]:
        raise AssertionError("not used here")

    async def mark_read(
        self, caller: Caller, namespace: str, name: str, resource_version: str
    ) -> dict[str, object]:
        self.calls.append(("mark_read", resource_version))
        answer = self.patches.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def service(gateway: FakeGateway, attempts: int = 3) -> UpgradeService:
    as_protocol: Gateway = gateway  # the fake satisfies the Protocol (mypy checks this line)
    return UpgradeService(as_protocol, max_attempts=attempts)


async def test_a_conflict_is_retried_against_a_fresh_read() -> None:
    gateway = FakeGateway(reads=[live("1"), live("2")], patches=[CONFLICT, live("3", read=True)])
    outcome = await service(gateway).dismiss(CALLER, NS, NAME)
    assert outcome.changed
    assert outcome.conflicts == 1
    assert gateway.calls == [("get", "1"), ("mark_read", "1"), ("get", "2"), ("mark_read", "2")]


async def test_a_retry_finds_the_label_already_set_and_writes_nothing_more() -> None:
    gateway = FakeGateway(reads=[live("1"), live("2", read=True)], patches=[CONFLICT])
    outcome = await service(gateway).dismiss(CALLER, NS, NAME)
    assert not outcome.changed
    assert outcome.conflicts == 1
    assert [c for c in gateway.calls if c[0] == "mark_read"] == [("mark_read", "1")]


async def test_a_put_whose_object_was_recreated_during_the_retry_is_refused() -> None:
    body = captured.client_body("v1.0.5")
    first = live("1", uid=body["metadata"]["uid"])
    recreated = live("2", uid="another-incarnation")
    gateway = FakeGateway(reads=[first, recreated], patches=[CONFLICT])
    with pytest.raises(errors.Conflict) as refused:
        await service(gateway).put(CALLER, NS, NAME, body)
    assert refused.value.code == errors.Code.UID_MISMATCH
    assert gateway.calls == [("get", "1"), ("mark_read", "1"), ("get", "2")], "no second patch"


async def test_a_put_retries_when_the_object_is_still_the_same_one() -> None:
    body = captured.client_body("v1.0.5")
    uid = body["metadata"]["uid"]
    gateway = FakeGateway(
        reads=[live("1", uid=uid), live("2", uid=uid)],
        patches=[CONFLICT, live("3", uid=uid, read=True)],
    )
    outcome = await service(gateway).put(CALLER, NS, NAME, body)
    assert outcome.changed
    assert outcome.conflicts == 1


async def test_retries_are_bounded_and_exhaustion_is_a_clear_409() -> None:
    gateway = FakeGateway(
        reads=[live(str(n)) for n in range(1, 4)], patches=[CONFLICT, CONFLICT, CONFLICT]
    )
    with pytest.raises(errors.Conflict) as exhausted:
        await service(gateway, attempts=3).dismiss(CALLER, NS, NAME)
    assert exhausted.value.code == errors.Code.CONFLICT_RETRIES_EXHAUSTED
    assert exhausted.value.upstream_status == 409
    assert [c for c in gateway.calls if c[0] == "mark_read"] == [
        ("mark_read", "1"),
        ("mark_read", "2"),
        ("mark_read", "3"),
    ]


async def test_an_upgrade_that_restarted_during_the_retry_is_not_dismissed() -> None:
    running = live("2")
    running["metadata"]["labels"]["harvesterhci.io/upgradeState"] = "Upgrading"
    gateway = FakeGateway(reads=[live("1"), running], patches=[CONFLICT])
    with pytest.raises(errors.Conflict) as refused:
        await service(gateway).dismiss(CALLER, NS, NAME)
    assert refused.value.code == errors.Code.UPGRADE_IN_PROGRESS
    gateway2 = FakeGateway(reads=[live("1"), copy.deepcopy(running)], patches=[CONFLICT])
    outcome = await service(gateway2).cancel(CALLER, NS, NAME)
    assert not outcome.changed, "cancel never refuses, and writes nothing mid-upgrade"


def test_at_least_one_attempt() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        UpgradeService(FakeGateway(reads=[]), max_attempts=0)
