"""Fixtures for the tests refereed by the real Harvester: its upgrade and
schedulevmbackup controllers and Steve.

* ``harvester_session``: a real kube-apiserver of its own (the controller's
  ServiceAccount gets Harvester chart's RBAC here, which the other real-server
  tests must not see) with :class:`tests.support.harvester.HarvesterStack` on
  it: the real controllers and real Steve. Once per session.
* ``harvester``: the same, reset to the three seed Upgrades and settled
  (the controller has handled the new seeds) before each test.
* ``bff_process``: ``harvester-upgrade-bff serve`` in its own process against
  that API server, started per test through a factory (passthrough, with or
  without the webhook port).
* :func:`dismiss_body`: the body the dashboard's "Dismiss it" PUTs, made by the
  extension's own ``save()`` from real Steve's item.
* :func:`overlay_configuration`: deploy/overlays/webhook's configuration of the
  guard, calling a BFF on loopback.

They skip with one line when Go or etcd is missing, and fail instead when
BFF_REQUIRE_REAL_APISERVER=1.
"""

from __future__ import annotations

import copy
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import shell
from tests.support.harvester import HarvesterStack, unavailable_reason
from tests.support.processes import Child, command
from tests.support.real_apiserver import RealApiServer, RealApiServerUnavailable

REQUIRE_REAL = os.environ.get("BFF_REQUIRE_REAL_APISERVER") == "1"
ROOT = Path(__file__).resolve().parents[2]
#: Real Steve's collection of Upgrades in Harvester's namespace (stand-alone Steve
#: serves /v1/<type>, without the /v1/harvester prefix Harvester's own Steve adds).
STEVE_UPGRADES = "/v1/harvesterhci.io.upgrades/harvester-system"
READ_MESSAGE = "harvesterhci.io/read-message"
WEBHOOK_CONFIGURATION = (
    ROOT / "deploy" / "overlays" / "webhook" / "mutatingwebhookconfiguration.yaml"
)


def dismiss_body(harvester: HarvesterStack, version: str, name: str) -> dict[str, Any]:
    """The whole-object PUT body extension ``version``'s "Dismiss it" sends for the
    Upgrade ``name``: real Steve's item for it (as the admin, the dashboard's read,
    ``exclude=metadata.managedFields`` as the dashboard's store asks), through the
    extension's own ``save()`` (:func:`tests.support.shell.saved_body`)."""
    status, item = harvester.steve("GET", f"{STEVE_UPGRADES}/{name}?exclude=metadata.managedFields")
    assert status == 200, item
    return shell.saved_body(version, "upgrade", item, edit=shell.DISMISS)


def overlay_configuration(url: str, ca_bundle: str) -> dict[str, Any]:
    """deploy/overlays/webhook's configuration, calling the BFF on loopback."""
    (configuration,) = yaml.safe_load_all(WEBHOOK_CONFIGURATION.read_text())
    configuration = copy.deepcopy(configuration)
    configuration["metadata"].pop("annotations")  # cert-manager's injector is not here
    for hook in configuration["webhooks"]:
        path = hook["clientConfig"]["service"]["path"]
        hook["clientConfig"] = {"url": url + path, "caBundle": ca_bundle}
    return configuration  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def harvester_session() -> Iterator[HarvesterStack]:
    why = unavailable_reason()
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
    stack = HarvesterStack(server)
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


@pytest.fixture
def harvester(harvester_session: HarvesterStack) -> HarvesterStack:
    harvester_session.start_controller()  # a test may have stopped it
    harvester_session.reset()
    return harvester_session


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
