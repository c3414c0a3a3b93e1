"""The dashboard's "Resume" of a backup schedule against Harvester's real
schedulevmbackup controller (v1.6.0).

On a real kube-apiserver, with the real controller running as Harvester's
ServiceAccount, a ScheduleVMBackup is created and the controller creates its
CronJob. The extension v1.0.4's own Suspend action (its model's
``suspendSchedule``, the real ``save()`` of real Steve's item) suspends it: the
controller suspends the CronJob and records ``status.suspended``. Then its own
Resume action (``resumeSchedule``):

- PUT straight to the API server, the body has no status (``cleanForSave``),
  so ``spec.suspend`` and the wiped ``status.suspended`` agree and the
  controller's ``updateResumeOrSuspend`` does nothing: the CronJob stays
  suspended while the dashboard, which reads ``status.suspended``, shows the
  schedule Active. Scheduled backups have stopped: the bug.
- With the BFF's guard registered, the same body keeps the status, and the
  controller resumes the CronJob and records it.

"The controller has handled the write" is
:meth:`HarvesterStack.schedule_barrier`, never a sleep; the positive outcome
is waited for on the objects, boundedly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.harvester.conftest import Bff, overlay_configuration
from tests.support import shell
from tests.support.harvester import SCHEDULES, HarvesterStack, schedule_vm_backup
from tests.support.real_apiserver import RealApiServer

pytestmark = pytest.mark.real_apiserver

NAMESPACE = "default"
#: Real Steve's collection of schedules (stand-alone Steve, no /v1/harvester prefix).
STEVE_SCHEDULES = f"/v1/harvesterhci.io.schedulevmbackups/{NAMESPACE}"
#: The finalizer wrangler adds for the controller's OnRemove handler.
FINALIZER = "wrangler.cattle.io/schedule-vm-bakcup-controller"
SUSPEND = "action:suspendSchedule"
RESUME = "action:resumeSchedule"


def path(name: str) -> str:
    return SCHEDULES.format(ns=NAMESPACE) + f"/{name}"


def suspended(obj: dict[str, Any]) -> bool:
    """What the dashboard shows: v1.0.4's model state is Suspended iff this is true."""
    return (obj.get("status") or {}).get("suspended") is True


def finalized(obj: dict[str, Any]) -> bool:
    """The controller's finalizer is on (the v1.0.4 save drops it; the controller puts it
    back when it next handles the schedule)."""
    return FINALIZER in (obj["metadata"].get("finalizers") or ())


def suspend_condition(obj: dict[str, Any]) -> str | None:
    conditions = (obj.get("status") or {}).get("conditions") or []
    found = [c["status"] for c in conditions if c["type"] == "BackupSuspend"]
    return found[0] if found else None


def action_body(harvester: HarvesterStack, name: str, action: str) -> dict[str, Any]:
    """What extension v1.0.4's ``action`` PUTs: its model's own action on real Steve's
    item (as the admin, ``exclude=metadata.managedFields`` as the dashboard asks).

    The schedule is first let go quiet (:func:`quiet`), and Steve's item must be
    that version, so the PUT that follows is not refused as a conflict."""
    current = quiet(harvester, name)["metadata"]["resourceVersion"]
    deadline = time.monotonic() + 30.0
    while True:
        status, item = harvester.steve(
            "GET", f"{STEVE_SCHEDULES}/{name}?exclude=metadata.managedFields"
        )
        assert status == 200, item
        if item["metadata"]["resourceVersion"] == current:
            return shell.saved_body("v1.0.4", "schedulevmbackup", item, edit=action)
        assert time.monotonic() < deadline, (current, item["metadata"])
        time.sleep(0.1)


def put(real: RealApiServer, name: str, body: dict[str, Any]) -> dict[str, Any]:
    r = real.request("PUT", path(name), body, token="sandbox-admin")
    assert r.status == 200, (r.status, r.body)
    return dict(r.body)


def suspended_schedule(harvester: HarvesterStack, name: str) -> dict[str, Any]:
    """A new schedule, its CronJob created, then suspended by v1.0.4's Suspend action."""
    shell.built_or_skip()
    real = harvester.real
    r = real.request("POST", SCHEDULES.format(ns=NAMESPACE), schedule_vm_backup(NAMESPACE, name))
    assert r.status == 201, r.body
    _, cron_job = harvester.wait_for_schedule(
        NAMESPACE, name, lambda s, cj: cj is not None and finalized(s),
        "the controller did not create the CronJob",
    )  # fmt: skip
    assert cron_job is not None
    assert not cron_job["spec"].get("suspend")
    body = action_body(harvester, name, SUSPEND)
    assert body["spec"]["suspend"] is True
    put(real, name, body)
    schedule, cron_job = harvester.wait_for_schedule(
        NAMESPACE, name,
        lambda s, cj: (
            cj is not None and cj["spec"].get("suspend") is True and suspended(s) and finalized(s)
        ),
        "the controller did not suspend the schedule",
    )  # fmt: skip
    assert suspend_condition(schedule) == "True"
    return quiet(harvester, name)


def quiet(harvester: HarvesterStack, name: str, timeout: float = 60.0) -> dict[str, Any]:
    """The schedule once the controller has stopped writing it (its own writes, such as
    putting back the finalizer the save dropped, are new events): barriers until one
    passes with the schedule unchanged. The dashboard's next save then reads a
    schedule the controller is not about to change, as a user's click would."""
    deadline = time.monotonic() + timeout
    while True:
        version = harvester.schedule(NAMESPACE, name)["metadata"]["resourceVersion"]
        harvester.schedule_barrier()
        schedule = harvester.schedule(NAMESPACE, name)
        if schedule["metadata"]["resourceVersion"] == version:
            return schedule
        assert time.monotonic() < deadline, f"the controller kept writing {name} for {timeout}s"


def wait_until_guarded(real: RealApiServer, name: str, timeout: float = 30.0) -> None:
    """The API server picks webhook configurations up from an informer: until a dry-run
    write that drops the schedule's finalizers comes back with the guard's warning
    (finalizers, not status: whether status is kept is what the test asserts)."""
    deadline = time.monotonic() + timeout
    while True:
        r = real.request(
            "PATCH", path(name) + "?dryRun=All", {"metadata": {"finalizers": None}},
            content_type="application/merge-patch+json", token="sandbox-admin",
        )  # fmt: skip
        if "harvester-upgrade-bff" in r.headers.get("Warning", ""):
            return
        assert time.monotonic() < deadline, f"the guard was not consulted within {timeout}s"
        time.sleep(0.1)


# --------------------------------------------------------------------------


def test_v104_resume_straight_leaves_the_cron_job_suspended(harvester: HarvesterStack) -> None:
    real = harvester.real
    name = "nightly-straight"
    suspended_schedule(harvester, name)
    body = action_body(harvester, name, RESUME)
    assert body["spec"]["suspend"] is False
    assert "status" not in body  # v1.0.4's cleanForSave dropped it
    answer = put(real, name, body)
    # No status subresource: the PUT replaced the whole object, status included.
    assert not suspended(answer)
    harvester.schedule_barrier()
    schedule = harvester.schedule(NAMESPACE, name)
    cron_job = harvester.cron_job(schedule)
    assert cron_job is not None
    # spec.suspend (false) and the wiped status.suspended (false) agree, so the
    # controller saw nothing to resume: the CronJob is still suspended...
    assert schedule["spec"]["suspend"] is False
    assert cron_job["spec"]["suspend"] is True
    # ...while the dashboard, reading status.suspended, shows the schedule Active.
    assert not suspended(schedule)


def test_v104_resume_through_the_guard_resumes_the_schedule(
    harvester: HarvesterStack, bff_process: Callable[..., Bff]
) -> None:
    real = harvester.real
    name = "nightly-guarded"
    before = suspended_schedule(harvester, name)
    bff = bff_process(webhook=True)
    real.apply(overlay_configuration(bff.webhook_url, real.ca_bundle))
    wait_until_guarded(real, name)
    body = action_body(harvester, name, RESUME)
    assert body["spec"]["suspend"] is False
    assert "status" not in body
    answer = put(real, name, body)
    # The guard kept what the save dropped.
    assert answer["spec"]["suspend"] is False
    assert answer["status"] == before["status"]
    assert FINALIZER in before["metadata"]["finalizers"]
    assert answer["metadata"]["finalizers"] == before["metadata"]["finalizers"]
    # The controller now sees a resume to do, and does it.
    schedule, cron_job = harvester.wait_for_schedule(
        NAMESPACE, name,
        lambda s, cj: cj is not None and cj["spec"].get("suspend") is False and not suspended(s),
        "the controller did not resume the schedule",
    )  # fmt: skip
    assert cron_job is not None
    assert schedule["spec"]["suspend"] is False
    assert suspend_condition(schedule) == "False"
