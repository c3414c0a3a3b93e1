"""``harvester-upgrade-bff sandbox``: the emulator, the simulated controller and the BFF.

Everything runs in one process on loopback. The BFF and the controller reach
the emulator the way they would reach a real cluster: through
kubernetes-asyncio and a kubeconfig file. The emulator serves HTTPS with a CA made at
start (:mod:`bff.sandbox.tls`), and a kubeconfig for ``sandbox-admin`` carrying that CA
lets the stock kubectl talk to it unchanged.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shlex
import ssl
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

from aiohttp import web

from bff import server
from bff.app import create_app
from bff.sandbox.controller import SimulatedController
from bff.sandbox.emulator import create_emulator_app
from bff.sandbox.kubeconfig import write_kubeconfig
from bff.sandbox.tls import SandboxCA
from bff.settings import Settings, SettingsError

log = logging.getLogger(__name__)

DEFAULT_KUBE_PORT = 6443
#: The controller does not advance upgrades unless asked to, so the in-progress seed
#: stays in progress (and its Dismiss refused) for as long as a newcomer looks at it.
DEFAULT_CONTROLLER_INTERVAL = 0.0


def _float_env(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"invalid {name} value {raw!r}: must be a number") from None


def kubeconfig_option(args: argparse.Namespace) -> Path | None:
    """``--write-kubeconfig`` / ``BFF_WRITE_KUBECONFIG``, checked before anything starts."""
    raw = getattr(args, "write_kubeconfig", None) or os.environ.get("BFF_WRITE_KUBECONFIG")
    if not raw:
        return None
    path = Path(raw).expanduser()
    if path.is_dir():
        raise SettingsError(
            f"invalid --write-kubeconfig / BFF_WRITE_KUBECONFIG {raw!r}: is a directory"
        )
    if not path.parent.is_dir() or not os.access(path.parent, os.W_OK):
        raise SettingsError(
            f"invalid --write-kubeconfig / BFF_WRITE_KUBECONFIG {raw!r}: "
            f"{str(path.parent)!r} is not a writable directory"
        )
    return path.absolute()


def sandbox_options(args: argparse.Namespace) -> tuple[int, float]:
    kube_port = args.kube_port
    if kube_port is None:
        kube_port = int(_float_env("BFF_KUBE_PORT", DEFAULT_KUBE_PORT))
    interval = args.controller_interval
    if interval is None:
        interval = _float_env("BFF_CONTROLLER_INTERVAL", DEFAULT_CONTROLLER_INTERVAL)
    if not 0 <= kube_port <= 65535:
        raise SettingsError("invalid --kube-port / BFF_KUBE_PORT: must be 0 to 65535")
    if interval < 0:
        raise SettingsError("invalid --controller-interval: must be zero or more seconds")
    return kube_port, interval


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


@contextlib.asynccontextmanager
async def running(
    settings: Settings,
    kube_port: int = 0,
    interval: float = DEFAULT_CONTROLLER_INTERVAL,
    admin_kubeconfig: Path | None = None,
) -> AsyncIterator[Sandbox]:
    """Start the emulator, the simulated controller and the BFF; stop them on exit.

    The sandbox-admin kubeconfig goes to ``admin_kubeconfig``, or into the sandbox's
    temporary directory (removed on exit) when that is None.
    """
    with tempfile.TemporaryDirectory(prefix="bff-sandbox-") as tmp:
        ca = SandboxCA.create()
        ca_file = str(ca.write_ca(Path(tmp, "ca.crt")))
        emulator_app = create_emulator_app()
        emulator = web.AppRunner(emulator_app, handle_signals=False, access_log=None)
        await emulator.setup()
        try:
            site = web.TCPSite(
                emulator, "127.0.0.1", kube_port, ssl_context=ca.server_context(Path(tmp))
            )
            await site.start()
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
            await controller.start()
            try:
                bff_settings = replace(settings, kubeconfig=str(bff_config))
                bff_app = create_app(bff_settings)
                runner, bff_url = await server.start(bff_app, bff_settings)
                try:
                    yield Sandbox(
                        bff_url,
                        kube_url,
                        controller,
                        emulator_app,
                        bff_app,
                        admin_config,
                        ca.client_context(),
                    )
                finally:
                    await server.stop(runner)
            finally:
                await controller.stop()
        finally:
            await emulator.cleanup()


async def run(
    settings: Settings, kube_port: int, interval: float, kubeconfig: Path | None = None
) -> None:
    stopping = server.stop_event_on_signals()
    async with running(settings, kube_port, interval, kubeconfig) as sandbox:
        print(_banner(sandbox.bff_url, sandbox.kube_url, interval, sandbox.kubeconfig), flush=True)
        await stopping.wait()
        log.info("stopping the sandbox")


def _banner(bff_url: str, kube_url: str, interval: float, kubeconfig: Path) -> str:
    if interval > 0:
        advancing = f"advancing unfinished upgrades one stage every {interval:g}s"
    else:
        advancing = "advancing off (--controller-interval 5 to watch upgrades progress)"
    return f"""
harvester-upgrade-bff sandbox is running.

  BFF (the page and the API)  {bff_url}/
  Kubernetes API emulator     {kube_url}
  Simulated controller        watching harvester-system; {advancing}

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

  The bug and the fix, step by step: harvester-upgrade-bff demo

Stop with Ctrl-C.
"""


def run_sandbox(settings: Settings, args: argparse.Namespace) -> int:
    try:
        kube_port, interval = sandbox_options(args)
        kubeconfig = kubeconfig_option(args)
    except SettingsError as exc:
        print(f"harvester-upgrade-bff: error: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(run(settings, kube_port, interval, kubeconfig))
    except OSError as exc:
        print(f"harvester-upgrade-bff: error: {exc}", file=sys.stderr)
        return 1
    return 0
