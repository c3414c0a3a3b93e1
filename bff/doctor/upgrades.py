"""Check ``upgrades``: every Upgrade's read-message label, conditions and ``upgradeState`` agree.

Harvester's controller (v1.5.0, v1.6.0) keeps ``harvesterhci.io/upgradeState`` in
step with the ``Completed`` condition: ``Succeeded`` when it is True, ``Failed``
when it is False, an in-progress state while it is Unknown. The dashboard offers
"Dismiss it" (``harvesterhci.io/read-message: "true"``) on a finished upgrade only.

What the bug leaves behind (reproduced with Harvester's own controller in
tests/harvester/test_real_controller.py):

- *wiped*: the status is gone (no conditions) but the labels still say the upgrade
  finished: a whole-object PUT removed it, and the controller, once it sees the
  Upgrade, takes it for a new one;
- *restarted*: read-message is "true", ``Completed`` is Unknown and the state is an
  in-progress one (``PreparingLoggingInfra`` first): the controller re-initialised a
  finished upgrade after its status was wiped.

Anything else where the state and ``Completed`` disagree is reported as inconsistent.
"""

from __future__ import annotations

from typing import Any

from bff.doctor import report
from bff.doctor.client import DoctorClient
from bff.upgrade_resource import GROUP, PLURAL, VERSION

ID = "upgrades"
READ_MESSAGE = "harvesterhci.io/read-message"
STATE = "harvesterhci.io/upgradeState"
FINISHED = {"True": "Succeeded", "False": "Failed"}


def conditions(obj: dict[str, Any]) -> dict[str, str]:
    status = obj.get("status") or {}
    return {
        str(c.get("type")): str(c.get("status"))
        for c in status.get("conditions") or []
        if isinstance(c, dict)
    }


def damage(obj: dict[str, Any]) -> tuple[str, str] | None:
    """(what happened, what to do) for an Upgrade the bug damaged or left inconsistent."""
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    name = meta.get("name", "?")
    ns = meta.get("namespace", "harvester-system")
    read = labels.get(READ_MESSAGE) == "true"
    state = labels.get(STATE)
    conds = conditions(obj)
    completed = conds.get("Completed")
    seen = (
        f"read-message {'true' if read else 'unset'}, Completed "
        f"{completed or 'missing'}, state {state or 'missing'}"
    )
    inspect = f"kubectl -n {ns} get upgrade {name} -o yaml"
    if completed is None and not conds:
        if state in FINISHED.values() or read:
            return (
                f"Upgrade {name}: its status was wiped ({seen}): a whole-object write removed "
                "it; Harvester's controller will take it for a new upgrade and start it again",
                "Stop the cause first (route the dashboard through the BFF, or enable the "
                f"guard), then check {inspect}; if the cluster already runs its spec.version, "
                "delete this finished Upgrade before Harvester's controller restarts it.",
            )
        return None  # a new Upgrade the controller has not initialised yet
    if completed in FINISHED:
        if state != FINISHED[completed]:
            return (
                f"Upgrade {name}: state {state or 'missing'} disagrees with Completed "
                f"{completed} ({seen})",
                f"Check {inspect}: the controller sets {STATE}={FINISHED[completed]} when "
                "Completed is " + completed + "; a client rewrote the label.",
            )
        return None
    # Completed is Unknown (or another value): the upgrade is, or seems, in progress.
    if read:
        return (
            f"Upgrade {name}: a dismissed upgrade is running again ({seen}): its status was "
            "wiped after 'Dismiss it' and Harvester's controller re-initialised it "
            "(harvester/harvester#7791)",
            f"Route the dashboard through the BFF or enable the guard so it does not happen "
            f"again; then check {inspect} and Harvester's upgrade page: if the cluster already "
            "runs spec.version, delete this Upgrade (Harvester's own way to stop one).",
        )
    if state in FINISHED.values():
        return (
            f"Upgrade {name}: state {state} but Completed {completed} ({seen}): the status no "
            "longer says the upgrade finished",
            f"Check {inspect}: a whole-object write probably replaced its status.",
        )
    return None


async def check(client: DoctorClient, namespace: str) -> report.Check:
    path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}"
    answer = await client.get(path)
    if answer.status != 200:
        return report.skipped(
            ID, f"skipped: listing the Upgrades of {namespace} answered {answer.status}"
        )
    items = answer.body.get("items") or []
    found = [(obj["metadata"]["name"], damage(obj)) for obj in items]
    details = []
    for obj in items:
        labels = obj["metadata"].get("labels") or {}
        details.append(
            f"{obj['metadata']['name']}: state {labels.get(STATE, 'missing')}, Completed "
            f"{conditions(obj).get('Completed', 'missing')}, read-message "
            f"{labels.get(READ_MESSAGE, 'unset')}"
        )
    damaged = [(name, d) for name, d in found if d is not None]
    if damaged:
        return report.problem(
            ID,
            " ".join(what for _, (what, _) in damaged),
            " ".join(todo for _, (_, todo) in damaged),
            details,
        )
    return report.ok(
        ID,
        f"the {len(items)} Upgrade(s) in {namespace} are consistent: labels, conditions and "
        "upgradeState agree",
        details,
    )
