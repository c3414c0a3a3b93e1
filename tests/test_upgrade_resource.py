"""bff.upgrade_resource: the Upgrade resource's names are those of the CRD the product
ships (bff/captured), and the labels it names are those real Upgrades carry."""

from __future__ import annotations

from bff import captured
from bff import upgrade_resource as resource
from bff.label_selectors import label_key_errors


def test_the_names_are_the_crds() -> None:
    crd = captured.crd()
    spec = crd["spec"]
    assert crd["metadata"]["name"] == f"{resource.PLURAL}.{resource.GROUP}"
    assert spec["group"] == resource.GROUP
    assert spec["names"]["kind"] == resource.KIND
    assert spec["names"]["plural"] == resource.PLURAL
    served = [v["name"] for v in spec["versions"] if v.get("served")]
    assert resource.VERSION in served
    assert f"{spec['group']}/{resource.VERSION}" == resource.API_VERSION
    # Steve's type is <group>.<singular>.
    assert f"{spec['group']}.{spec['names']['singular']}" == resource.STEVE_TYPE


def test_the_labels_are_valid_keys_that_real_upgrades_carry() -> None:
    for key in (resource.READ_MESSAGE, resource.UPGRADE_STATE):
        assert label_key_errors(key) == [], key
    states = set()
    for upgrade in captured.upgrades():
        assert upgrade["apiVersion"] == resource.API_VERSION
        assert upgrade["kind"] == resource.KIND
        states.add(upgrade["metadata"]["labels"].get(resource.UPGRADE_STATE))
    # The captured Upgrades include finished ones, the only ones that may be dismissed.
    assert states & resource.FINISHED_STATES
    assert {"Succeeded", "Failed"} == resource.FINISHED_STATES
