"""``harvester-upgrade-bff demo``: the bug and the fix, step by step, against a live sandbox.

It starts the sandbox in this process (emulator, simulated controller and BFF, on free
loopback ports), then:

1. reads the finished upgrade's status from the cluster;
2. sends extension v1.0.4's dismiss body straight to the cluster, with the live
   ``resourceVersion`` it fetched itself: the PUT wipes status and the simulated
   controller re-initialises the upgrade (shown from its log and its counter);
3. sends the same kind of body through the BFF for a second finished upgrade: status
   intact, ``read-message`` set, and the response's headers say what happened;
4. calls the v1.0.5 dismiss action;
5. tries to dismiss an upgrade that is still in progress: refused, nothing written;
6. repeats step 2 on a second sandbox started with the cluster guard on (``sandbox
   --webhook-port``): the emulator consults the admission webhook, which puts status
   back into the PUT, and the controller re-initialises nothing;
7. edits an IPPool's description as extension v1.0.4 saves it (the same stripped
   whole-object PUT): straight to the first sandbox its IP allocations are lost, and
   with the guard on they are kept while the description changes. No load-balancer
   controller is simulated: the step shows what the save stores.

Every step checks what it claims and the command exits 0 only when every check held,
so it doubles as a smoke test of the whole stack. Colour only on a terminal, and
never when ``NO_COLOR`` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TextIO

import aiohttp

from bff.sandbox.controller import SimulatedController
from bff.sandbox.legacy_save import steve_item, v104_body
from bff.sandbox.runner import running
from bff.settings import Settings

__all__ = ["legacy_dismiss_body", "main", "run_demo"]

NAMESPACE = "harvester-system"
SUCCEEDED, IN_PROGRESS, FAILED = "hvst-upgrade-7xn6v", "hvst-upgrade-zjft7", "hvst-upgrade-fl4k2"
UPGRADES = f"/apis/harvesterhci.io/v1beta1/namespaces/{NAMESPACE}/upgrades"
IPPOOLS = "/apis/loadbalancer.harvesterhci.io/v1beta1/ippools"
POOL = "vip-pool"
READ = "harvesterhci.io/read-message"
STATE = "harvesterhci.io/upgradeState"
TOKEN = "sandbox-admin"  # noqa: S105 (the sandbox's public, loopback-only token)
#: How long to wait for the simulated controller to act on a write (bounded, not a target).
SETTLE_SECONDS = 10.0
_SHOWN_HEADERS = ("Content-Type", "X-Upgrade-Bff-Changed", "Warning")

JSON = dict[str, Any]


def legacy_dismiss_body(obj: Mapping[str, Any]) -> JSON:
    """The body extension v1.0.2-v1.0.4 PUTs on "Dismiss it", for the object ``obj``:
    ``read-message: "true"`` set on its Steve item, then the v1.0.4 save
    (:func:`bff.sandbox.legacy_save.v104_body`); the shape of
    ``bff/captured/clients/v1.0.4-dismiss-put-body.json``.
    """
    item = steve_item(obj, "harvesterhci.io.upgrade")
    item["metadata"]["labels"] = {**(item["metadata"].get("labels") or {}), READ: "true"}
    return v104_body(item)


# --- output ---------------------------------------------------------------------------


class Printer:
    """Narration with optional colour; every check is recorded."""

    def __init__(self, out: TextIO, colour: bool) -> None:
        self.out = out
        self.colour = colour
        self.failures: list[str] = []
        self.checks = 0

    def _paint(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.colour else text

    def line(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def step(self, number: int, title: str) -> None:
        self.line()
        self.line(self._paint("1", f"{number}. {title}"))

    def detail(self, text: str) -> None:
        self.line(f"   {text}")

    def dim(self, text: str) -> None:
        self.line("   " + self._paint("2", text))

    def check(self, ok: bool, text: str) -> None:
        self.checks += 1
        if ok:
            self.line("   " + self._paint("32", "ok  ") + " " + text)
        else:
            self.failures.append(text)
            self.line("   " + self._paint("31", "FAIL") + " " + text)

    def absent(self, text: str) -> None:
        self.line("   " + self._paint("33", "absent") + " " + text)

    def state(self, when: str, obj: Mapping[str, Any] | None) -> None:
        """A compact view of labels and conditions: one line each."""
        labels, conditions = summary(obj)
        self.line(f"   {when:<7} labels      {labels}")
        self.line(f"   {'':<7} conditions  {conditions}")


def summary(obj: Mapping[str, Any] | None) -> tuple[str, str]:
    if obj is None:
        return "(no object)", ""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    shown = " ".join(
        f"{key.removeprefix('harvesterhci.io/')}={value}" for key, value in sorted(labels.items())
    )
    status = obj.get("status")
    if not status:
        conditions = "(no status at all)"
    else:
        conditions = (
            " ".join(f"{c.get('type')}={c.get('status')}" for c in status.get("conditions") or [])
            or "(none)"
        )
    return shown or "(none)", conditions


def conditions_of(obj: Mapping[str, Any] | None) -> dict[str, str]:
    status = (obj or {}).get("status") or {}
    return {str(c.get("type")): str(c.get("status")) for c in status.get("conditions") or []}


def labels_of(obj: Mapping[str, Any] | None) -> dict[str, str]:
    return dict(((obj or {}).get("metadata") or {}).get("labels") or {})


def resource_version(obj: Mapping[str, Any]) -> str:
    return str(obj["metadata"]["resourceVersion"])


# --- talking to the sandbox ----------------------------------------------------------


@dataclass
class Answer:
    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


class Client:
    def __init__(self, session: aiohttp.ClientSession, kube_url: str, bff_url: str) -> None:
        self.session = session
        self.kube_url = kube_url
        self.bff_url = bff_url

    async def call(self, method: str, url: str, body: Any = None) -> Answer:
        headers = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"}
        async with self.session.request(method, url, json=body, headers=headers) as response:
            data = await response.json(content_type=None)
            shown = {k: response.headers[k] for k in _SHOWN_HEADERS if k in response.headers}
            return Answer(response.status, data, shown, response.headers.getall("Warning", []))

    async def cluster_get(self, name: str) -> JSON:
        answer = await self.call("GET", f"{self.kube_url}{UPGRADES}/{name}")
        if answer.status != 200:
            raise RuntimeError(f"GET {name} from the emulator answered {answer.status}")
        return answer.body  # type: ignore[no-any-return]


class ControllerLog(logging.Handler):
    """The simulated controller's log lines, kept to be shown."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    @contextlib.contextmanager
    def attached(self) -> Iterator[ControllerLog]:
        logger = logging.getLogger("bff.sandbox.controller")
        old_level, old_propagate = logger.level, logger.propagate
        logger.addHandler(self)
        logger.setLevel(logging.INFO)
        logger.propagate = False
        try:
            yield self
        finally:
            logger.removeHandler(self)
            logger.setLevel(old_level)
            logger.propagate = old_propagate


async def wait_for_reinitialisation(controller: SimulatedController, before: int) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_SECONDS
    while loop.time() < deadline:
        if controller.reinitialisations > before:
            return True
        await asyncio.sleep(0.05)
    return False


# --- the steps -----------------------------------------------------------------------


async def _steps(
    p: Printer, c: Client, controller: SimulatedController, log: ControllerLog, settings: Settings
) -> None:
    # 1. The finished upgrade as the cluster holds it.
    p.step(1, f"The finished upgrade {SUCCEEDED}, as the cluster holds it")
    p.dim(f"GET {UPGRADES}/{SUCCEEDED}  (straight from the API emulator)")
    finished = await c.cluster_get(SUCCEEDED)
    p.state("now", finished)
    p.check(
        labels_of(finished).get(STATE) == "Succeeded"
        and conditions_of(finished).get("Completed") == "True",
        "upgradeState=Succeeded and Completed=True",
    )

    # 2. The bug: extension v1.0.4's dismiss body PUT straight to the cluster.
    p.step(2, "The bug: extension v1.0.4's dismiss body, PUT straight to the cluster")
    live = await c.cluster_get(SUCCEEDED)
    body = legacy_dismiss_body(live)
    p.state("before", live)
    p.dim(
        f"PUT {UPGRADES}/{SUCCEEDED}  body without status, "
        f"live resourceVersion {resource_version(live)}"
    )
    count_before = controller.reinitialisations
    first_log = len(log.lines)
    put = await c.call("PUT", f"{c.kube_url}{UPGRADES}/{SUCCEEDED}", body)
    p.detail(f"-> {put.status}; what the API server stored:")
    p.state("stored", put.body if put.status == 200 else None)
    p.check(
        put.status == 200 and not (put.body or {}).get("status"),
        "the PUT succeeded and wiped status (the CRD has no status subresource)",
    )
    reinitialised = await wait_for_reinitialisation(controller, count_before)
    after = await c.cluster_get(SUCCEEDED)
    p.state("after", after)
    for message in log.lines[first_log:]:
        p.dim(f"controller: {message}")
    p.detail(f"controller re-initialisations: {count_before} -> {controller.reinitialisations}")
    p.check(
        reinitialised and SUCCEEDED in controller.reinitialised,
        "the simulated controller re-initialised the finished upgrade",
    )
    p.check(
        labels_of(after).get(STATE) == "PreparingLoggingInfra"
        and conditions_of(after).get("Completed") == "Unknown",
        "it starts over: upgradeState=PreparingLoggingInfra, Completed=Unknown",
    )

    # 3. The fix: the same kind of body through the BFF, for the second finished upgrade.
    p.step(3, f"The fix: the same v1.0.4 body through the BFF, for {FAILED} (Failed)")
    live = await c.cluster_get(FAILED)
    p.state("before", live)
    count_before = controller.reinitialisations
    path = f"/api/v1.0.4/upgrades/{NAMESPACE}/{FAILED}"
    p.dim(f"PUT {path}  body without status, resourceVersion {resource_version(live)}")
    put = await c.call("PUT", f"{c.bff_url}{path}", legacy_dismiss_body(live))
    p.detail(f"-> {put.status}")
    for name, value in put.headers.items():
        if name != "Warning":
            p.detail(f"   {name}: {value}")
    for warning in put.warnings:
        p.detail(f"   Warning: {warning}")
    await controller.wait_synced(resource_version(put.body) if put.status == 200 else "0")
    after = await c.cluster_get(FAILED)
    p.state("after", after)
    p.check(put.status == 200, "200 OK")
    p.check(
        put.headers.get("X-Upgrade-Bff-Changed") == "true",
        "X-Upgrade-Bff-Changed: true (one label patch was sent upstream)",
    )
    p.check(
        any("status in the request body was ignored" in w for w in put.warnings),
        "a Warning header says the missing status was ignored",
    )
    p.check(after.get("status") == live.get("status"), "status is byte-for-byte what it was")
    p.check(
        labels_of(after).get(READ) == "true" and labels_of(after).get(STATE) == "Failed",
        "read-message=true is set and upgradeState stays Failed",
    )
    p.check(
        controller.reinitialisations == count_before,
        "the simulated controller re-initialised nothing",
    )

    # 4. The v1.0.5 action.
    p.step(4, f"The v1.0.5 dismiss action on {FAILED}")
    path = f"/api/v1.0.5/upgrades/{NAMESPACE}/{FAILED}"
    got = await c.call("GET", f"{c.bff_url}{path}")
    actions = (got.body or {}).get("actions") or {}
    p.dim(f"GET {path}  offers actions: {', '.join(sorted(actions)) or '(none)'}")
    before = await c.cluster_get(FAILED)
    p.state("before", before)
    p.dim(f"POST {path}?action=dismiss")
    post = await c.call("POST", f"{c.bff_url}{path}?action=dismiss")
    p.detail(
        f"-> {post.status}, X-Upgrade-Bff-Changed: {post.headers.get('X-Upgrade-Bff-Changed')}"
    )
    after = await c.cluster_get(FAILED)
    p.state("after", after)
    p.check(set(actions) >= {"dismiss", "cancel"}, "the v1.0.5 resource carries its actions")
    p.check(
        post.status == 200 and post.headers.get("X-Upgrade-Bff-Changed") == "false",
        "already read in step 3, so 200 with nothing written (idempotent)",
    )
    p.check(
        resource_version(after) == resource_version(before) and after == before,
        "the object is unchanged, resourceVersion included",
    )

    # 5. A dismiss refused mid-upgrade.
    p.step(5, f"Dismissing {IN_PROGRESS}, which is still in progress")
    before = await c.cluster_get(IN_PROGRESS)
    p.state("before", before)
    path = f"/api/v1.0.5/upgrades/{NAMESPACE}/{IN_PROGRESS}"
    p.dim(f"POST {path}?action=dismiss")
    post = await c.call("POST", f"{c.bff_url}{path}?action=dismiss")
    code = (post.body or {}).get("code")
    p.detail(f"-> {post.status} {code}: {(post.body or {}).get('message')}")
    after = await c.cluster_get(IN_PROGRESS)
    p.state("after", after)
    p.check(post.status == 409 and code == "UpgradeInProgress", "409 UpgradeInProgress")
    p.check(
        resource_version(after) == resource_version(before) and READ not in labels_of(after),
        "nothing was written: same resourceVersion, no read-message",
    )

    # 6. The cluster guard: the same direct PUT, to a sandbox whose emulator consults it.
    p.step(6, "The direct PUT again, with the cluster guard on (sandbox --webhook-port)")
    async with (
        running(replace(settings, webhook_port=0), kube_port=0, interval=0) as guarded,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=guarded.client_ssl)) as session,
    ):
        p.dim(f"a second sandbox, whose emulator consults the guard at {guarded.webhook_url}")
        g = Client(session, guarded.kube_url, guarded.bff_url)
        controller = guarded.controller
        live = await g.cluster_get(SUCCEEDED)
        p.state("before", live)
        p.dim(
            f"PUT {UPGRADES}/{SUCCEEDED}  the same body without status, "
            f"live resourceVersion {resource_version(live)}"
        )
        count_before = controller.reinitialisations
        put = await g.call("PUT", f"{g.kube_url}{UPGRADES}/{SUCCEEDED}", legacy_dismiss_body(live))
        p.detail(f"-> {put.status}")
        for warning in put.warnings:
            p.detail(f"   Warning: {warning}")
        if put.status == 200:
            await controller.wait_synced(resource_version(put.body))
        after = await g.cluster_get(SUCCEEDED)
        p.state("after", after)
        p.check(put.status == 200, "200 OK: the PUT went through")
        p.check(
            (put.body or {}).get("status") == live.get("status"),
            "the guard put status back into the PUT: nothing was wiped",
        )
        p.check(
            any("the cluster guard kept the current status" in w for w in put.warnings),
            "the API server relays the guard's Warning headers",
        )
        p.check(
            labels_of(after).get(READ) == "true" and labels_of(after).get(STATE) == "Succeeded",
            "the label change passed untouched; upgradeState stays Succeeded",
        )
        p.check(
            controller.reinitialisations == count_before,
            "the simulated controller re-initialised nothing",
        )

        # 7. The same save on another resource: an IPPool, whose status is its allocations.
        p.step(
            7, f"Extension v1.0.4 edits the IPPool {POOL}'s description, with and without the guard"
        )
        await _ippool_edit(p, c, "without the guard (the first sandbox)", guarded=False)
        await _ippool_edit(p, g, "with the guard (the second sandbox)", guarded=True)


def ippool_saved_body(obj: Mapping[str, Any], description: str) -> JSON:
    """What extension v1.0.4's IPPool edit form PUTs: the description changed on its
    Steve item, then the v1.0.4 save (:func:`bff.sandbox.legacy_save.v104_body`)."""
    item = steve_item(obj, "loadbalancer.harvesterhci.io.ippool")
    item["spec"]["description"] = description
    return v104_body(item)


def allocations(obj: Mapping[str, Any] | None) -> str:
    status = (obj or {}).get("status")
    if not status:
        return "(no status: no allocations)"
    allocated = status.get("allocated") or {}
    shown = ", ".join(f"{ip}={owner}" for ip, owner in sorted(allocated.items()))
    return f"{len(allocated)} allocated ({shown}), {status.get('available')} available"


async def _ippool_edit(p: Printer, c: Client, where: str, *, guarded: bool) -> None:
    url = f"{c.kube_url}{IPPOOLS}/{POOL}"
    live = (await c.call("GET", url)).body
    p.dim(f"{where}: PUT {IPPOOLS}/{POOL}, description changed, status stripped")
    p.detail(f"before  {allocations(live)}")
    put = await c.call("PUT", url, ippool_saved_body(live, "edited in the dashboard"))
    p.detail(f"-> {put.status}")
    for warning in put.warnings:
        p.detail(f"   Warning: {warning}")
    after = (await c.call("GET", url)).body
    p.detail(f"after   {allocations(after)}")
    p.check(put.status == 200, "200 OK: the save went through")
    p.check(
        ((after or {}).get("spec") or {}).get("description") == "edited in the dashboard",
        "the description changed",
    )
    if guarded:
        p.check(
            (after or {}).get("status") == live.get("status"),
            "the guard kept the allocations: no address in use can be handed out again",
        )
    else:
        p.check(
            "status" not in (after or {}),
            "the allocations are gone: the pool no longer knows which addresses are in use",
        )


async def run_demo(settings: Settings, out: TextIO, colour: bool) -> int:
    printer = Printer(out, colour)
    # Free ports, whatever --port or BFF_PORT say: the demo must not collide with a sandbox.
    settings = replace(settings, port=0, host="127.0.0.1", base_path="")
    with ControllerLog().attached() as log:
        async with (
            running(settings, kube_port=0, interval=0) as sandbox,
            aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=sandbox.client_ssl)
            ) as session,
        ):
            printer.line("harvester-upgrade-bff demo: the bug and the fix, step by step")
            printer.dim(f"sandbox: BFF {sandbox.bff_url}, API emulator {sandbox.kube_url}")
            printer.dim("simulated controller watching harvester-system, not advancing upgrades")
            client = Client(session, sandbox.kube_url, sandbox.bff_url)
            await _steps(printer, client, sandbox.controller, log, settings)
    printer.line()
    if printer.failures:
        printer.line(
            printer._paint("31", f"{len(printer.failures)} of {printer.checks} checks failed:")
        )
        for failure in printer.failures:
            printer.line(f"  - {failure}")
        return 1
    printer.line(printer._paint("32", f"All {printer.checks} checks held."))
    return 0


def use_colour(out: TextIO) -> bool:
    """Colour on a terminal only, and never with NO_COLOR set (https://no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("TERM") == "dumb":
        return False
    return out.isatty()


def main(settings: Settings) -> int:
    # The narration is the output; request logs of the parts would drown it.
    logging.getLogger("bff").setLevel(logging.ERROR)
    try:
        return asyncio.run(run_demo(settings, sys.stdout, use_colour(sys.stdout)))
    except OSError as exc:
        print(f"harvester-upgrade-bff: error: {exc}", file=sys.stderr)
        return 1
