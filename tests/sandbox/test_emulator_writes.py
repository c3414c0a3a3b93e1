"""Emulator writes: create, PUT (whole-object replace, optimistic lock, generation), label
validation, pruning; each compared with what kube-apiserver answers."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from tests.sandbox.emuclient import BASE, IN_PROGRESS, NS, SUCCEEDED, Emu

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
INVALID_VALUE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


def new_upgrade(**meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "harvesterhci.io/v1beta1",
        "kind": "Upgrade",
        "metadata": {"generateName": "hvst-upgrade-", **meta},
        "spec": {"version": "v1.5.1"},
        "status": {"previousVersion": "v1.5.0"},
    }


async def test_create_assigns_server_fields_and_keeps_status(emu: Emu) -> None:
    before = emu.store.resource_version
    status, _, obj = await emu.call("POST", BASE, new_upgrade())
    assert status == 201
    meta = obj["metadata"]
    assert meta["name"].startswith("hvst-upgrade-")
    assert len(meta["name"]) == len("hvst-upgrade-") + 5
    assert set(meta["name"][-5:]) <= set("bcdfghjklmnpqrstvwxz2456789")
    assert meta["generation"] == 1
    assert meta["namespace"] == NS
    assert meta["resourceVersion"] == str(before + 1)
    assert meta["uid"]
    assert meta["creationTimestamp"].endswith("Z")
    assert obj["status"] == {"previousVersion": "v1.5.0"}
    assert obj["spec"]["logEnabled"] is True  # the CRD's default


async def test_create_twice_is_already_exists(emu: Emu) -> None:
    status, _, body = await emu.call("POST", BASE, new_upgrade(name=SUCCEEDED))
    assert status == 409
    assert body["reason"] == "AlreadyExists"
    assert body["message"] == f'upgrades.harvesterhci.io "{SUCCEEDED}" already exists'


async def test_create_validates_name_and_required_spec(emu: Emu) -> None:
    status, _, body = await emu.call("POST", BASE, new_upgrade(name="Bad_Name"))
    assert status == 422
    assert body["message"].startswith(
        'Upgrade.harvesterhci.io "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": '
        "a lowercase RFC 1123 subdomain"
    )
    no_spec = new_upgrade(name="x")
    del no_spec["spec"]
    status, _, body = await emu.call("POST", BASE, no_spec)
    assert status == 422
    assert body["message"] == 'Upgrade.harvesterhci.io "x" is invalid: spec: Required value'
    status, _, body = await emu.call("POST", BASE, new_upgrade(name="x", resourceVersion="5"))
    assert status == 500
    assert "resourceVersion should not be set on objects to be created" in body["message"]


async def test_put_replaces_status_too(emu: Emu) -> None:
    """The bug this project exists for: a PUT without status wipes it."""
    body = json.loads((FIXTURES / "clients" / "v1.0.4-dismiss-put-body.json").read_text())
    live = emu.live(SUCCEEDED)
    body["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
    status, headers, obj = await emu.call("PUT", f"{BASE}/{SUCCEEDED}", body)
    assert status == 200
    assert "status" not in obj
    assert "status" not in emu.live(SUCCEEDED)
    assert obj["metadata"]["labels"]["harvesterhci.io/read-message"] == "true"
    assert obj["metadata"]["uid"] == live["metadata"]["uid"]
    assert obj["metadata"]["creationTimestamp"] == live["metadata"]["creationTimestamp"]
    # status changed and there is no status subresource, so generation moves
    assert obj["metadata"]["generation"] == 2
    # the Steve fields are pruned, with a warning each
    assert "id" not in obj
    assert headers.getall("Warning") == ['299 - "unknown field \\"id\\""',
                                         '299 - "unknown field \\"type\\""']  # fmt: skip


async def test_put_with_a_stale_resource_version_is_a_conflict(emu: Emu) -> None:
    live = emu.live(SUCCEEDED)
    stale = copy.deepcopy(live)
    stale["metadata"]["resourceVersion"] = "1"
    status, _, body = await emu.call("PUT", f"{BASE}/{SUCCEEDED}", stale)
    assert status == 409
    assert body["message"] == (
        f'Operation cannot be fulfilled on upgrades.harvesterhci.io "{SUCCEEDED}": the object '
        "has been modified; please apply your changes to the latest version and try again"
    )
    assert body["details"] == {"name": SUCCEEDED, "group": "harvesterhci.io", "kind": "upgrades"}
    assert emu.live(SUCCEEDED) == live


async def test_put_without_resource_version_is_invalid(emu: Emu) -> None:
    body = emu.live(SUCCEEDED)
    del body["metadata"]["resourceVersion"]
    status, _, answer = await emu.call("PUT", f"{BASE}/{SUCCEEDED}", body)
    assert status == 422
    assert answer["message"] == (
        f'upgrades.harvesterhci.io "{SUCCEEDED}" is invalid: metadata.resourceVersion: '
        "Invalid value: 0x0: must be specified for an update"
    )


async def test_put_name_must_match_url(emu: Emu) -> None:
    body = emu.live(SUCCEEDED)
    status, _, answer = await emu.call("PUT", f"{BASE}/{IN_PROGRESS}", body)
    assert status == 400
    assert answer["message"] == (
        f"the name of the object ({SUCCEEDED}) does not match the name on the URL ({IN_PROGRESS})"
    )


async def test_put_with_another_uid_fails_its_precondition(emu: Emu) -> None:
    body = emu.live(SUCCEEDED)
    uid = body["metadata"]["uid"]
    body["metadata"]["uid"] = "11111111-1111-1111-1111-111111111111"
    status, _, answer = await emu.call("PUT", f"{BASE}/{SUCCEEDED}", body)
    assert status == 409
    assert answer["message"].endswith(
        "Precondition failed: UID in precondition: 11111111-1111-1111-1111-111111111111, "
        f"UID in object meta: {uid}"
    )


async def test_put_of_the_same_object_writes_nothing(emu: Emu) -> None:
    before = emu.store.resource_version
    body = emu.live(SUCCEEDED)
    status, _, obj = await emu.call("PUT", f"{BASE}/{SUCCEEDED}", body)
    assert status == 200
    assert obj == body
    assert emu.store.resource_version == before


async def test_label_only_change_keeps_generation(emu: Emu) -> None:
    body = emu.live(SUCCEEDED)
    body["metadata"]["labels"]["x"] = "y"
    status, _, obj = await emu.call("PUT", f"{BASE}/{SUCCEEDED}", body)
    assert status == 200
    assert obj["metadata"]["generation"] == 1
    assert int(obj["metadata"]["resourceVersion"]) == emu.store.resource_version


async def test_invalid_label_is_unprocessable_with_causes(emu: Emu) -> None:
    body = emu.live(SUCCEEDED)
    body["metadata"]["labels"]["x"] = "-bad"
    status, _, answer = await emu.call("PUT", f"{BASE}/{SUCCEEDED}", body)
    assert status == 422
    assert answer["reason"] == "Invalid"
    assert answer["message"] == (
        f'Upgrade.harvesterhci.io "{SUCCEEDED}" is invalid: metadata.labels: Invalid value: '
        f'"-bad": {INVALID_VALUE}'
    )
    assert answer["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": f'Invalid value: "-bad": {INVALID_VALUE}',
            "field": "metadata.labels",
        }
    ]


async def test_wrong_type_is_reported_like_the_schema_validator(emu: Emu) -> None:
    body = emu.live(SUCCEEDED)
    body["spec"]["logEnabled"] = "yes"
    status, _, answer = await emu.call("PUT", f"{BASE}/{SUCCEEDED}", body)
    assert status == 422
    assert answer["message"] == (
        f'Upgrade.harvesterhci.io "{SUCCEEDED}" is invalid: spec.logEnabled: Invalid value: '
        '"string": spec.logEnabled in body must be of type boolean: "string"'
    )


async def test_wrong_api_version_is_bad_request(emu: Emu) -> None:
    body = emu.live(SUCCEEDED)
    body["apiVersion"] = "harvesterhci.io/v1"
    status, _, answer = await emu.call("PUT", f"{BASE}/{SUCCEEDED}", body)
    assert status == 400
    assert answer["message"] == (
        "the API version in the data (harvesterhci.io/v1) does not match the expected API "
        "version (harvesterhci.io/v1beta1)"
    )


async def test_every_write_bumps_one_counter(emu: Emu) -> None:
    start = emu.store.resource_version
    for name in (SUCCEEDED, IN_PROGRESS):
        body = emu.live(name)
        body["metadata"]["labels"]["n"] = name[-5:]
        status, _, obj = await emu.call("PUT", f"{BASE}/{name}", body)
        assert status == 200
    assert obj["metadata"]["resourceVersion"] == str(start + 2)
