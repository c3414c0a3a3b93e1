"""bff/admission/configuration.py: the webhook configuration the guard table calls for.

The matchConditions are evaluated here with cel-python, as the API server would
evaluate them before calling the webhook: an owner's write to its own resource is
never sent, the same owner's write to another row's resource is, and so is every
other user's, whatever the spelling of the name.
"""

from __future__ import annotations

from typing import Any

import celpy
import celpy.adapter
import pytest

from bff.admission.configuration import (
    MAX_MATCH_CONDITIONS,
    configuration,
    match_conditions,
    rules,
    url_client_config,
)
from bff.admission.guard import TrustedWriters
from bff.admission.resources import GuardTable, apply_changes, parse_changes

HARVESTER = "system:serviceaccount:harvester-system:harvester"
LOAD_BALANCER = "system:serviceaccount:harvester-system:harvester-load-balancer"
DEFAULT_TABLE = GuardTable()


def _called(conditions: list[dict[str, Any]], user: str, groups: list[str], resource: str) -> bool:
    """Whether the API server calls the webhook: every condition must be true."""
    group, _, plural = resource.partition("/")
    request = {
        "userInfo": {"username": user, "groups": groups},
        "resource": {"group": group, "resource": plural, "version": "v1beta1"},
    }
    env = celpy.Environment()
    activation = {"request": celpy.adapter.json_to_cel(request)}
    results = [env.program(env.compile(c["expression"])).evaluate(activation) for c in conditions]
    return all(bool(r) for r in results)


@pytest.mark.parametrize(
    ("user", "resource", "called"),
    [
        (HARVESTER, "harvesterhci.io/upgrades", False),
        (HARVESTER, "harvesterhci.io/schedulevmbackups", False),
        (HARVESTER, "loadbalancer.harvesterhci.io/ippools", True),
        (LOAD_BALANCER, "loadbalancer.harvesterhci.io/ippools", False),
        (LOAD_BALANCER, "harvesterhci.io/upgrades", True),
        ("system:serviceaccount:harvester-system:Harvester", "harvesterhci.io/upgrades", True),
        ("system:serviceaccount:harvester-system:harvester ", "harvesterhci.io/upgrades", True),
        ("admin", "network.harvesterhci.io/clusternetworks", True),
    ],
)
def test_only_an_owners_writes_to_its_own_resources_skip_the_webhook(
    user: str, resource: str, called: bool
) -> None:
    conditions = match_conditions(DEFAULT_TABLE, TrustedWriters())
    assert _called(conditions, user, ["system:authenticated"], resource) is called


def test_trusted_writers_skip_the_webhook_on_every_resource() -> None:
    trusted = TrustedWriters.parse(["backup-restorer", "group:restorers"])
    conditions = match_conditions(DEFAULT_TABLE, trusted)
    for row in DEFAULT_TABLE.rows:
        resource = f"{row.group}/{row.resource}"
        assert not _called(conditions, "backup-restorer", [], resource)
        assert not _called(conditions, "someone", ["restorers"], resource)
        assert _called(conditions, "someone", ["others"], resource)


def test_one_rule_per_row_for_creates_and_updates() -> None:
    assert [(r["apiGroups"], r["resources"], r["operations"]) for r in rules(DEFAULT_TABLE)] == [
        ([row.group], [row.resource], ["CREATE", "UPDATE"]) for row in DEFAULT_TABLE.rows
    ]


def test_the_document_has_no_selector_that_could_let_a_write_through() -> None:
    doc = configuration(
        DEFAULT_TABLE, TrustedWriters(), url_client_config("https://127.0.0.1:9443", b"PEM")
    )
    (hook,) = doc["webhooks"]
    assert hook["namespaceSelector"] == {}
    assert hook["objectSelector"] == {}
    assert hook["failurePolicy"] == "Fail"


def test_too_many_owners_for_the_api_server_is_an_error() -> None:
    entries = [
        f"things{i}.example.com/v1;owner=system:serviceaccount:x:owner-{i}"
        for i in range(MAX_MATCH_CONDITIONS + 1)
    ]
    table: GuardTable = apply_changes(parse_changes(",".join(entries)))
    with pytest.raises(ValueError, match="at most 64"):
        match_conditions(table, TrustedWriters())
