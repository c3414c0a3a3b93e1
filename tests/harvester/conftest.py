"""Fixtures for the tests refereed by the real Harvester: its upgrade and
schedulevmbackup controllers and Steve.

* ``harvester_session``: a real kube-apiserver of its own (the controller's
  ServiceAccount gets Harvester chart's RBAC here, which the other real-server
  tests must not see) with :class:`tests.support.harvester.HarvesterStack` on
  it: the real controllers and real Steve. Once per session.
* ``harvester``: the same, reset to the three seed Upgrades and settled
  (the controller has handled the new seeds) before each test.
* ``harvester_v150_session`` and ``harvester_v150``: the same for Harvester
  v1.5.0's upgrade controller (the version the sandbox simulates), on a real
  kube-apiserver of its own with v1.5.0's CRDs, without Steve; started only
  by the tests that ask for it.
* ``bff_process``: ``harvester-upgrade-bff serve`` in its own process against
  that API server, started per test through a factory (passthrough, with or
  without the webhook port).
* ``rancher``: the simulated Rancher (:mod:`bff.sandbox.rancher`) proxying that
  API server as cluster ``local``, with the real RBAC Rancher sets up on a
  cluster for the one Rancher user the tests call as (:func:`rancher_rbac`).
* :func:`dismiss_body`: the body the dashboard's "Dismiss it" PUTs, made by the
  extension's own ``save()`` from real Steve's item.
* :func:`overlay_configuration`: the chart's webhook configuration of the
  guard, calling a BFF on loopback.

They skip with one line when Go or etcd is missing, and fail instead when
BFF_REQUIRE_REAL_APISERVER=1.
"""

from __future__ import annotations

import asyncio
import copy
import os
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bff.sandbox.rancher import (
    RANCHER_RECORD,
    RANCHER_TOKENS,
    Forwarded,
    RancherUser,
    Upstream,
    create_rancher_app,
)
from bff.sandbox.tls import SandboxCA
from tests.support import shell
from tests.support.chart import shipped_webhook_configuration
from tests.support.harvester import (
    HARVESTER_VERSION,
    SIMULATED_VERSION,
    HarvesterStack,
    unavailable_reason,
)
from tests.support.processes import Child, command
from tests.support.real_apiserver import RealApiServer, RealApiServerUnavailable

REQUIRE_REAL = os.environ.get("BFF_REQUIRE_REAL_APISERVER") == "1"
ROOT = Path(__file__).resolve().parents[2]
#: Real Steve's collection of Upgrades in Harvester's namespace (stand-alone Steve
#: serves /v1/<type>, without the /v1/harvester prefix Harvester's own Steve adds).
STEVE_UPGRADES = "/v1/harvesterhci.io.upgrades/harvester-system"
READ_MESSAGE = "harvesterhci.io/read-message"
#: The Rancher token the tests call the BFF with in Rancher mode, and its user.
RANCHER_TOKEN = "token-sbadm:sandboxrancheradminsecret"
RANCHER_USER = RANCHER_TOKENS[RANCHER_TOKEN]
RBAC = "rbac.authorization.k8s.io"
#: Where Rancher keeps the per-user ServiceAccounts it impersonates with
#: (rancher/rancher pkg/impersonation: ImpersonationNamespace, ImpersonationPrefix).
IMPERSONATION_NAMESPACE = "cattle-impersonation-system"


def dismiss_body(harvester: HarvesterStack, version: str, name: str) -> dict[str, Any]:
    """The whole-object PUT body extension ``version``'s "Dismiss it" sends for the
    Upgrade ``name``: real Steve's item for it (as the admin, the dashboard's read,
    ``exclude=metadata.managedFields`` as the dashboard's store asks), through the
    extension's own ``save()`` (:func:`tests.support.shell.saved_body`)."""
    status, item = harvester.steve("GET", f"{STEVE_UPGRADES}/{name}?exclude=metadata.managedFields")
    assert status == 200, item
    return shell.saved_body(version, "upgrade", item, edit=shell.DISMISS)


def overlay_configuration(url: str, ca_bundle: str) -> dict[str, Any]:
    """The chart's webhook configuration (deploy/manifests), calling the BFF on loopback."""
    configuration = copy.deepcopy(shipped_webhook_configuration())
    configuration["metadata"].pop("annotations")  # cert-manager's injector is not here
    for hook in configuration["webhooks"]:
        path = hook["clientConfig"]["service"]["path"]
        hook["clientConfig"] = {"url": url + path, "caBundle": ca_bundle}
    return configuration


def _stack_session(version: str, *, steve: bool) -> Iterator[HarvesterStack]:
    """Harvester ``version``'s stack on a real API server of its own, until the session ends."""
    why = unavailable_reason(version)
    if why is not None:
        if REQUIRE_REAL:
            pytest.fail(f"the Harvester referee is required but unavailable: {why}")
        pytest.skip(f"the Harvester referee is unavailable: {why}")
    server = RealApiServer()
    try:
        server.start()
    except RealApiServerUnavailable as exc:
        if REQUIRE_REAL:
            pytest.fail(f"real API server required but unavailable: {exc}")
        pytest.skip(f"real API server unavailable: {exc}")
    stack = HarvesterStack(server, version=version, steve=steve)
    try:
        try:
            stack.start()
        except RealApiServerUnavailable as exc:
            if REQUIRE_REAL:
                pytest.fail(f"the Harvester referee is required but unavailable: {exc}")
            pytest.skip(f"the Harvester referee is unavailable: {exc}")
        yield stack
    finally:
        stack.stop()
        server.stop()


@pytest.fixture(scope="session")
def harvester_session() -> Iterator[HarvesterStack]:
    yield from _stack_session(HARVESTER_VERSION, steve=True)


@pytest.fixture(scope="session")
def harvester_v150_session() -> Iterator[HarvesterStack]:
    yield from _stack_session(SIMULATED_VERSION, steve=False)


def _fresh(stack: HarvesterStack) -> HarvesterStack:
    stack.start_controller()  # a test may have stopped it
    stack.reset()
    return stack


@pytest.fixture
def harvester(harvester_session: HarvesterStack) -> HarvesterStack:
    return _fresh(harvester_session)


@pytest.fixture
def harvester_v150(harvester_v150_session: HarvesterStack) -> HarvesterStack:
    return _fresh(harvester_v150_session)


class Bff:
    """``harvester-upgrade-bff serve`` in its own process, on the stack's API server.

    Ports are 0: the URLs come from the lines the BFF logs once it listens.
    """

    def __init__(
        self, real: RealApiServer, directory: Path, *, webhook: bool, args: tuple[str, ...] = ()
    ) -> None:
        kubeconfig = real.kubeconfig(directory / "bff.kubeconfig", token="sandbox-bff")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BFF_", "KUBECONFIG"))}
        argv = command("serve", "--kubeconfig", str(kubeconfig), "--port", "0", *args)
        if webhook:
            cert, key = real.issue_certificate(directory, name="webhook")
            argv += ["--webhook-port", "0", "--webhook-tls-cert", str(cert),
                     "--webhook-tls-key", str(key)]  # fmt: skip
        self.child = Child(argv, env=env, stderr=subprocess.STDOUT)
        self.webhook_url = ""
        try:
            if webhook:
                found = self.child.read_until(r"admission webhook serving on (https://[\d.:]+)")
                self.webhook_url = found.group(1)
            self.url = self.child.read_until(r"serving on (http://[\d.:]+)").group(1)
        except BaseException:
            self.child.stop()
            raise

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until ``/readyz`` answers 200 (with the read cache on: the cache has synced)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=5) as resp:  # noqa: S310
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            assert time.monotonic() < deadline, f"the BFF was not ready within {timeout}s"
            time.sleep(0.1)

    def stop(self) -> None:
        self.child.stop()


@pytest.fixture
def bff_process(harvester: HarvesterStack, tmp_path: Path) -> Iterator[Callable[..., Bff]]:
    started: list[Bff] = []

    def start(*, webhook: bool = False, args: tuple[str, ...] = ()) -> Bff:
        bff = Bff(harvester.real, tmp_path, webhook=webhook, args=args)
        started.append(bff)
        return bff

    yield start
    for bff in started:
        bff.stop()


# --------------------------------------------------------------------------
# Rancher mode: the simulated Rancher in front of the stack's API server


def rancher_rbac(user: RancherUser, namespace: str) -> list[dict[str, Any]]:
    """The RBAC objects that let the simulated Rancher act on the cluster as ``user``.

    Rancher's cluster proxy does not call a cluster as an admin: for each user
    it makes a ServiceAccount ``cattle-impersonation-<user id>`` in
    ``cattle-impersonation-system``, with a ClusterRole that may impersonate
    that user, its groups, and its ``principalid`` and ``username`` extras, by
    name and nothing else (rancher/rancher pkg/impersonation ``rulesForUser``;
    the ``requesttokenid``/``requesthost`` extras are left out because the
    simulation does not send them). Here the names come from the headers the
    simulation sends, so the rules allow exactly what it asks.

    What the user may do is Rancher's role templates rendered as RBAC on the
    cluster; here a Role in ``namespace`` that reads Upgrades and patches them,
    and no more: no ``update``, so a whole-object PUT as this user is refused
    whatever the BFF does with it.
    """
    sent = user.impersonation()
    name = f"cattle-impersonation-{user.id}"
    writer = f"test-rancher:{user.id}:upgrade-dismisser"

    def impersonate(group: str, resource: str, names: list[str]) -> dict[str, Any]:
        return {"apiGroups": [group], "resources": [resource], "resourceNames": names,
                "verbs": ["impersonate"]}  # fmt: skip

    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": IMPERSONATION_NAMESPACE}},
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": name, "namespace": IMPERSONATION_NAMESPACE}},
        {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRole", "metadata": {"name": name},
         "rules": [
             impersonate("", "users", [sent["Impersonate-User"]]),
             impersonate("", "groups", sent.getall("Impersonate-Group")),
             impersonate("authentication.k8s.io", "userextras/principalid",
                         [sent["Impersonate-Extra-Principalid"]]),
             impersonate("authentication.k8s.io", "userextras/username",
                         [sent["Impersonate-Extra-Username"]]),
         ]},
        {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
         "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": name},
         "subjects": [{"kind": "ServiceAccount", "name": name,
                       "namespace": IMPERSONATION_NAMESPACE}]},
        {"apiVersion": f"{RBAC}/v1", "kind": "Role",
         "metadata": {"name": writer, "namespace": namespace},
         "rules": [{"apiGroups": ["harvesterhci.io"], "resources": ["upgrades"],
                    "verbs": ["get", "list", "watch", "patch"]}]},
        {"apiVersion": f"{RBAC}/v1", "kind": "RoleBinding",
         "metadata": {"name": writer, "namespace": namespace},
         "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": writer},
         "subjects": [{"apiGroup": RBAC, "kind": "User", "name": user.id}]},
    ]  # fmt: skip


class SimulatedRancher:
    """:func:`bff.sandbox.rancher.create_rancher_app` on 127.0.0.1 over HTTPS (a CA of
    its own), served by an event loop on a thread of its own, since these tests
    are synchronous. Port 0: :attr:`url` is the one it got."""

    def __init__(self, clusters: dict[str, Upstream], directory: Path) -> None:
        ca = SandboxCA.create()
        self.ca_file = ca.write_ca(directory / "rancher-ca.crt")
        self._server_ssl = ca.server_context(directory)
        self.app = create_rancher_app(clusters)
        self._runner: web.AppRunner | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="simulated-rancher", daemon=True
        )
        self._thread.start()
        try:
            self.url = f"https://127.0.0.1:{self._call(self._start())}"
        except BaseException:
            self.stop()
            raise

    def _call(self, coro: Any, timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _start(self) -> int:
        self._runner = web.AppRunner(self.app, handle_signals=False, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self._server_ssl).start()
        return int(self._runner.addresses[0][1])

    def forwarded(self) -> list[Forwarded]:
        """What the proxy sent to a cluster so far (read after the answers came back)."""
        return list(self.app[RANCHER_RECORD].forwarded)

    def stop(self) -> None:
        try:
            if self._runner is not None:
                self._call(self._runner.cleanup())
                self._runner = None
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)
            if not self._thread.is_alive():
                self._loop.run_until_complete(self._loop.shutdown_asyncgens())
                self._loop.close()


@pytest.fixture
def rancher(harvester: HarvesterStack, tmp_path: Path) -> Iterator[SimulatedRancher]:
    """The simulated Rancher proxying the stack's API server as cluster ``local``, as
    :data:`RANCHER_USER` through its impersonation ServiceAccount's token."""
    real = harvester.real
    objects = rancher_rbac(RANCHER_USER, real.namespace)
    real.apply(*objects)
    try:
        account = f"cattle-impersonation-{RANCHER_USER.id}"
        token = real.create_token(IMPERSONATION_NAMESPACE, account, seconds=600)
        upstream = Upstream(
            real.url, ssl.create_default_context(cafile=str(real.ca_file)), token=token
        )
        proxy = SimulatedRancher({"local": upstream}, tmp_path)
        try:
            yield proxy
        finally:
            proxy.stop()
    finally:
        # The namespace stays: deleting it leaves it Terminating for the next test.
        real.delete(*reversed(objects[1:]))
