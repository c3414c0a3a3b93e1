"""The command line: ``serve``, ``sandbox``, ``demo`` and ``bench``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from bff import __version__, logs
from bff.settings import Settings, SettingsError, add_arguments, from_sources

log = logging.getLogger("bff")

SERVE_HELP = """\
Serve the BFF against a real cluster. The cluster comes from --kubeconfig (or
KUBECONFIG), or from the in-cluster service account when running in a pod. It
never falls back to the sandbox: with neither, it exits with status 2.
"""

SANDBOX_HELP = """\
Run everything on this machine, with no cluster: a Kubernetes API emulator
seeded with three Upgrades, a simulated Harvester upgrade controller, and the
BFF in front of them. Prints the URLs and the sandbox-admin and sandbox-viewer
tokens. Stops on Ctrl-C or SIGTERM.
"""


DEMO_HELP = """\
Start the sandbox in this process (on free loopback ports) and show, step by step:
the finished upgrade's status; extension v1.0.4's dismiss body PUT straight to the
cluster wiping it, and the simulated controller re-initialising the upgrade; the same
body through the BFF leaving status intact; the v1.0.5 dismiss action; a dismiss
refused mid-upgrade. Each step checks what it claims: the exit status is 0 only if
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harvester-upgrade-bff",
        description="Backend-for-frontend that turns Harvester upgrade dismissals into one "
        "label-only merge patch, so a client can never wipe an Upgrade's status.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = commands.add_parser(
        "serve",
        help="serve against a real cluster",
        description=SERVE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(serve)

    sandbox = commands.add_parser(
        "sandbox",
        help="run the emulator, the simulated controller and the BFF, no cluster needed",
        description=SANDBOX_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sandbox.add_argument(
        "--kube-port",
        type=int,
        default=None,
        help="port of the Kubernetes API emulator on 127.0.0.1 [env: BFF_KUBE_PORT; default: 6443]",
    )
    sandbox.add_argument(
        "--controller-interval",
        type=float,
        default=None,
        help="seconds between upgrade stages in the simulated controller; 0 (the default) "
        "leaves unfinished upgrades where they are [env: BFF_CONTROLLER_INTERVAL; default: 0]",
    )
    sandbox.add_argument(
        "--write-kubeconfig",
        metavar="PATH",
        default=None,
        help="also write a kubeconfig for the emulator's sandbox-admin user (with the CA the "
        "emulator makes at start) to PATH, for kubectl; it is valid while this sandbox runs "
        "[env: BFF_WRITE_KUBECONFIG; default: one in the sandbox's temporary directory]",
    )
    add_arguments(sandbox, skip=("kubeconfig", "context", "tls_cert", "tls_key"))

    commands.add_parser(
        "demo",
        help="show the bug and the fix step by step on an in-process sandbox; exit 0 if all held",
        description=DEMO_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )

    bench = commands.add_parser(
        "bench",
        help="measure the BFF against a hand-written forwarder, each in its own process",
        description=BENCH_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from bff.bench import add_arguments as add_bench_arguments

    add_bench_arguments(bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = from_sources(_settings_args(args))
    except SettingsError as exc:
        print(f"harvester-upgrade-bff: error: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_format, settings.log_level)
    try:
        if args.command == "serve":
            return _serve(settings)
        if args.command == "demo":
            from bff.demo import main as run_demo

            return run_demo(settings)
        if args.command == "sandbox":
            from bff.sandbox.runner import run_sandbox

            return run_sandbox(settings, args)
        from bff.bench import run_bench

        return run_bench(args)
    except KeyboardInterrupt:
        return 130


def _settings_args(args: argparse.Namespace) -> dict[str, object]:
    if args.command == "bench":  # the bench's flags are its own; the BFF it starts reads none
        return {}
    skip = {"command", "kube_port", "controller_interval", "write_kubeconfig"}
    return {k: v for k, v in vars(args).items() if k not in skip}


def _serve(settings: Settings) -> int:
    from bff.app import create_app
    from bff.kube import ClusterConfigNotFound
    from bff.server import serve_until_stopped

    try:
        asyncio.run(serve_until_stopped(create_app(settings), settings))
    except ClusterConfigNotFound as exc:
        print(
            f"harvester-upgrade-bff: error: {exc}. Point it at a cluster with --kubeconfig FILE "
            "or KUBECONFIG, run it in a pod with a service account, or try "
            "'harvester-upgrade-bff sandbox' for a local emulator.",
            file=sys.stderr,
        )
        return 2
    return 0
