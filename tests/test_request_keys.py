"""bff.request_keys: every ``Action`` is what some request of the real app is counted
as (no member goes unused, no request goes uncounted), ``ACTIONS`` are the actions a
v1.0.5 client may ask for, and ``CLIENT_VERSION`` holds a served version's name."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from bff.api.paths import STEVE_COLLECTION
from bff.request_keys import ACTIONS, Action
from bff.steve import STEVE, VERSIONS
from tests.conftest import Stack

ADMIN = {"Authorization": "Bearer sandbox-admin"}
ONE = "/api/v1.0.5/upgrades/harvester-system/hvst-upgrade-7xn6v"


async def _counted(stack: Stack) -> set[tuple[str, str, str]]:
    """(client version, action, status) of every request counted so far."""
    text = await (await stack.client.get("/metrics")).text()
    return {
        (s.labels["client_version"], s.labels["action"], s.labels["status"])
        for family in text_string_to_metric_families(text)
        if family.name == "bff_http_requests"
        for s in family.samples
        if s.name == "bff_http_requests_total"
    }


async def test_every_action_is_what_some_request_is_counted_as(emulator_stack: Stack) -> None:
    client = emulator_stack.client
    await client.get("/healthz")  # not about Upgrades: no version, no action
    await client.get("/api/v1.0.5/upgrades", headers=ADMIN)  # list
    await client.get(ONE, headers=ADMIN)  # get
    await client.get("/api/v1.0.5/upgrades/access", headers=ADMIN)  # access
    async with client.get("/api/v1.0.5/upgrades/events", headers=ADMIN) as events:
        assert events.status == 200  # watch: the stream's headers are enough
    await client.put(ONE, headers=ADMIN, json={})  # put (refused: not an Upgrade)
    for name in ("dismiss", "cancel", "frobnicate"):  # the last is an unknown action
        await client.post(f"{ONE}?action={name}", headers=ADMIN)
    steve = await client.get(f"{STEVE_COLLECTION}/{ONE.split('/', 4)[4]}", headers=ADMIN)
    assert steve.status == 200
    counted = await _counted(emulator_stack)
    assert {action for _, action, _ in counted} == {a.value for a in Action} | {"none"}
    # "none": requests that are not about Upgrades (the probe).
    assert {v for v, a, _ in counted if a == "none"} == {"none"}
    # The Steve paths are the dashboard's own: counted as the version that calls them.
    assert {v for v, _, _ in counted} == {"v1.0.5", STEVE.name, "none"}
    unknown = {s for _, a, s in counted if a == Action.ACTION.value}
    assert unknown
    assert all(s.startswith("4") for s in unknown)


def test_actions_are_the_v105_actions_and_versions_name_themselves() -> None:
    assert [a.value for a in ACTIONS] == ["dismiss", "cancel"]
    assert all(name == version.name for name, version in VERSIONS.items())
