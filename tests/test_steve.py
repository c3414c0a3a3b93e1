"""bff.steve: the client versions, and the Steve resource and collection shapes built
from an Upgrade for each (links from the collection URL, actions for v1.0.5 only)."""

from __future__ import annotations

import copy

from bff import steve
from bff.upgrade_resource import STEVE_TYPE

UPGRADE = {
    "apiVersion": "harvesterhci.io/v1beta1",
    "kind": "Upgrade",
    "metadata": {"namespace": "harvester-system", "name": "hvst-upgrade-1", "labels": {}},
    "status": {"previousVersion": "v1.4.0"},
}


def test_the_versions_the_bff_speaks() -> None:
    assert set(steve.VERSIONS) == {"v1.0.4", "v1.0.5"}
    assert steve.VERSIONS["v1.0.5"].actions
    assert not steve.VERSIONS["v1.0.4"].actions
    assert steve.STEVE is steve.V104  # Steve paths behave as v1.0.4


def test_at_sets_the_collection_and_leaves_the_generation_alone() -> None:
    here = steve.V105.at("/base/api/v1.0.5/upgrades")
    assert here.collection_url == "/base/api/v1.0.5/upgrades"
    assert (here.name, here.actions) == ("v1.0.5", True)
    assert steve.V105.collection_url == ""
    assert steve.V105.at("/base/api/v1.0.5/upgrades") is here  # built once per URL


def test_a_v105_resource_links_to_itself_and_offers_both_actions() -> None:
    given = copy.deepcopy(UPGRADE)
    shaped = steve.resource(given, steve.V105.at("/b/api/v1.0.5/upgrades"))
    own = "/b/api/v1.0.5/upgrades/harvester-system/hvst-upgrade-1"
    assert shaped["id"] == "harvester-system/hvst-upgrade-1"
    assert shaped["type"] == STEVE_TYPE
    assert shaped["links"] == {"self": own, "update": own}
    assert shaped["actions"] == {
        "dismiss": f"{own}?action=dismiss",
        "cancel": f"{own}?action=cancel",
    }
    assert shaped["status"] == UPGRADE["status"]
    assert given == UPGRADE  # the object read is not changed


def test_a_v104_resource_has_no_actions() -> None:
    shaped = steve.resource(UPGRADE, steve.V104.at("/v1/harvester/harvesterhci.io.upgrades"))
    assert "actions" not in shaped
    own = "/v1/harvester/harvesterhci.io.upgrades/harvester-system/hvst-upgrade-1"
    assert shaped["links"] == {"self": own, "update": own}


def test_a_collection_counts_its_items_and_keeps_the_revision() -> None:
    listed = {"metadata": {"resourceVersion": "42"}, "items": [UPGRADE, "not an object", UPGRADE]}
    shaped = steve.collection(listed, steve.V105.at("/c"), "/c?labelSelector=a")
    assert shaped["type"] == "collection"
    assert shaped["resourceType"] == STEVE_TYPE
    assert shaped["links"] == {"self": "/c?labelSelector=a"}
    assert shaped["revision"] == "42"
    assert shaped["count"] == 2
    data = shaped["data"]
    assert isinstance(data, list)
    assert [d["id"] for d in data] == ["harvester-system/hvst-upgrade-1"] * 2


def test_an_empty_list_is_an_empty_collection() -> None:
    shaped = steve.collection({}, steve.V104, "/c")
    assert (shaped["count"], shaped["data"], shaped["revision"]) == (0, [], "")
