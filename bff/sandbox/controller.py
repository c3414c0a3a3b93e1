"""A simulated Harvester v1.5.0 upgrade controller.

It behaves like ``pkg/controller/master/upgrade/upgrade_controller.go`` (``OnChanged``)
and the helpers in ``common.go`` as far as the Upgrade object itself is concerned:

- An Upgrade without a ``Completed`` condition is (re-)initialised as ``initStatus``
  does: ``Completed=Unknown``, ``harvesterhci.io/upgradeState=PreparingLoggingInfra``,
  ``harvesterhci.io/latestUpgrade=true`` (taken off every other upgrade first, as
  ``resetLatestUpgradeLabel`` does), ``status.previousVersion``, then ``LogReady=Unknown``
  and ``status.upgradeLog`` when ``spec.logEnabled``, or ``LogReady=False`` (reason
  ``Disabled``) and ``LoggingInfraPrepared`` when it is off. This is what wipes a
  finished upgrade whose status a client removed: the bug the BFF exists to prevent.
- Every ``interval`` seconds, each unfinished latest upgrade moves on by one stage,
  standing in for the jobs, plans and image controllers of a real cluster. The stages
  and condition names are Harvester's.

Writes are whole-object updates (``replace_namespaced_custom_object``) of the object as
last seen through the watch, like wrangler's ``Update``: a 409 is logged, counted and
left for the next event or tick, never retried blindly.

This module (with ``bff.kube``) is one of the two allowed to import kubernetes_asyncio.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from bff.abandoned import Dropped

__all__ = [
    "LATEST_UPGRADE_LABEL",
    "STAGES",
    "UPGRADE_STATE_LABEL",
    "SimulatedController",
    "advance",
    "initialise",
    "needs_initialisation",
]

log = logging.getLogger("bff.sandbox.controller")

GROUP, VERSION, PLURAL = "harvesterhci.io", "v1beta1", "upgrades"
UPGRADE_STATE_LABEL = "harvesterhci.io/upgradeState"
LATEST_UPGRADE_LABEL = "harvesterhci.io/latestUpgrade"

# Condition types (pkg/apis/harvesterhci.io/v1beta1/upgrade.go).
COMPLETED = "Completed"
LOG_READY = "LogReady"
IMAGE_READY = "ImageReady"
REPO_READY = "RepoReady"  # harvesterv1.RepoProvisioned
NODES_PREPARED = "NodesPrepared"
SYSTEM_SERVICES_UPGRADED = "SystemServicesUpgraded"
NODES_UPGRADED = "NodesUpgraded"

# upgradeState label values (pkg/controller/master/upgrade/common.go).
STATE_PREPARING_LOGGING_INFRA = "PreparingLoggingInfra"
STATE_LOGGING_INFRA_PREPARED = "LoggingInfraPrepared"
STATE_CREATING_UPGRADE_IMAGE = "CreatingUpgradeImage"
STATE_PREPARING_REPO = "PreparingRepo"
STATE_REPO_PREPARED = "RepoPrepared"
STATE_PREPARING_NODES = "PreparingNodes"
STATE_UPGRADING_SYSTEM_SERVICES = "UpgradingSystemServices"
STATE_UPGRADING_NODES = "UpgradingNodes"
STATE_SUCCEEDED = "Succeeded"
STATE_FAILED = "Failed"

STAGES = (
    STATE_PREPARING_LOGGING_INFRA,
    STATE_LOGGING_INFRA_PREPARED,
    STATE_CREATING_UPGRADE_IMAGE,
    STATE_PREPARING_REPO,
    STATE_REPO_PREPARED,
    STATE_PREPARING_NODES,
    STATE_UPGRADING_SYSTEM_SERVICES,
    STATE_UPGRADING_NODES,
    STATE_SUCCEEDED,
)

JSON = dict[str, Any]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- wrangler's condition helpers, on plain dicts ----------------------------------------


def _conditions(obj: JSON) -> list[JSON]:
    status = obj.setdefault("status", {})
    conditions: list[JSON] = status.setdefault("conditions", [])
    return conditions


def condition_status(obj: JSON, kind: str) -> str:
    """``Cond.GetStatus``: the condition's status, or "" when it is absent."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return str(cond.get("status", ""))
    return ""


def _find_or_create(obj: JSON, kind: str) -> JSON:
    for cond in _conditions(obj):
        if cond.get("type") == kind:
            return cond
    cond = {"type": kind}
    _conditions(obj).append(cond)
    return cond


def _create_unknown_if_not_exists(obj: JSON, kind: str) -> None:
    if not condition_status(obj, kind):
        _find_or_create(obj, kind)["status"] = "Unknown"


def _set_condition(obj: JSON, kind: str, status: str, reason: str = "", message: str = "") -> None:
    cond = _find_or_create(obj, kind)
    cond["status"] = status
    cond["lastUpdateTime"] = _now()
    for key, value in (("reason", reason), ("message", message)):
        if value:
            cond[key] = value
        else:
            cond.pop(key, None)


def _labels(obj: JSON) -> dict[str, str]:
    labels: dict[str, str] = obj.setdefault("metadata", {}).setdefault("labels", {})
    return labels


def _mark_complete(obj: JSON) -> None:
    """``markComplete`` in common.go."""
    if condition_status(obj, SYSTEM_SERVICES_UPGRADED) == "True" and (
        condition_status(obj, NODES_UPGRADED) == "True"
    ):
        _set_condition(obj, COMPLETED, "True")
        _labels(obj)[UPGRADE_STATE_LABEL] = STATE_SUCCEEDED
    if any(
        condition_status(obj, c) == "False"
        for c in (IMAGE_READY, REPO_READY, SYSTEM_SERVICES_UPGRADED, NODES_UPGRADED)
    ):
        _set_condition(obj, COMPLETED, "False")
        _labels(obj)[UPGRADE_STATE_LABEL] = STATE_FAILED


def _set_and_mark(obj: JSON, kind: str, status: str, reason: str = "", message: str = "") -> None:
    _set_condition(obj, kind, status, reason, message)
    _mark_complete(obj)


# --- what the controller does to one object (pure) ---------------------------------------


def needs_initialisation(obj: JSON) -> bool:
    """``UpgradeCompleted.GetStatus(upgrade) == ""`` and the object is not being deleted."""
    return not obj.get("metadata", {}).get("deletionTimestamp") and not condition_status(
        obj, COMPLETED
    )


def initialise(obj: JSON, previous_version: str) -> JSON:
    """``initStatus`` plus the LogReady step of ``OnChanged``; returns a new object."""
    out = copy.deepcopy(obj)
    _create_unknown_if_not_exists(out, COMPLETED)
    labels = _labels(out)
    labels[UPGRADE_STATE_LABEL] = STATE_PREPARING_LOGGING_INFRA
    labels[LATEST_UPGRADE_LABEL] = "true"
    out.setdefault("status", {})["previousVersion"] = previous_version
    if not (out.get("spec") or {}).get("logEnabled", True):
        _set_and_mark(
            out,
            LOG_READY,
            "False",
            "Disabled",
            "Upgrade observability is administratively disabled",
        )
        labels[UPGRADE_STATE_LABEL] = STATE_LOGGING_INFRA_PREPARED
        return out
    out["status"]["upgradeLog"] = f"{out['metadata']['name']}-upgradelog"
    _create_unknown_if_not_exists(out, LOG_READY)
    return out


def _node_names(obj: JSON) -> list[str]:
    status = obj.get("status") or {}
    names = sorted((status.get("nodeStatuses") or {}).keys())
    if names:
        return names
    return [status["singleNode"]] if status.get("singleNode") else ["harvester-node-0"]


def _set_nodes(obj: JSON, state: str) -> None:
    nodes = obj["status"].setdefault("nodeStatuses", {})
    for name in _node_names(obj):
        nodes[name] = {"state": state}


def advance(obj: JSON, repo_info: str = "") -> JSON | None:
    """One step of an unfinished upgrade, or None when there is nothing to do.

    Each step is what the real controller, or the job/plan/image controller it waits
    for, writes next; conditions and labels follow ``OnChanged`` and ``common.go``.
    """
    if condition_status(obj, COMPLETED) != "Unknown":
        return None
    if (obj.get("metadata", {}).get("labels") or {}).get(LATEST_UPGRADE_LABEL) != "true":
        return None  # "only run further operations for latest upgrade"
    out = copy.deepcopy(obj)
    labels = _labels(out)
    status = out.setdefault("status", {})
    name, namespace = out["metadata"]["name"], out["metadata"].get("namespace", "")
    log_ready = condition_status(out, LOG_READY)
    if log_ready == "Unknown":
        _set_and_mark(out, LOG_READY, "True")
        labels[UPGRADE_STATE_LABEL] = STATE_LOGGING_INFRA_PREPARED
    elif log_ready in ("True", "False") and not condition_status(out, IMAGE_READY):
        status["imageID"] = f"{namespace}/{name}"
        _create_unknown_if_not_exists(out, IMAGE_READY)
        labels[UPGRADE_STATE_LABEL] = STATE_CREATING_UPGRADE_IMAGE
    elif condition_status(out, IMAGE_READY) == "Unknown":
        _set_and_mark(out, IMAGE_READY, "True")
    elif condition_status(out, IMAGE_READY) == "True" and not condition_status(out, REPO_READY):
        labels[UPGRADE_STATE_LABEL] = STATE_PREPARING_REPO
        _create_unknown_if_not_exists(out, REPO_READY)
    elif condition_status(out, REPO_READY) == "Unknown":
        _set_and_mark(out, REPO_READY, "True")
        labels[UPGRADE_STATE_LABEL] = STATE_REPO_PREPARED
    elif condition_status(out, REPO_READY) == "True" and not condition_status(out, NODES_PREPARED):
        nodes = _node_names(out)
        if len(nodes) == 1:
            status["singleNode"] = nodes[0]
        status["repoInfo"] = repo_info or (
            f"release:\n  harvester: {(out.get('spec') or {}).get('version', '')}\n"
        )
        labels[UPGRADE_STATE_LABEL] = STATE_PREPARING_NODES
        _set_nodes(out, "Images preloading")
        _create_unknown_if_not_exists(out, NODES_PREPARED)
    elif condition_status(out, NODES_PREPARED) == "Unknown":
        _set_nodes(out, "Images preloaded")
        _set_and_mark(out, NODES_PREPARED, "True")
    elif condition_status(out, NODES_PREPARED) == "True" and not condition_status(
        out, SYSTEM_SERVICES_UPGRADED
    ):
        labels[UPGRADE_STATE_LABEL] = STATE_UPGRADING_SYSTEM_SERVICES
        _create_unknown_if_not_exists(out, SYSTEM_SERVICES_UPGRADED)
    elif condition_status(out, SYSTEM_SERVICES_UPGRADED) == "Unknown":
        _set_and_mark(out, SYSTEM_SERVICES_UPGRADED, "True")
    elif condition_status(out, SYSTEM_SERVICES_UPGRADED) == "True" and not condition_status(
        out, NODES_UPGRADED
    ):
        labels[UPGRADE_STATE_LABEL] = STATE_UPGRADING_NODES
        _create_unknown_if_not_exists(out, NODES_UPGRADED)
    elif condition_status(out, NODES_UPGRADED) == "Unknown":
        # setNodeUpgradeStatus: every node Succeeded, so NodesUpgraded=True, so Completed.
        _set_nodes(out, STATE_SUCCEEDED)
        _set_and_mark(out, NODES_UPGRADED, "True")
    else:
        return None
    return out


# --- the controller ----------------------------------------------------------------------


def _rv(obj: JSON) -> int:
    try:
        return int(obj.get("metadata", {}).get("resourceVersion", "0"))
    except ValueError:
        return 0


class SimulatedController:
    """LIST+WATCH Upgrades in ``namespace`` and act on them like Harvester's controller.

    Give either ``kubeconfig`` (a path) or ``configuration`` (a kubernetes_asyncio
    ``Configuration``). ``interval`` is the seconds between stage advances; 0 turns
    advancing off (re-initialisation still happens, on every event).
    """

    def __init__(
        self,
        *,
        kubeconfig: str | None = None,
        configuration: client.Configuration | None = None,
        namespace: str = "harvester-system",
        interval: float = 5.0,
        previous_version: str = "v1.4.2",
        watch_timeout: int = 300,
    ) -> None:
        if (kubeconfig is None) == (configuration is None):
            raise ValueError("give exactly one of kubeconfig or configuration")
        if interval < 0:
            raise ValueError("interval must be zero or more seconds")
        self.namespace = namespace
        self.interval = interval
        self.previous_version = previous_version
        self._kubeconfig = kubeconfig
        self._configuration = configuration
        self._watch_timeout = watch_timeout
        self._api_client: client.ApiClient | None = None
        self._api: Any = None
        self._cache: dict[str, JSON] = {}
        self._lock = asyncio.Lock()
        self._synced_rv = 0
        self._synced = asyncio.Condition()
        self._tasks: list[asyncio.Task[None]] = []
        self._listed = asyncio.Event()
        self._dropped = Dropped()
        #: how many upgrades were re-initialised, and their names in order
        self.reinitialisations = 0
        self.reinitialised: list[str] = []
        #: writes refused with 409, and every write that went through
        self.conflicts = 0
        self.writes = 0
        self.relists = 0

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, list, and start watching (and ticking); returns once listed."""
        cfg = self._configuration
        if cfg is None:
            cfg = client.Configuration()
            await config.load_kube_config(config_file=self._kubeconfig, client_configuration=cfg)
        self._api_client = client.ApiClient(configuration=cfg)
        self._api = client.CustomObjectsApi(self._api_client)
        self._tasks.append(asyncio.create_task(self._run(), name="controller-watch"))
        if self.interval > 0:
            self._tasks.append(asyncio.create_task(self._tick(), name="controller-tick"))
        listed = asyncio.create_task(self._listed.wait())
        done, _ = await asyncio.wait({listed, self._tasks[0]}, return_when=asyncio.FIRST_COMPLETED)
        if listed not in done:
            listed.cancel()
            await self.stop()
            raise RuntimeError("the controller's watch ended before its first list")

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        await self._dropped.wait()
        if self._api_client is not None:
            await self._api_client.close()
            self._api_client = None

    async def __aenter__(self) -> SimulatedController:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- test support -------------------------------------------------------------------

    @property
    def synced_resource_version(self) -> str:
        return str(self._synced_rv)

    def cached(self, name: str) -> JSON | None:
        obj = self._cache.get(name)
        return copy.deepcopy(obj) if obj is not None else None

    async def wait_synced(self, resource_version: str, within: float = 5.0) -> None:
        """Return once every event up to ``resource_version`` has been handled.

        The watch delivers events of this namespace's Upgrades only, so when the
        counter moved for other reasons (other resources on a real server) the
        controller also accepts a fresh LIST that matches its cache exactly.
        """
        target = int(resource_version)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            async with self._synced:
                remaining = deadline - loop.time()
                if self._synced_rv >= target:
                    return
                if remaining <= 0:
                    raise TimeoutError(
                        f"controller synced to {self._synced_rv}, not {resource_version}"
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._synced.wait_for(lambda: self._synced_rv >= target),
                        min(remaining, 0.5),
                    )
                if self._synced_rv >= target:
                    return
            await self._probe(target)

    async def _probe(self, target: int) -> None:
        async with self._lock:
            listing = await self._api.list_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL
            )
            list_rv = int(listing["metadata"]["resourceVersion"])
            live = {o["metadata"]["name"]: _rv(o) for o in listing.get("items", [])}
            cached = {name: _rv(o) for name, o in self._cache.items()}
            if list_rv >= target and live == cached:
                await self._mark_synced(list_rv)

    async def _mark_synced(self, rv: int) -> None:
        async with self._synced:
            if rv > self._synced_rv:
                self._synced_rv = rv
            self._synced.notify_all()

    # -- list and watch -----------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                rv = await self._list()
                await self._watch(rv)
            except asyncio.CancelledError:
                raise
            except ApiException as exc:
                if exc.status == 410:
                    log.info("watch expired (410 Gone); listing again")
                else:
                    log.warning("controller watch failed: HTTP %s; listing again", exc.status)
                    await asyncio.sleep(0.5)
            except Exception as exc:  # keep running through a broken connection, like an informer
                log.warning("controller watch failed: %s; listing again", type(exc).__name__)
                await asyncio.sleep(0.5)
            self.relists += 1

    async def _list(self) -> str:
        listing = await self._api.list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL
        )
        rv = str(listing["metadata"]["resourceVersion"])
        async with self._lock:
            self._cache = {o["metadata"]["name"]: o for o in listing.get("items", [])}
            for name in sorted(self._cache):
                await self._reconcile(name)
        await self._mark_synced(int(rv))
        self._listed.set()
        return rv

    async def _watch(self, resource_version: str) -> None:
        # The stream is read here, not through kubernetes-asyncio's Watch, which closes an
        # answer it is stopped in politely (over TLS, a wait on the server nobody awaits).
        response = await self._api.list_namespaced_custom_object(
            GROUP,
            VERSION,
            self.namespace,
            PLURAL,
            watch=True,
            resource_version=resource_version,
            timeout_seconds=self._watch_timeout,
            allow_watch_bookmarks=True,
            _preload_content=False,
        )
        async with response:
            if response.status != 200:
                raise ApiException(status=response.status, reason=response.reason)
            ended = False
            try:
                while line := await response.content.readline():
                    if line.strip():
                        await self._on_event(json.loads(line))
                ended = True
            finally:
                if not ended:  # given up on (stopped, or failed): dropped, not closed politely
                    self._dropped.drop(response)

    async def _on_event(self, event: JSON) -> None:
        kind = event["type"]
        obj: JSON = event["object"]
        if kind == "ERROR":  # a Status: 410 when the version is too old
            raise ApiException(status=obj.get("code"), reason=obj.get("message"))
        async with self._lock:
            if kind == "BOOKMARK":
                pass
            elif kind == "DELETED":
                self._cache.pop(obj["metadata"]["name"], None)
            else:
                name = obj["metadata"]["name"]
                self._cache[name] = obj
                await self._reconcile(name)
        await self._mark_synced(_rv(obj))

    # -- reconciling --------------------------------------------------------------------

    async def _reconcile(self, name: str) -> None:
        """``OnChanged`` for one cached object; must hold the lock."""
        obj = self._cache.get(name)
        if obj is None or not needs_initialisation(obj):
            return
        log.info(
            "Initialize upgrade %s/%s: no Completed condition, so the upgrade starts over",
            self.namespace,
            name,
        )
        for other_name, other in sorted(self._cache.items()):
            labels = other.get("metadata", {}).get("labels") or {}
            if other_name != name and labels.get(LATEST_UPGRADE_LABEL) == "true":
                updated = copy.deepcopy(other)
                del updated["metadata"]["labels"][LATEST_UPGRADE_LABEL]
                if not await self._update(updated):
                    return
        if await self._update(initialise(obj, self.previous_version)):
            self.reinitialisations += 1
            self.reinitialised.append(name)
            log.info("re-initialised upgrade %s (%d so far)", name, self.reinitialisations)

    async def _update(self, obj: JSON) -> bool:
        """Replace the whole object; True when written, False on a 409 conflict."""
        name = obj["metadata"]["name"]
        try:
            written = await self._api.replace_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name, obj
            )
        except ApiException as exc:
            if exc.status == 409:
                self.conflicts += 1
                log.info("update of %s conflicted (409); waiting for the next event", name)
                return False
            raise
        self.writes += 1
        self._cache[name] = written
        return True

    async def _tick(self) -> None:
        await self._listed.wait()
        while True:
            await asyncio.sleep(self.interval)
            async with self._lock:
                for name in sorted(self._cache):
                    stepped = advance(self._cache[name])
                    if stepped is not None:
                        state = stepped["metadata"]["labels"].get(UPGRADE_STATE_LABEL)
                        try:
                            if await self._update(stepped):
                                log.info("upgrade %s advanced to %s", name, state)
                        except ApiException as exc:
                            log.warning("advancing %s failed: HTTP %s", name, exc.status)
