"""Emulator decoding against the CRD's schema: types, apiVersion."""

from __future__ import annotations

from tests.support.backends import BASE, SUCCEEDED, EmulatorBackend


async def test_wrong_type_is_reported_like_the_schema_validator(emu: EmulatorBackend) -> None:
    body = emu.live(SUCCEEDED)
    body["spec"]["logEnabled"] = "yes"
    status, _, answer = await emu.request("PUT", f"{BASE}/{SUCCEEDED}", body)
    assert status == 422
    assert answer["message"] == (
        f'Upgrade.harvesterhci.io "{SUCCEEDED}" is invalid: spec.logEnabled: Invalid value: '
        '"string": spec.logEnabled in body must be of type boolean: "string"'
    )


async def test_wrong_api_version_is_bad_request(emu: EmulatorBackend) -> None:
    body = emu.live(SUCCEEDED)
    body["apiVersion"] = "harvesterhci.io/v1"
    status, _, answer = await emu.request("PUT", f"{BASE}/{SUCCEEDED}", body)
    assert status == 400
    assert answer["message"] == (
        "the API version in the data (harvesterhci.io/v1) does not match the expected API "
        "version (harvesterhci.io/v1beta1)"
    )
