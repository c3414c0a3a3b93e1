"""``harvester-upgrade-bff sandbox``: the emulator, the simulated controller and the BFF.

Everything runs in one process on loopback. The BFF and the controller reach
the emulator the way they would reach a real cluster: through
kubernetes-asyncio and a kubeconfig file. The emulator serves HTTPS with a CA made at
start (:mod:`bff.sandbox.tls`), and a kubeconfig for ``sandbox-admin`` carrying that CA
lets the stock kubectl talk to it unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shlex
import ssl
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

from aiohttp import web

from bff import server
from bff.admission.configuration import MUTATE_PATH
from bff.app import create_app
from bff.keys import METRICS
from bff.sandbox import page, provider_states
from bff.sandbox.admission import WebhookAdmission, guarding
from bff.sandbox.controller import SimulatedController
from bff.sandbox.emulator import EMULATOR_STORE, create_emulator_app
from bff.sandbox.kubeconfig import write_kubeconfig
from bff.sandbox.rancher import RANCHER_TOKENS, Upstream, create_rancher_app
from bff.sandbox.settings import SandboxSettings
from bff.sandbox.tls import SandboxCA
from bff.settings import Settings

log = logging.getLogger(__name__)

#: The controller does not advance upgrades unless asked to, so the in-progress seed
#: stays in progress (and its Dismiss refused) for as long as a newcomer looks at it.
DEFAULT_CONTROLLER_INTERVAL: float = SandboxSettings.controller_interval


@dataclass(frozen=True)
class Sandbox:
    """A running sandbox: where each part listens, and the parts a caller may inspect."""

    bff_url: str
    kube_url: str
    controller: SimulatedController
    emulator: web.Application
    bff: web.Application
    #: A kubeconfig for sandbox-admin that kubectl uses unchanged.
    kubeconfig: Path
    #: Trusts the emulator's CA: for HTTP clients other than kubeconfig readers.
    client_ssl: ssl.SSLContext
    #: The cluster guard's URL when ``settings.webhook_port`` is set (the emulator
    #: then consults it on every Upgrade write), else None.
    webhook_url: str | None = None
    #: The simulated Rancher's URL when it was started (``rancher_port``), else None.
    rancher_url: str | None = None
    rancher: web.Application | None = None
    #: The sandbox CA's file: what a client of the emulator or the Rancher trusts.
    ca_file: str | None = None


@contextlib.asynccontextmanager
async def running(
    settings: Settings,
    kube_port: int = 0,
    interval: float = DEFAULT_CONTROLLER_INTERVAL,
    admin_kubeconfig: Path | None = None,
    rancher_port: int | None = None,
) -> AsyncIterator[Sandbox]:
    """Start the emulator, the simulated controller and the BFF; stop them on exit.

    The sandbox-admin kubeconfig goes to ``admin_kubeconfig``, or into the sandbox's
    temporary directory (removed on exit) when that is None. With ``rancher_port``
    the simulated Rancher (:mod:`bff.sandbox.rancher`) proxies the emulator as its
    ``local`` cluster there.
    """
    with tempfile.TemporaryDirectory(prefix="bff-sandbox-") as tmp:
        ca = SandboxCA.create()
        ca_file = str(ca.write_ca(Path(tmp, "ca.crt")))
        admission = WebhookAdmission() if settings.webhook_port is not None else None
        emulator_app = create_emulator_app(admission=admission)
        emulator = web.AppRunner(emulator_app, handle_signals=False, access_log=None)
        await emulator.setup()
        try:
            site = web.TCPSite(
                emulator, "127.0.0.1", kube_port, ssl_context=ca.server_context(Path(tmp))
            )
            await server.listen(
                site,
                f"127.0.0.1:{kube_port} for the Kubernetes API emulator "
                "(--kube-port, BFF_KUBE_PORT)",
            )
            kube_url = f"https://127.0.0.1:{emulator.addresses[0][1]}"
            bff_config = write_kubeconfig(
                Path(tmp, "bff.kubeconfig"), kube_url, token="sandbox-bff", ca_file=ca_file
            )
            controller_config = write_kubeconfig(
                Path(tmp, "controller.kubeconfig"),
                kube_url,
                token="sandbox-controller",
                ca_file=ca_file,
            )
            admin_config = write_kubeconfig(
                admin_kubeconfig or Path(tmp, "admin.kubeconfig"),
                kube_url,
                token="sandbox-admin",
                ca_pem=ca.ca_pem,
                user="sandbox-admin",
            )
            controller = SimulatedController(
                kubeconfig=str(controller_config), namespace=settings.namespace, interval=interval
            )
            # The BFF first: a busy --port is one line, before the controller logs anything.
            bff_settings = replace(settings, kubeconfig=str(bff_config), webhook_port=None)
            bff_app = create_app(bff_settings)
            # Pact's provider states: served by the sandbox's BFF only, never by `serve`.
            provider_states.mount(bff_app, emulator_app[EMULATOR_STORE], bff_settings.base_path)
            client_ssl = ca.client_context()
            page.install(
                bff_app,
                base_path=bff_settings.base_path,
                kube_url=kube_url,
                kube_ssl=client_ssl,
                controller=controller,
                guard=admission is not None,
            )
            async with (
                guarding(settings, admission, ca, Path(tmp), bff_app[METRICS]) as webhook_url,
                _rancher(rancher_port, kube_url, ca, Path(tmp)) as (rancher_url, rancher_app),
            ):
                runner, bff_url = await server.start(bff_app, bff_settings)
                try:
                    await controller.start()
                    try:
                        yield Sandbox(
                            bff_url,
                            kube_url,
                            controller,
                            emulator_app,
                            bff_app,
                            admin_config,
                            client_ssl,
                            webhook_url,
                            rancher_url,
                            rancher_app,
                            ca_file,
                        )
                    finally:
                        await controller.stop()
                finally:
                    await server.stop(runner)
        finally:
            await emulator.cleanup()


@contextlib.asynccontextmanager
async def _rancher(
    port: int | None, kube_url: str, ca: SandboxCA, directory: Path
) -> AsyncIterator[tuple[str | None, web.Application | None]]:
    """The simulated Rancher on 127.0.0.1:``port`` (HTTPS, the sandbox CA), or nothing."""
    if port is None:
        yield None, None
        return
    app = create_rancher_app({"local": Upstream(kube_url, ca.client_context())})
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=ca.server_context(directory))
        await server.listen(
            site, f"127.0.0.1:{port} for the simulated Rancher (--rancher-port, BFF_RANCHER_PORT)"
        )
        yield f"https://127.0.0.1:{runner.addresses[0][1]}", app
    finally:
        await runner.cleanup()


async def run(
    settings: Settings,
    kube_port: int,
    interval: float,
    kubeconfig: Path | None = None,
    rancher_port: int | None = None,
) -> None:
    stopping = server.stop_event_on_signals()
    async with running(settings, kube_port, interval, kubeconfig, rancher_port) as sandbox:
        banner = _banner(
            sandbox.bff_url,
            sandbox.kube_url,
            interval,
            sandbox.kubeconfig,
            sandbox.webhook_url,
            sandbox.rancher_url,
            sandbox.ca_file,
        )
        print(banner, flush=True)
        await stopping.wait()
        log.info("stopping the sandbox")


def _banner(
    bff_url: str,
    kube_url: str,
    interval: float,
    kubeconfig: Path,
    webhook_url: str | None = None,
    rancher_url: str | None = None,
    ca_file: str | None = None,
) -> str:
    guard = _guard_line(webhook_url)
    rancher = _rancher_lines(rancher_url, ca_file)
    if interval > 0:
        advancing = f"advancing unfinished upgrades one stage every {interval:g}s"
    else:
        advancing = "advancing off (--controller-interval 5 to watch upgrades progress)"
    return f"""
harvester-upgrade-bff sandbox is running.

  BFF (the page and the API)  {bff_url}/
  Kubernetes API emulator     {kube_url}
  Simulated controller        watching harvester-system; {advancing}
  Cluster guard (webhook)     {guard}
  Simulated Rancher           {rancher_url or "off (--rancher-port 8443 starts it)"}

  Tokens   sandbox-admin   every verb
           sandbox-viewer  get, list and watch only

  Try:
    curl -H 'Authorization: Bearer sandbox-viewer' {bff_url}/api/v1.0.5/upgrades
    # dismissing the upgrade that is still in progress is refused (409), nothing is written:
    curl -X POST -H 'Authorization: Bearer sandbox-admin' \\
      '{bff_url}/api/v1.0.5/upgrades/harvester-system/hvst-upgrade-zjft7?action=dismiss'

  kubectl, as sandbox-admin:
    export KUBECONFIG={shlex.quote(str(kubeconfig))}
    kubectl get upgrades -n harvester-system
{rancher}
  The bug and the fix, step by step: harvester-upgrade-bff demo

Stop with Ctrl-C.
"""


def _rancher_lines(url: str | None, ca_file: str | None) -> str:
    if url is None:
        return ""
    (admin, admin_user), (viewer, viewer_user) = (
        (token, user.username) for token, user in RANCHER_TOKENS.items()
    )
    ca = shlex.quote(ca_file or "ca.crt")
    # The BFF's own kubeconfig (its service account) sits next to the CA.
    own = shlex.quote(str(Path(ca_file or "ca.crt").with_name("bff.kubeconfig")))
    return f"""
  Rancher tokens (bearer or R_SESS cookie, at the simulated Rancher only; its CA: {ca})
           {admin}   Rancher {admin_user}: every verb
           {viewer}  Rancher {viewer_user}: get, list and watch Upgrades
    curl --cacert {ca} -H 'Authorization: Bearer {viewer}' \\
      {url}/k8s/clusters/local/apis/harvesterhci.io/v1beta1/namespaces/harvester-system/upgrades
  A BFF in Rancher mode in front of it (another terminal; readiness on the BFF's account):
    harvester-upgrade-bff serve --port 8081 --kubeconfig {own} \\
      --rancher-url {url} --rancher-ca-bundle {ca}
    curl -X POST -H 'Authorization: Bearer {admin}' \\
      'http://127.0.0.1:8081/api/v1.0.5/upgrades/harvester-system/hvst-upgrade-fl4k2?action=dismiss'
"""


def _guard_line(url: str | None) -> str:
    if url is None:
        return "off: a direct PUT to the emulator wipes status (--webhook-port 0 turns it on)"
    return f"{url}{MUTATE_PATH}, consulted by the emulator on every guarded write"


def run_sandbox(settings: SandboxSettings) -> int:
    try:
        kubeconfig = Path(settings.write_kubeconfig) if settings.write_kubeconfig else None
        asyncio.run(
            run(
                settings,
                settings.kube_port,
                settings.controller_interval,
                kubeconfig,
                settings.rancher_port,
            )
        )
    except server.StartupError as exc:
        print(f"harvester-upgrade-bff: error: {exc}", file=sys.stderr)
        return 2
    return 0
