"""The command line: ``serve``, ``sandbox``, ``demo``, ``bench`` and ``doctor``.

``serve`` is the product, ``doctor`` checks it on a live cluster. The other three
run the sandbox, whose dependencies come with the ``sandbox`` extra; without it
they say so in one line (exit 2).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import logging
import sys
from collections.abc import Sequence

from bff import __version__, logs
from bff.bench.settings import BenchSettings
from bff.doctor.settings import DoctorSettings
from bff.sandbox.settings import SandboxSettings
from bff.settings import (
    CertSource,
    Command,
    Settings,
    SettingsError,
    add_arguments,
    from_sources,
)

log = logging.getLogger("bff")

SERVE_HELP = """\
Serve the BFF against a real cluster. The cluster comes from --kubeconfig (or
KUBECONFIG), or from the in-cluster service account when running in a pod. It
never falls back to the sandbox: with neither, it exits with status 2. With
--rancher-url, callers' requests go through Rancher's cluster proxy instead, to
the cluster their path names, with their own Rancher token; the kubeconfig then
serves the BFF's own readiness only.
"""

SANDBOX_HELP = """\
Run everything on this machine, with no cluster: a Kubernetes API emulator
seeded with three Upgrades, a simulated Harvester upgrade controller, and the
BFF in front of them. Prints the URLs and the sandbox-admin and sandbox-viewer
tokens. With --rancher-port, also a simulated Rancher (its cluster proxy and
Steve's Upgrade create) and its Rancher tokens. Stops on Ctrl-C or SIGTERM.
"""


DEMO_HELP = """\
Start the sandbox in this process (on free loopback ports) and show, step by step:
the finished upgrade's status; extension v1.0.4's dismiss body PUT straight to the
cluster wiping it, and the simulated controller re-initialising the upgrade; the same
body through the BFF leaving status intact; the v1.0.5 dismiss action; a dismiss
refused mid-upgrade; the direct PUT again on a second sandbox with the cluster
guard on, repaired. Each step checks what it claims: the exit status is 0 only if
every check held, 1 otherwise. Colour on a terminal only; NO_COLOR turns it off.
"""


BENCH_HELP = """\
Measure the BFF on this machine, each part in a process of its own: the API
emulator as upstream, the BFF (serve, logging as deployed), a hand-written
aiohttp forwarder (the baseline), a bare aiohttp handler answering fixed bytes
(the ceiling) and a load generator (wrk where installed, else Python).
Prints a table; --json PATH writes every figure. With --kubeconfig it reads a
real cluster instead, straight and through the BFF, and writes nothing.
"""


DOCTOR_HELP = """\
Check a live cluster where the BFF is installed: the guarded CRDs (each without a
status subresource), the guard's MutatingWebhookConfiguration, its caBundle against
the serving certificate, a server-side dry-run write that the API server must send
to the guard (it stores nothing), with --url the Ingress reaching the BFF, the BFF
ServiceAccount's permissions (SubjectAccessReviews), and every Upgrade's labels and
conditions. Reads, access reviews and dry-run writes only. Exit status: 0 healthy,
1 problems found, 2 could not check.
"""


#: Each command's settings: ``serve``'s are the product's; the others extend them.
KINDS: dict[Command, type[Settings]] = {
    Command.SERVE: Settings,
    Command.SANDBOX: SandboxSettings,
    Command.DEMO: Settings,
    Command.BENCH: BenchSettings,
    Command.DOCTOR: DoctorSettings,
}

#: Modules that only the sandbox imports (the demo and the bench run it), with the
#: distributions the ``sandbox`` extra installs them from.
SANDBOX_ONLY = {"celpy": "cel-python"}
SANDBOX_EXTRA = "pip install 'harvester-upgrade-bff[sandbox]'"


def missing_sandbox_extra() -> list[str]:
    """The sandbox-only distributions not installed here (empty: the extra is)."""
    return [
        dist for module, dist in SANDBOX_ONLY.items() if importlib.util.find_spec(module) is None
    ]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harvester-upgrade-bff",
        description="Backend-for-frontend that turns Harvester upgrade dismissals into one "
        "label-only merge patch, so a client can never wipe an Upgrade's status.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    described = {
        Command.SERVE: ("serve against a real cluster", SERVE_HELP),
        Command.SANDBOX: (
            "run the emulator, the simulated controller and the BFF, no cluster needed",
            SANDBOX_HELP,
        ),
        Command.DEMO: (
            "show the bug and the fix step by step on an in-process sandbox; exit 0 if all held",
            DEMO_HELP,
        ),
        Command.BENCH: (
            "measure the BFF against a hand-written forwarder, each in its own process",
            BENCH_HELP,
        ),
        Command.DOCTOR: (
            "check a live cluster: the guard, the route, the permissions, every Upgrade",
            DOCTOR_HELP,
        ),
    }
    for command, (summary, description) in described.items():
        sub = commands.add_parser(
            command,
            help=summary,
            description=description,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        add_arguments(sub, command, KINDS[command])

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    command = Command(args.command)
    needs_sandbox = command not in (Command.SERVE, Command.DOCTOR)
    if needs_sandbox and (missing := missing_sandbox_extra()):
        print(
            f"harvester-upgrade-bff: error: {command} needs the sandbox extra "
            f"(missing: {', '.join(missing)}): {SANDBOX_EXTRA}",
            file=sys.stderr,
        )
        return 2
    given = {k: v for k, v in vars(args).items() if k != "command"}
    try:
        settings = from_sources(given, command=command, kind=KINDS[command])
    except SettingsError as exc:
        print(f"harvester-upgrade-bff: error: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_format, settings.log_level)
    try:
        if command is Command.SERVE:
            return _serve(settings)
        if command is Command.DOCTOR:
            from bff.doctor.run import run as run_doctor

            assert isinstance(settings, DoctorSettings)
            return run_doctor(settings)
        if command is Command.DEMO:
            from bff.demo import main as run_demo

            return run_demo(settings)
        if command is Command.SANDBOX:
            from bff.sandbox.runner import run_sandbox

            assert isinstance(settings, SandboxSettings)
            return run_sandbox(settings)
        from bff.bench import run_bench

        assert isinstance(settings, BenchSettings)
        return run_bench(settings)

    except KeyboardInterrupt:
        return 130


def _serve(settings: Settings) -> int:
    from bff.app import create_app
    from bff.kube import ClusterConfigNotFound, WebhookCertificateError
    from bff.server import StartupError, serve_until_stopped

    if (
        settings.webhook_port is not None
        and not settings.webhook_tls_cert
        and settings.webhook_cert_source is CertSource.FILES
    ):
        print(
            "harvester-upgrade-bff: error: --webhook-port needs --webhook-tls-cert and "
            "--webhook-tls-key (BFF_WEBHOOK_TLS_CERT, BFF_WEBHOOK_TLS_KEY), or "
            "--webhook-cert-source self: the API server calls webhooks over HTTPS only",
            file=sys.stderr,
        )
        return 2
    try:
        asyncio.run(serve_until_stopped(create_app(settings), settings))
    except (StartupError, WebhookCertificateError) as exc:
        print(f"harvester-upgrade-bff: error: {exc}", file=sys.stderr)
        return 2
    except ClusterConfigNotFound as exc:
        reason = str(exc).rstrip(". ")
        print(
            f"harvester-upgrade-bff: error: {reason}. Point it at a cluster with --kubeconfig FILE "
            "or KUBECONFIG, run it in a pod with a service account, or try "
            "'harvester-upgrade-bff sandbox' for a local emulator.",
            file=sys.stderr,
        )
        return 2
    return 0
