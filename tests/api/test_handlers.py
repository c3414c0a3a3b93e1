"""bff.api.handlers: which client version a request speaks, where its answer's links
point (the path it came through), and the refusals made before anything goes
upstream. The real app in front of the emulator."""

from __future__ import annotations

from tests.conftest import Stack
from tests.support.backends import NAMESPACE, SUCCEEDED

ADMIN = {"Authorization": "Bearer sandbox-admin"}
STEVE = "/v1/harvester/harvesterhci.io.upgrades"


async def test_an_unknown_client_version_is_a_404_naming_the_supported(
    emulator_stack: Stack,
) -> None:
    answer = await emulator_stack.client.get("/api/v9.9.9/upgrades", headers=ADMIN)
    assert answer.status == 404
    body = await answer.json()
    assert body["code"] == "UnknownVersion"
    assert body["message"].endswith("supported versions: v1.0.4, v1.0.5")
    assert emulator_stack.caller_requests() == []


async def test_the_links_follow_the_path_the_request_came_through(emulator_stack: Stack) -> None:
    client = emulator_stack.client
    old = await (await client.get("/api/v1.0.4/upgrades", headers=ADMIN)).json()
    assert old["links"]["self"] == "/api/v1.0.4/upgrades"
    assert all("actions" not in item for item in old["data"])
    new = await (await client.get(f"/api/v1.0.5/upgrades/{NAMESPACE}/{SUCCEEDED}",
                                  headers=ADMIN)).json()  # fmt: skip
    own = f"/api/v1.0.5/upgrades/{NAMESPACE}/{SUCCEEDED}"
    assert new["links"]["self"] == own
    assert new["actions"]["dismiss"] == f"{own}?action=dismiss"
    steve = await (await client.get(f"{STEVE}/{NAMESPACE}", headers=ADMIN)).json()
    assert {item["links"]["self"] for item in steve["data"]} >= {f"{STEVE}/{NAMESPACE}/{SUCCEEDED}"}


async def test_bad_names_and_selectors_are_refused_before_any_upstream_call(
    emulator_stack: Stack,
) -> None:
    client = emulator_stack.client
    before = len(emulator_stack.caller_requests())
    bad_name = await client.get(f"/api/v1.0.5/upgrades/{NAMESPACE}/Not_A_Name", headers=ADMIN)
    assert (bad_name.status, (await bad_name.json())["code"]) == (400, "InvalidName")
    bad_selector = await client.get(
        "/api/v1.0.5/upgrades", params={"labelSelector": "a in (b"}, headers=ADMIN
    )
    assert (bad_selector.status, (await bad_selector.json())["code"]) == (400, "InvalidSelector")
    twice = await client.get("/api/v1.0.5/upgrades?labelSelector=a&labelSelector=b", headers=ADMIN)
    assert (twice.status, (await twice.json())["code"]) == (400, "AmbiguousRequest")
    assert len(emulator_stack.caller_requests()) == before
    # A good request from the same caller does go upstream (its access review).
    assert (await client.get("/api/v1.0.5/upgrades", headers=ADMIN)).status == 200
    assert len(emulator_stack.caller_requests()) > before
