"""Check ``upgrades`` (bff/doctor/upgrades.py) on the shapes the bug really leaves.

The seeds (Harvester's captured Upgrades) are consistent. The damaged shapes are
the ones tests/harvester/test_real_controller.py observes with Harvester's own
controller: after the v1.0.4 dismiss body is PUT straight to the API server the
status is gone (``wiped``), then the controller re-initialises the finished upgrade
(``Completed``/``LogReady`` Unknown, ``upgradeState=PreparingLoggingInfra``, the
read-message label still "true"). The real-API-server variant is in
test_doctor_real_apiserver.py.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from bff import captured
from bff.doctor.upgrades import READ_MESSAGE, STATE, damage

UNKNOWN_SINCE = "2026-01-01T00:00:00Z"


def dismissed_and_wiped() -> dict[str, Any]:
    """The v1.0.4 body as the API server stores it: read-message set, status gone."""
    obj = copy.deepcopy(captured.upgrade("succeeded"))
    obj["metadata"]["labels"][READ_MESSAGE] = "true"
    del obj["status"]
    return obj


def restarted() -> dict[str, Any]:
    """What Harvester's controller makes of it (initStatus): a new upgrade, running."""
    obj = dismissed_and_wiped()
    obj["metadata"]["labels"][STATE] = "PreparingLoggingInfra"
    obj["status"] = {
        "conditions": [
            {"type": "Completed", "status": "Unknown", "lastUpdateTime": UNKNOWN_SINCE},
            {"type": "LogReady", "status": "Unknown", "lastUpdateTime": UNKNOWN_SINCE},
        ],
        "previousVersion": "v1.5.0",
        "upgradeLog": "hvst-upgrade-7xn6v-upgradelog",
    }
    return obj


@pytest.mark.parametrize("which", ["succeeded", "failed", "in-progress"])
def test_the_seeds_are_consistent(which: str) -> None:
    assert damage(captured.upgrade(which)) is None


def test_a_correct_dismiss_is_consistent() -> None:
    obj = copy.deepcopy(captured.upgrade("succeeded"))
    obj["metadata"]["labels"][READ_MESSAGE] = "true"
    assert damage(obj) is None


def test_a_restarted_upgrade_is_named_with_what_happened_and_what_to_do() -> None:
    found = damage(restarted())
    assert found is not None
    what, todo = found
    assert what.startswith("Upgrade hvst-upgrade-7xn6v: a dismissed upgrade is running again")
    assert "read-message true, Completed Unknown, state PreparingLoggingInfra" in what
    assert "delete this Upgrade" in todo


def test_a_wiped_status_is_named() -> None:
    found = damage(dismissed_and_wiped())
    assert found is not None
    assert "its status was wiped" in found[0]
    assert "read-message true, Completed missing, state Succeeded" in found[0]


def test_a_new_upgrade_not_yet_initialised_is_not_damage() -> None:
    obj = copy.deepcopy(captured.upgrade("in-progress"))
    del obj["status"]
    obj["metadata"]["labels"].pop(STATE)
    assert damage(obj) is None


@pytest.mark.parametrize(
    ("which", "state", "words"),
    [
        ("succeeded", "Failed", "state Failed disagrees with Completed True"),
        ("failed", "Succeeded", "state Succeeded disagrees with Completed False"),
        ("in-progress", "Succeeded", "state Succeeded but Completed Unknown"),
    ],
)
def test_a_state_that_disagrees_with_completed(which: str, state: str, words: str) -> None:
    obj = copy.deepcopy(captured.upgrade(which))
    obj["metadata"]["labels"][STATE] = state
    found = damage(obj)
    assert found is not None
    assert words in found[0]
