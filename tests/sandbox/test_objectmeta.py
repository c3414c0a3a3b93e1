"""Emulator metadata validation: names, labels, and the 422 causes kube-apiserver reports."""

from __future__ import annotations

from tests.support.backends import BASE, INVALID_VALUE, SUCCEEDED, EmulatorBackend, new_upgrade


async def test_create_validates_name_and_required_spec(emu: EmulatorBackend) -> None:
    status, _, body = await emu.request("POST", BASE, new_upgrade(name="Bad_Name"))
    assert status == 422
    assert body["message"].startswith(
        'Upgrade.harvesterhci.io "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": '
        "a lowercase RFC 1123 subdomain"
    )
    no_spec = new_upgrade(name="x")
    del no_spec["spec"]
    status, _, body = await emu.request("POST", BASE, no_spec)
    assert status == 422
    assert body["message"] == 'Upgrade.harvesterhci.io "x" is invalid: spec: Required value'
    status, _, body = await emu.request("POST", BASE, new_upgrade(name="x", resourceVersion="5"))
    assert status == 500
    assert "resourceVersion should not be set on objects to be created" in body["message"]


async def test_invalid_label_is_unprocessable_with_causes(emu: EmulatorBackend) -> None:
    body = emu.live(SUCCEEDED)
    body["metadata"]["labels"]["x"] = "-bad"
    status, _, answer = await emu.request("PUT", f"{BASE}/{SUCCEEDED}", body)
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
