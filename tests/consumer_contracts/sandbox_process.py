"""The sandbox as a user runs it (``harvester-upgrade-bff sandbox``), for the Pact tests.

A child process on free loopback ports, the simulated controller's timer off so
an upgrade in progress stays where a provider state put it. The URLs come from
the banner the command prints.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

_URL = re.compile(r"BFF \(the page and the API\)\s+(http://127\.0\.0\.1:\d+\S*?)/?$")


@contextlib.contextmanager
def running_sandbox(*extra: str) -> Iterator[str]:
    """Start the sandbox; yield the BFF's URL; stop it with SIGTERM."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BFF_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bff", "sandbox", "--port", "0", "--kube-port", "0",
         "--controller-interval", "0", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        banner: list[str] = []
        deadline = time.monotonic() + 30
        url = None
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            banner.append(line)
            match = _URL.search(line)
            if match:
                url = match.group(1)
        assert url is not None, "the sandbox printed no BFF URL:\n" + "".join(banner)
        yield url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
