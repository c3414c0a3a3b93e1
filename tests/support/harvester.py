"""The real Harvester upgrade controller and real Steve, for tests: the simulations' referees.

Each Harvester version (:data:`REFEREES`) has a wrapper module of its own:
``referee/harvester`` (github.com/harvester/harvester at :data:`HARVESTER_VERSION`
and the Steve it pins, github.com/rancher/steve :data:`STEVE_VERSION`) and
``referee/harvester-v1.5.0`` (:data:`SIMULATED_VERSION`, the version the
sandbox's simulated controller simulates: its upgrade controller only). Each
is built once per version and wrapper content, and cached under the user
cache directory (``<cache>/harvester-upgrade-bff/harvester-referee/<version>-<digest>/``)
with a file lock per version, as kube-apiserver is
(:mod:`tests.support.real_apiserver`).

The build also copies, from that version's Go module zips, the objects the
controller needs on the API server (:func:`extract_manifests`): Harvester's own
CRDs for UpgradeLogs, Versions, Settings, VirtualMachineImages, ScheduleVMBackups and
VirtualMachineBackups, and, for a version that runs the schedulevmbackup
controller, the chart's VolumeSnapshot and VolumeSnapshotContent CRDs and
Longhorn's snapshots and backups; Longhorn's settings, cluster-api's ``machines``,
Harvester chart's ServiceAccount and RBAC (``deploy/charts/harvester/templates``),
and the chart's ``Chart.yaml`` and ``values.yaml`` for the Helm release record
the schedulevmbackup controller reads (:func:`harvester_release`). The chart's
templates are rendered minimally (:func:`render_chart_template`): the label
includes are dropped and ``.Release.Namespace`` is ``harvester-system``; the
objects and rules are the chart's own (it binds the ServiceAccount
``harvester`` to ``cluster-admin``).

:class:`HarvesterStack` runs, on a started :class:`RealApiServer`, for one version:

* the upgrade controller, and with v1.6.0 the schedulevmbackup controller
  (``cmd/upgrade-controller``: ``config.SetupScaled``, ``upgrade.Register``,
  ``schedulevmbackup.Register``, the factories started) as
  ``system:serviceaccount:harvester-system:harvester`` with that RBAC, not as
  an admin;
* Steve (v1.6.0's ``cmd/steve``, whatever the controller's version: Steve's
  own server with ``--enable-header-auth``), on a loopback port, as the
  harness admin; callers are named by ``Impersonate-User``/``Impersonate-Group``
  headers and Steve impersonates them towards the API server.

``python -m tests.support.harvester [VERSION]`` builds (or finds) one version's
binaries (v1.6.0 when no version is given).
Everything here is synchronous, like the API server harness.
"""

from __future__ import annotations

import base64
import copy
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support import gotool
from tests.support.gotool import find_go
from tests.support.real_apiserver import (
    CONTROLLER_SERVICE_ACCOUNT,
    NAMESPACE,
    STOP_TIMEOUT,
    RealApiServer,
    RealApiServerError,
    RealApiServerUnavailable,
    _pdeathsig_preexec,
    free_port,
)

HARVESTER_VERSION = "v1.6.0"
#: The version the sandbox's simulated controller (bff/sandbox/controller.py) simulates.
SIMULATED_VERSION = "v1.5.0"
#: The Steve github.com/harvester/harvester@v1.6.0 requires (its go.mod).
STEVE_VERSION = "v0.5.6"
HARVESTER_MODULE = "github.com/harvester/harvester"
LONGHORN_MODULE = "github.com/longhorn/longhorn-manager"
CLUSTER_API_MODULE = "sigs.k8s.io/cluster-api"

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Referee:
    """One Harvester version's wrapper module and what its build makes."""

    version: str
    #: The wrapper module: its go.mod requires github.com/harvester/harvester at
    #: ``version`` and copies that version's ``replace`` lines.
    wrapper: Path
    #: The commands (``cmd/<name>``) built, one binary each.
    binaries: tuple[str, ...]
    #: Whether its upgrade-controller command also runs the schedulevmbackup
    #: controller (which needs the snapshot and backup CRDs besides).
    schedules: bool


#: Every Harvester version built as a referee.
REFEREES = {
    HARVESTER_VERSION: Referee(
        HARVESTER_VERSION, REPO_ROOT / "referee" / "harvester",
        ("upgrade-controller", "steve"), schedules=True,
    ),
    SIMULATED_VERSION: Referee(
        SIMULATED_VERSION, REPO_ROOT / "referee" / f"harvester-{SIMULATED_VERSION}",
        ("upgrade-controller",), schedules=False,
    ),
}  # fmt: skip
VERSIONS = tuple(REFEREES)

#: Harvester's own CRDs the controllers' informers need, from the harvester-crd chart.
HARVESTER_CRDS = (
    "upgradelogs", "versions", "settings", "virtualmachineimages",
    "schedulevmbackups", "virtualmachinebackups",
)  # fmt: skip
#: The CSI snapshot CRDs the harvester-crd chart ships (the schedulevmbackup controller
#: caches VolumeSnapshots and VolumeSnapshotContents).
SNAPSHOT_CRDS = ("volumesnapshots-6.3.4.yaml", "volumesnapshotcontents-6.3.4.yaml")
#: Longhorn's CRDs the controllers cache, each one document of longhorn-manager's
#: k8s/crds.yaml: settings (the upgrade controller), snapshots and backups (schedulevmbackup).
LONGHORN_CRDS = ("settings.longhorn.io",)
LONGHORN_SCHEDULE_CRDS = ("snapshots.longhorn.io", "backups.longhorn.io")
#: The server version the controller reports (status.previousVersion on a new
#: upgrade): a cluster that finished the upgrade to the seeds' v1.5.0.
SERVER_VERSION = "v1.5.0"
#: The label the controller keeps on the one upgrade it drives.
LATEST_LABEL = "harvesterhci.io/latestUpgrade"
STATE_LABEL = "harvesterhci.io/upgradeState"
#: The finalizer wrangler adds for the controller's OnRemove handler.
FINALIZER = "wrangler.cattle.io/harvester-upgrade-controller"
#: Where the schedulevmbackup controller puts each schedule's CronJob
#: (``svmb-<schedule uid>``): Harvester's namespace, whatever the schedule's.
CRONJOB_NAMESPACE = "harvester-system"
SCHEDULES = "/apis/harvesterhci.io/v1beta1/namespaces/{ns}/schedulevmbackups"

# Bounded waits, in seconds.
START_TIMEOUT = 120.0
SETTLE_TIMEOUT = 60.0
STEVE_TIMEOUT = 120.0
START_ATTEMPTS = 3


# --------------------------------------------------------------------------
# Building


def referee(version: str) -> Referee:
    """The referee of ``version`` (one of :data:`VERSIONS`)."""
    try:
        return REFEREES[version]
    except KeyError:
        raise gotool.ToolBuildError(
            f"no Harvester referee for {version}: one of {', '.join(VERSIONS)}"
        ) from None


def source_digest(wrapper: Path) -> str:
    """A digest of the wrapper module's go.mod, go.sum and Go files: the cache key."""
    h = hashlib.sha256()
    files = sorted(
        p
        for p in wrapper.rglob("*")
        if p.is_file() and (p.suffix == ".go" or p.name in ("go.mod", "go.sum"))
    )
    for path in files:
        h.update(str(path.relative_to(wrapper)).encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()[:12]


def required_version(wrapper: Path) -> str:
    """The harvester version the wrapper's go.mod requires."""
    match = re.search(
        rf"^\s*{re.escape(HARVESTER_MODULE)}\s+(v\S+)\s*$", (wrapper / "go.mod").read_text(), re.M
    )
    if match is None:
        raise gotool.ToolBuildError(f"{wrapper / 'go.mod'} does not require {HARVESTER_MODULE}")
    return match.group(1)


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "harvester-upgrade-bff" / "harvester-referee"


def cache_dir(version: str = HARVESTER_VERSION) -> Path:
    return cache_root() / f"{version}-{source_digest(referee(version).wrapper)}"


@dataclass(frozen=True)
class Built:
    """The cached binaries and manifests of one version."""

    directory: Path

    @property
    def controller(self) -> Path:
        return self.directory / "upgrade-controller"

    @property
    def steve(self) -> Path:
        return self.directory / "steve"

    @property
    def manifests(self) -> Path:
        return self.directory / "manifests"

    def complete(self) -> bool:
        return (self.directory / "done").is_file()


def unavailable_reason(version: str = HARVESTER_VERSION) -> str | None:
    """Why ``version``'s stack cannot run here, without building anything (``None``: it can).

    A stack of another version runs v1.6.0's Steve too, but only when asked to."""
    if not Built(cache_dir(version)).complete() and find_go() is None:
        return f"Go is not installed, so Harvester {version}'s controller cannot be built"
    return None


def ensure_built(version: str = HARVESTER_VERSION) -> Built:
    """``version``'s binaries and manifests, built on first use and cached per version
    and digest."""
    ref = referee(version)
    if required_version(ref.wrapper) != version:
        raise gotool.ToolBuildError(
            f"{ref.wrapper.relative_to(REPO_ROOT)}/go.mod requires {HARVESTER_MODULE} "
            f"{required_version(ref.wrapper)}, not {version}"
        )
    built = Built(cache_dir(version))
    if built.complete():
        return built
    go = find_go()
    if go is None:
        raise RealApiServerUnavailable(
            f"Go is not installed, so Harvester {version}'s controller cannot be built"
        )
    # One lock per version: two versions build side by side (Go's build cache
    # is safe to share), one version once.
    with gotool.locked(cache_root() / f".lock-{version}"):
        if built.complete():  # another process built it while we waited
            return built
        _build(go, built, ref)
    return built


def _go_env() -> dict[str, str]:
    # The wrapper is not a VCS checkout of its own and must build exactly as
    # its go.mod and go.sum say.
    return {**os.environ, "GOWORK": "off", "GOFLAGS": "-buildvcs=false -mod=readonly"}


def _build(go: str, built: Built, ref: Referee) -> None:
    began = time.monotonic()
    built.directory.mkdir(parents=True, exist_ok=True)
    log = built.directory / "build.log"
    log.write_text("")
    scratch = Path(tempfile.mkdtemp(prefix=".build-", dir=built.directory))
    build = gotool.Build(go, scratch, log)

    def run(*argv: str) -> str:
        return build.run(argv, cwd=ref.wrapper, env=_go_env(), capture=True)

    try:
        run(go, "build", "-trimpath", "-ldflags=-s -w", "-o", str(scratch) + "/",
            *(f"./cmd/{name}" for name in ref.binaries))  # fmt: skip
        # The modules' versions as the wrapper resolves them: the CRDs come
        # from this version's own module zips.
        info = run(go, "mod", "download", "-json", HARVESTER_MODULE, LONGHORN_MODULE,
                   CLUSTER_API_MODULE)  # fmt: skip
        modules = {m["Path"]: (Path(m["Dir"]), m["Version"]) for m in _json_stream(info)}
        if modules[HARVESTER_MODULE][1] != ref.version:
            raise gotool.ToolBuildError(
                f"{ref.wrapper} resolves {HARVESTER_MODULE} {modules[HARVESTER_MODULE][1]}, "
                f"not {ref.version}"
            )
        extract_manifests(modules, scratch / "manifests", schedules=ref.schedules)
        for name in ref.binaries:
            os.replace(scratch / name, built.directory / name)
        target = built.manifests
        if target.exists():
            shutil.rmtree(target)
        os.replace(scratch / "manifests", target)
        seconds = time.monotonic() - began
        (built.directory / "done").write_text(f"built in {seconds:.0f}s\n")
        with open(log, "a") as out:
            out.write(f"built {built.directory} in {seconds:.0f}s\n")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _json_stream(text: str) -> list[dict[str, Any]]:
    """``go mod download -json`` prints one JSON object after another."""
    decoder, out, i = json.JSONDecoder(), [], 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        obj, i = decoder.raw_decode(text, i)
        out.append(obj)
    return out


def extract_manifests(
    modules: Mapping[str, tuple[Path, str]], out: Path, *, schedules: bool = True
) -> None:
    """Copy the CRDs and the chart's RBAC the stack needs out of the module sources.

    ``modules`` maps a module path to its directory and version. The snapshot
    CRDs (which v1.5.0's harvester-crd chart does not ship) and Longhorn's
    snapshots and backups are copied only for the schedulevmbackup controller
    (``schedules``). Each file is
    written as it is in its module (each Longhorn CRD is the one document of
    ``k8s/crds.yaml`` that defines it); ``SOURCES`` names
    where each came from.
    """
    out.mkdir(parents=True, exist_ok=True)
    sources = []

    def copy_from(module: str, rel: str, name: str) -> None:
        directory, version = modules[module]
        shutil.copyfile(directory / rel, out / name)
        sources.append(f"{name}: {module}@{version}/{rel}")

    for plural in HARVESTER_CRDS:
        rel = f"deploy/charts/harvester-crd/templates/harvesterhci.io_{plural}.yaml"
        copy_from(HARVESTER_MODULE, rel, f"crd-harvesterhci.io_{plural}.yaml")
    for name in SNAPSHOT_CRDS if schedules else ():
        rel = f"deploy/charts/harvester-crd/templates/{name}"
        copy_from(HARVESTER_MODULE, rel, f"crd-snapshot.storage.k8s.io_{name}")
    for name in ("serviceaccount.yaml", "rbac.yaml"):
        copy_from(HARVESTER_MODULE, f"deploy/charts/harvester/templates/{name}", f"chart-{name}")
    # The chart's own metadata and values: the Helm release record of the
    # "harvester" release (:func:`harvester_release`) carries them.
    for name in ("Chart.yaml", "values.yaml"):
        copy_from(HARVESTER_MODULE, f"deploy/charts/harvester/{name}", f"chart-{name}")
    copy_from(CLUSTER_API_MODULE, "config/crd/bases/cluster.x-k8s.io_machines.yaml",
              "crd-cluster.x-k8s.io_machines.yaml")  # fmt: skip
    directory, version = modules[LONGHORN_MODULE]
    docs = [d for d in yaml.safe_load_all((directory / "k8s" / "crds.yaml").read_text()) if d]
    for crd_name in (*LONGHORN_CRDS, *(LONGHORN_SCHEDULE_CRDS if schedules else ())):
        (found,) = [d for d in docs if d.get("metadata", {}).get("name") == crd_name]
        (out / f"crd-{crd_name}.yaml").write_text(yaml.safe_dump(found, sort_keys=False))
        sources.append(
            f"crd-{crd_name}.yaml: {LONGHORN_MODULE}@{version}/k8s/crds.yaml"
            f" (its {crd_name} document)"
        )
    (out / "SOURCES").write_text("".join(f"{s}\n" for s in sources))


# --------------------------------------------------------------------------
# Manifests


def render_chart_template(text: str, namespace: str = NAMESPACE) -> list[dict[str, Any]]:
    """A Harvester chart template as objects: the minimal rendering the stack needs.

    The only template actions in serviceaccount.yaml and rbac.yaml are the
    ``harvester.labels`` include (recommended labels, dropped here) and
    ``.Release.Namespace``; comments that quote template syntax are dropped
    with the other comments. Anything else is refused, so a new template
    action in a later chart cannot slip through unrendered.
    """
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            continue
        if re.fullmatch(r"\{\{ include \"harvester\.labels\" \. \| indent \d+ \}\}", stripped):
            continue
        line = line.replace("{{ .Release.Namespace }}", namespace)
        if "{{" in line:
            raise RealApiServerError(f"unrendered template action in a chart line: {line!r}")
        lines.append(line)
    return [d for d in yaml.safe_load_all("\n".join(lines)) if d]


def _minimal_crd(group: str, version: str, kind: str, plural: str) -> dict[str, Any]:
    """A CRD that stores anything: for kinds the controller only caches or rarely writes."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower(),
                      "listKind": f"{kind}List"},
            "versions": [{
                "name": version, "served": True, "storage": True,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object",
                                               "x-kubernetes-preserve-unknown-fields": True}},
            }],
        },
    }  # fmt: skip


MINIMAL_CRDS = (
    _minimal_crd("upgrade.cattle.io", "v1", "Plan", "plans"),
    _minimal_crd("management.cattle.io", "v3", "ManagedChart", "managedcharts"),
    _minimal_crd("provisioning.cattle.io", "v1", "Cluster", "clusters"),
    _minimal_crd("kubevirt.io", "v1", "VirtualMachine", "virtualmachines"),
    # v1.5.0's upgrade controller caches the KubeVirt object (v1.6.0's does not).
    _minimal_crd("kubevirt.io", "v1", "KubeVirt", "kubevirts"),
)

#: Rancher's provisioning Cluster of the local cluster. The controller reads it
#: whenever a finished upgrade is cleaned up (and dereferences its rkeConfig);
#: without it that upgrade is requeued forever.
LOCAL_CLUSTER: tuple[dict[str, Any], ...] = (
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fleet-local"}},
    {
        "apiVersion": "provisioning.cattle.io/v1",
        "kind": "Cluster",
        "metadata": {"name": "local", "namespace": "fleet-local"},
        "spec": {"kubernetesVersion": "v1.32.4+rke2r1", "rkeConfig": {}},
    },
)


def schedule_vm_backup(namespace: str, name: str, *, vm: str = "vm") -> dict[str, Any]:
    """A ScheduleVMBackup as the dashboard's create form makes it (valid per its CRD):
    an hourly backup of the VirtualMachine ``vm``, keeping 2, suspended after 2 failures.
    The controller never reads the VM or the backup target before it creates the
    schedule's CronJob (only the VirtualMachineBackups it creates would), so neither
    exists here."""
    return {
        "apiVersion": "harvesterhci.io/v1beta1",
        "kind": "ScheduleVMBackup",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "cron": "0 * * * *",
            "retain": 2,
            "maxFailure": 2,
            "suspend": False,
            "vmbackup": {
                "source": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": vm},
                "type": "backup",
            },
        },
    }


def harvester_release(built: Built, namespace: str = NAMESPACE) -> dict[str, Any]:
    """The Helm release record of the ``harvester`` chart, as Helm 3 stores it: a Secret.

    The schedulevmbackup controller reads the image of the CronJob it creates
    for each schedule from the release's values (``generalJob.image``, through
    Helm's own storage driver: ``pkg/util/helm.FetchImageFromHelmValues``).
    The record carries the chart's own ``Chart.yaml`` metadata and
    ``values.yaml`` from the module, no overrides, and no manifest (nothing
    reads it); the Secret is the one Helm's secrets driver writes for revision
    1 (name, type, labels, and ``release``: base64 of the gzipped JSON).
    """
    chart = yaml.safe_load((built.manifests / "chart-Chart.yaml").read_text())
    values = yaml.safe_load((built.manifests / "chart-values.yaml").read_text())
    metadata = {k: chart[k] for k in ("apiVersion", "name", "version", "appVersion",
                                      "description", "type") if k in chart}  # fmt: skip
    release = {
        "name": "harvester",
        "namespace": namespace,
        "version": 1,
        "info": {"status": "deployed", "description": "Install complete"},
        "chart": {"metadata": metadata, "values": values, "templates": [], "files": []},
        "config": {},
        "manifest": "",
    }
    encoded = base64.b64encode(gzip.compress(json.dumps(release).encode())).decode()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "sh.helm.release.v1.harvester.v1",
            "namespace": namespace,
            "labels": {"name": "harvester", "owner": "helm", "status": "deployed", "version": "1"},
        },
        "type": "helm.sh/release.v1",
        "stringData": {"release": encoded},
    }


def crds(built: Built) -> list[dict[str, Any]]:
    """Every CRD the stack installs besides the Upgrade's (which the API server harness has)."""
    found = [yaml.safe_load(p.read_text()) for p in sorted(built.manifests.glob("crd-*.yaml"))]
    return [*found, *copy.deepcopy(MINIMAL_CRDS)]


def chart_rbac(built: Built, namespace: str = NAMESPACE) -> list[dict[str, Any]]:
    """Harvester chart's ServiceAccount and RBAC objects, rendered for ``namespace``."""
    objects = []
    for name in ("chart-serviceaccount.yaml", "chart-rbac.yaml"):
        objects += render_chart_template((built.manifests / name).read_text(), namespace)
    return objects


# --------------------------------------------------------------------------
# The running stack


class _Process:
    """One child process with its output captured to a log file, in its own environment."""

    def __init__(
        self, name: str, argv: list[str], log: Path, env: Mapping[str, str] | None = None
    ) -> None:
        self.name = name
        self.log = log
        self._out = open(log, "wb")  # noqa: SIM115 - closed in stop()
        # Only from the main thread: PR_SET_PDEATHSIG fires when the forking thread exits.
        main = threading.current_thread() is threading.main_thread()
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=self._out, stderr=subprocess.STDOUT,
            env=None if env is None else dict(env),
            preexec_fn=_pdeathsig_preexec() if main else None,
        )  # fmt: skip

    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT)
        if not self._out.closed:
            self._out.close()


class HarvesterStack:
    """The real upgrade controller of Harvester ``version`` (with v1.6.0, the
    schedulevmbackup controller too) and real Steve on a started :class:`RealApiServer`.

    The CRDs and RBAC installed are ``version``'s; Steve is always v1.6.0's."""

    def __init__(
        self,
        real: RealApiServer,
        *,
        version: str = HARVESTER_VERSION,
        controller: bool = True,
        steve: bool = True,
    ) -> None:
        self.real = real
        self.version = referee(version).version
        self.want_controller = controller
        self.want_steve = steve
        self.built: Built | None = None
        self._steve_built: Built | None = None
        self._controller: _Process | None = None
        self._steve: _Process | None = None
        self._tmp: Path | None = None
        self.steve_url = ""
        #: Seconds from start() to the controller and Steve ready.
        self.startup_seconds: float | None = None
        self._barrier_count = 0
        self._schedule_barrier_count = 0

    def __enter__(self) -> HarvesterStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> HarvesterStack:
        began = time.monotonic()
        self.built = ensure_built(self.version)
        if self.want_steve:
            self._steve_built = ensure_built(HARVESTER_VERSION)
        self._tmp = Path(tempfile.mkdtemp(prefix="harvester-referee-"))
        try:
            self._install()
            if self.want_controller:
                self.start_controller()
            if self.want_steve:
                self._start_steve()
            self.startup_seconds = time.monotonic() - began
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self.stop_controller()
        if self._steve is not None:
            self._steve.stop()
            self._steve = None
        if self._tmp is not None:
            if os.environ.get("BFF_REAL_APISERVER_KEEP") == "1":
                print(f"harvester referee: keeping {self._tmp}", file=sys.stderr)
            else:
                shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    @property
    def log_dir(self) -> Path | None:
        return self._tmp

    @property
    def steve_pid(self) -> int | None:
        """Steve's process id while it runs (the bench measures its CPU and pins it)."""
        return None if self._steve is None else self._steve.proc.pid

    def _fail(self, message: str) -> RealApiServerError:
        parts = [message]
        for proc in (self._controller, self._steve):
            if proc is not None:
                parts.append(f"--- {proc.log.name} (last lines) ---\n{gotool.tail(proc.log)}")
        return RealApiServerError("\n".join(parts))

    # -- objects --------------------------------------------------------------

    def _install(self) -> None:
        assert self.built is not None
        path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
        wanted = crds(self.built)
        self.real.apply(*wanted)
        deadline = time.monotonic() + START_TIMEOUT
        for crd in wanted:
            name = crd["metadata"]["name"]
            while True:
                r = self.real.request("GET", f"{path}/{name}")
                conditions = (r.body or {}).get("status", {}).get("conditions") or []
                if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                    break
                if time.monotonic() > deadline:
                    raise self._fail(f"CRD {name} not Established within {START_TIMEOUT}s")
                time.sleep(0.1)
        # Discovery lags Established by a moment; apply() resolves kinds through it.
        for obj in LOCAL_CLUSTER:
            while True:
                try:
                    self.real.apply(obj)
                    break
                except RealApiServerError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
        self.real.apply(*chart_rbac(self.built, self.real.namespace))
        self.real.apply(harvester_release(self.built, self.real.namespace))

    # -- the controller ---------------------------------------------------------

    def start_controller(self) -> None:
        """Start the controller and wait until it has started its controllers."""
        assert self.built is not None
        assert self._tmp is not None
        if self._controller is not None and self._controller.running():
            return
        # The static token of the controller's ServiceAccount identity: the
        # API server authenticates it as system:serviceaccount:harvester-system:harvester.
        ns, name = CONTROLLER_SERVICE_ACCOUNT
        assert self.real.review_token("sandbox-controller")["user"]["username"] == (
            f"system:serviceaccount:{ns}:{name}"
        )
        kubeconfig = self.real.kubeconfig(
            self._tmp / "controller.kubeconfig", token="sandbox-controller"
        )
        env = {
            **{
                k: v
                for k, v in os.environ.items()
                if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")
            },
            "KUBECONFIG": str(kubeconfig),
            "HARVESTER_SERVER_VERSION": SERVER_VERSION,
        }
        log = self._tmp / "upgrade-controller.log"
        self._controller = _Process(
            "upgrade-controller", [str(self.built.controller)], log, env=env
        )
        deadline = time.monotonic() + START_TIMEOUT
        while "upgrade controller started" not in log.read_text(errors="replace"):
            if not self._controller.running():
                raise self._fail(
                    f"the upgrade controller exited with {self._controller.proc.returncode}"
                )
            if time.monotonic() > deadline:
                raise self._fail(f"the upgrade controller did not start within {START_TIMEOUT}s")
            time.sleep(0.1)
        # Started means its caches synced; the barrier proves its upgrade
        # worker is taking events.
        self.barrier()

    def stop_controller(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def controller_log(self) -> Path | None:
        return None if self._controller is None else self._controller.log

    def barrier(self, timeout: float = SETTLE_TIMEOUT) -> None:
        """Return once the controller has processed every Upgrade write made before the call.

        The controller's upgrade handlers run on one worker, fed by one watch in
        resourceVersion order. The barrier removes the wrangler finalizer from a
        finished, not-latest Upgrade in a namespace of its own (which the
        controller leaves alone otherwise) and waits for the controller to put
        it back: by then every earlier event has been through the handlers.
        An event whose handler failed is retried later, with back-off; that
        retry is not waited for.
        """
        self._barrier_count += 1
        barrier_ns = "harvester-referee-barrier"
        path = f"/apis/harvesterhci.io/v1beta1/namespaces/{barrier_ns}/upgrades/barrier"
        if self._barrier_count == 1 or self.real.request("GET", path).status == 404:
            self.real.apply(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": barrier_ns}}
            )
            self.real.request("POST", path.rsplit("/", 1)[0], {
                "apiVersion": "harvesterhci.io/v1beta1", "kind": "Upgrade",
                "metadata": {"name": "barrier", "namespace": barrier_ns},
                "spec": {"version": "v0.0.0", "logEnabled": False},
                "status": {"conditions": [
                    {"type": "Completed", "status": "False"},
                    {"type": "LogReady", "status": "False"},
                    {"type": "ImageReady", "status": "False"},
                ]},
            })  # fmt: skip
        r = self.real.request(
            "PATCH", path,
            {"metadata": {"finalizers": None,
                          "annotations": {"harvester-referee/barrier": str(self._barrier_count)}}},
            content_type="application/merge-patch+json",
        )  # fmt: skip
        if r.status != 200:
            raise self._fail(f"the barrier patch answered {r.status}: {r.body}")
        deadline = time.monotonic() + timeout
        while FINALIZER not in (
            self.real.request("GET", path).body["metadata"].get("finalizers") or ()
        ):
            if self._controller is None or not self._controller.running():
                raise self._fail("the upgrade controller is not running")
            if time.monotonic() > deadline:
                raise self._fail(f"the controller did not process the barrier within {timeout}s")
            time.sleep(0.05)

    # -- the schedulevmbackup controller ------------------------------------------

    def schedule(self, namespace: str, name: str) -> dict[str, Any]:
        r = self.real.request("GET", SCHEDULES.format(ns=namespace) + f"/{name}")
        if r.status != 200:
            raise self._fail(f"reading ScheduleVMBackup {namespace}/{name} answered {r.status}")
        return dict(r.body)

    def cron_job(self, schedule: Mapping[str, Any]) -> dict[str, Any] | None:
        """The CronJob the controller keeps for ``schedule`` (by its uid), or ``None``."""
        name = f"svmb-{schedule['metadata']['uid']}"
        r = self.real.request(
            "GET", f"/apis/batch/v1/namespaces/{CRONJOB_NAMESPACE}/cronjobs/{name}"
        )
        if r.status == 404:
            return None
        if r.status != 200:
            raise self._fail(f"reading CronJob {name} answered {r.status}: {r.body}")
        return dict(r.body)

    def wait_for_schedule(
        self,
        namespace: str,
        name: str,
        done: Callable[[dict[str, Any], dict[str, Any] | None], bool],
        what: str,
        timeout: float = SETTLE_TIMEOUT,
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Until ``done(schedule, its CronJob or None)``; both, then. Bounded."""
        deadline = time.monotonic() + timeout
        while True:
            schedule = self.schedule(namespace, name)
            cron_job = self.cron_job(schedule)
            if done(schedule, cron_job):
                return schedule, cron_job
            if self._controller is None or not self._controller.running():
                raise self._fail("the controller is not running")
            if time.monotonic() > deadline:
                raise self._fail(
                    f"{what} within {timeout}s: not yet; ScheduleVMBackup {name}: "
                    f"spec {schedule.get('spec')}, status {schedule.get('status')}; "
                    f"CronJob {'none' if cron_job is None else cron_job['spec']}"
                )
            time.sleep(0.05)

    def schedule_barrier(self, timeout: float = SETTLE_TIMEOUT) -> None:
        """Return once the schedulevmbackup controller has handled every ScheduleVMBackup
        write made before the call.

        Its ScheduleVMBackup handler runs on one worker (threadiness 1), fed by
        one watch in resourceVersion order, keys taken first in, first out. The
        barrier creates a new schedule (a key that cannot already be queued) in
        a namespace of its own and waits for the controller to create its
        CronJob: by then every earlier event has been through the handler. The
        previous barrier schedule is deleted (the controller removes its
        CronJob). A retry after a failed handler is not waited for.
        """
        self._schedule_barrier_count += 1
        ns = "harvester-referee-barrier"
        name = f"schedule-barrier-{self._schedule_barrier_count}"
        collection = SCHEDULES.format(ns=ns)
        if self._schedule_barrier_count == 1:
            self.real.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        else:
            previous = f"schedule-barrier-{self._schedule_barrier_count - 1}"
            self.real.request("DELETE", f"{collection}/{previous}")
        r = self.real.request("POST", collection, schedule_vm_backup(ns, name))
        if r.status != 201:
            raise self._fail(f"creating the schedule barrier answered {r.status}: {r.body}")
        self.wait_for_schedule(
            ns, name, lambda _schedule, cron_job: cron_job is not None,
            "the controller did not create the schedule barrier's CronJob", timeout,
        )  # fmt: skip

    def settle(self, timeout: float = SETTLE_TIMEOUT) -> None:
        """Barriers until one passes with no Upgrade changed: the controller is quiet.

        One barrier covers the events before it; the controller's own writes
        are new events, and a handler that failed (a 409 on its update, say)
        is retried after a short back-off. So barriers repeat until the
        Upgrades' resourceVersions are the same before and after one.
        """
        deadline = time.monotonic() + timeout
        self.barrier(timeout)
        while True:
            before = self._versions()
            self.barrier(max(1.0, deadline - time.monotonic()))
            if self._versions() == before:
                return
            if time.monotonic() > deadline:
                raise self._fail(f"the controller kept changing Upgrades for {timeout}s")

    def _versions(self) -> dict[str, str]:
        listed = self.real.request("GET", self.real.upgrades_path()).body
        return {i["metadata"]["name"]: i["metadata"]["resourceVersion"] for i in listed["items"]}

    def reset(self) -> None:
        """Put the seeds back (new objects) with no UpgradeLogs and no webhooks, then settle.

        Upgrades are deleted (the controller's finalizer is removed so it does
        not hold them) and created again from the fixtures; the controller then
        handles the new seeds, and :meth:`barrier` waits for that.
        """
        real = self.real
        for kind in ("mutatingwebhookconfigurations", "validatingwebhookconfigurations"):
            base = f"/apis/admissionregistration.k8s.io/v1/{kind}"
            for item in (real.request("GET", base).body or {}).get("items", []):
                real.request("DELETE", f"{base}/{item['metadata']['name']}")
        names = [
            i["metadata"]["name"] for i in real.request("GET", real.upgrades_path()).body["items"]
        ]
        for name in names:
            real.request("DELETE", real.upgrades_path(name))
            real.request("PATCH", real.upgrades_path(name), {"metadata": {"finalizers": None}},
                         content_type="application/merge-patch+json")  # fmt: skip
        logs = f"/apis/harvesterhci.io/v1beta1/namespaces/{real.namespace}/upgradelogs"
        for item in (real.request("GET", logs).body or {}).get("items", []):
            real.request("DELETE", f"{logs}/{item['metadata']['name']}")
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while real.request("GET", real.upgrades_path()).body["items"] or (
            real.request("GET", logs).body or {}
        ).get("items"):
            if time.monotonic() > deadline:
                raise self._fail(f"upgrades or upgradelogs still there after {SETTLE_TIMEOUT}s")
            time.sleep(0.05)
        for seed in real.seed_objects():
            r = real.request("POST", real.upgrades_path(), seed)
            if r.status != 201:
                raise self._fail(
                    f"creating {seed['metadata']['name']} answered {r.status}: {r.body}"
                )
        if self._controller is not None:
            self.settle()

    # -- Steve --------------------------------------------------------------------

    def _start_steve(self) -> None:
        assert self._steve_built is not None
        assert self._tmp is not None
        kubeconfig = self.real.kubeconfig(self._tmp / "steve.kubeconfig", client_cert=True)
        for attempt in range(1, START_ATTEMPTS + 1):
            port = free_port()
            log = self._tmp / f"steve-{attempt}.log"
            argv = [str(self._steve_built.steve), "--kubeconfig", str(kubeconfig),
                    "--enable-header-auth", "--bind-host", "127.0.0.1",
                    "--http-listen-port", str(port), "--https-listen-port", "0"]  # fmt: skip
            self._steve = _Process("steve", argv, log)
            self.steve_url = f"http://127.0.0.1:{port}"
            try:
                self._wait_for_steve()
                return
            except RealApiServerError as exc:
                self._steve.stop()
                self._steve = None
                if "address already in use" not in str(exc) or attempt == START_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    def _wait_for_steve(self) -> None:
        """Until Steve serves the Upgrades collection (its schemas load after it listens)."""
        assert self._steve is not None
        deadline = time.monotonic() + STEVE_TIMEOUT
        last = "no answer"
        while time.monotonic() < deadline:
            if not self._steve.running():
                raise self._fail(f"steve exited with {self._steve.proc.returncode}")
            try:
                status, body = self.steve(
                    "GET", f"/v1/harvesterhci.io.upgrades/{self.real.namespace}"
                )
            except OSError as exc:
                last = str(exc)
            else:
                if status == 200:
                    return
                last = f"HTTP {status}: {str(body)[:200]}"
            time.sleep(0.2)
        raise self._fail(f"steve did not serve upgrades within {STEVE_TIMEOUT}s ({last})")

    def steve(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        user: str | None = None,
        groups: tuple[str, ...] = (),
        timeout: float = 10,
    ) -> tuple[int, Any]:
        """One request to Steve, as ``user`` in ``groups`` (header auth) or as the admin."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.steve_url + path, data=data, method=method)  # noqa: S310
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if user is not None:
            req.add_header("Impersonate-User", user)
            for group in groups:
                req.add_header("Impersonate-Group", group)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            with err:
                status, raw = err.code, err.read()
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.support.harvester [VERSION]``: build (or find) one version's
    cached binaries (:data:`HARVESTER_VERSION` by default)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) > 1 or (args and args[0] not in REFEREES):
        print(f"usage: python -m tests.support.harvester [{'|'.join(VERSIONS)}]", file=sys.stderr)
        return 2
    ref = referee(args[0] if args else HARVESTER_VERSION)
    what = ", ".join(
        f"steve {STEVE_VERSION}" if name == "steve" else name.replace("-", " ")
        for name in ref.binaries
    )
    return gotool.main(
        f"Harvester referee ({what})", ref.version, lambda: ensure_built(ref.version).directory
    )


if __name__ == "__main__":
    sys.exit(main())
