"""The Upgrade resource's names: API group, version, kind, plural, and the labels the BFF reads.

These are facts about Harvester's ``upgrades.harvesterhci.io`` CRD, shared by
the transport, the domain, the Steve shapes and the API description.
"""

from __future__ import annotations

GROUP = "harvesterhci.io"
VERSION = "v1beta1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "Upgrade"
PLURAL = "upgrades"
#: The type Steve gives an Upgrade (``<group>.<singular>``).
STEVE_TYPE = "harvesterhci.io.upgrade"

#: The one label the BFF ever writes: the dashboard's "message read".
READ_MESSAGE = "harvesterhci.io/read-message"
#: Set by Harvester's upgrade controller: where the upgrade is.
UPGRADE_STATE = "harvesterhci.io/upgradeState"
#: Dismissing is only allowed once Harvester has finished; mid-upgrade it would
#: make Harvester delete the upgrade's logs.
FINISHED_STATES = frozenset({"Succeeded", "Failed"})
