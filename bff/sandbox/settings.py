"""The sandbox's settings: ``serve``'s, plus the emulator's, Rancher's and the controller's.

``sandbox`` reads the BFF's rows it shares with ``serve`` (see :mod:`bff.settings`)
and these; a row here belongs to ``sandbox`` alone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bff.settings import Command, Settings, parse_non_negative_float, parse_port, setting


def _writable_path(text: str) -> str:
    path = Path(text).expanduser()
    if path.is_dir():
        raise ValueError("is a directory")
    if not path.parent.is_dir() or not os.access(path.parent, os.W_OK):
        raise ValueError(f"{str(path.parent)!r} is not a writable directory")
    return str(path.absolute())


@dataclass(frozen=True)
class SandboxSettings(Settings):
    kube_port: int = setting(
        "--kube-port",
        "BFF_KUBE_PORT",
        "Port of the Kubernetes API emulator on 127.0.0.1.",
        default=6443,
        parse=parse_port,
        metavar="PORT",
        commands=frozenset({Command.SANDBOX}),
    )
    rancher_port: int | None = setting(
        "--rancher-port",
        "BFF_RANCHER_PORT",
        "Also start the simulated Rancher on 127.0.0.1:PORT (HTTPS with the sandbox's CA; "
        "0: any free port): its cluster proxy /k8s/clusters/local/... for the sandbox's "
        "Rancher tokens, and Steve's Upgrade create. The banner prints its tokens and a serve "
        "command for a BFF in Rancher mode in front of it.",
        default=None,
        parse=parse_port,
        metavar="PORT",
        commands=frozenset({Command.SANDBOX}),
        shown="none (off)",
    )
    controller_interval: float = setting(
        "--controller-interval",
        "BFF_CONTROLLER_INTERVAL",
        "Seconds between upgrade stages in the simulated controller; 0 leaves unfinished "
        "upgrades where they are.",
        default=0.0,
        parse=parse_non_negative_float,
        commands=frozenset({Command.SANDBOX}),
        metavar="SECONDS",
    )

    write_kubeconfig: str | None = setting(
        "--write-kubeconfig", "BFF_WRITE_KUBECONFIG",
        "Also write a kubeconfig for the emulator's sandbox-admin user (with the CA the "
        "emulator makes at start) to PATH, for kubectl; it is valid while this sandbox runs.",
        default=None, parse=_writable_path, commands=frozenset({Command.SANDBOX}),
        metavar="PATH", shown="one in the sandbox's temporary directory",
    )  # fmt: skip
