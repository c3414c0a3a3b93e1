"""The sandbox as a user runs it (``harvester-upgrade-bff sandbox``), for the Pact tests.

A child process on free loopback ports, the simulated controller's timer off so
an upgrade in progress stays where a provider state put it. The URLs come from
the banner the command prints.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from tests.support.processes import banner_urls, command, started


@contextlib.contextmanager
def running_sandbox(*extra: str) -> Iterator[str]:
    """Start the sandbox; yield the BFF's URL; stop it with SIGTERM."""
    argv = command(
        "sandbox", "--port", "0", "--kube-port", "0", "--controller-interval", "0", *extra
    )
    with started(argv) as child:
        bff_url, _ = banner_urls(child.banner())
        yield bff_url
