"""``harvester-upgrade-bff sandbox``, run as a user would: start, use, stop with SIGTERM.

Also the defaults a newcomer meets: the controller does not advance upgrades unless
``--controller-interval`` says so, and the banner's examples can be tried in any order.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_sandbox_starts_prints_urls_and_tokens_and_stops_cleanly() -> None:
    port, kube_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BFF_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bff", "sandbox", "--port", str(port),
         "--kube-port", str(kube_port)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        banner = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            banner.append(line)
            if "Stop with Ctrl-C" in line or not line:
                break
        text = "".join(banner)
        assert f"http://127.0.0.1:{port}/" in text
        assert f"https://127.0.0.1:{kube_port}" in text
        assert "sandbox-admin" in text
        assert "sandbox-viewer" in text
        # By default the controller leaves the in-progress upgrade where it is.
        assert "advancing off (--controller-interval 5" in text

        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1.0.5/upgrades",
            headers={"Authorization": "Bearer sandbox-viewer"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            assert len(json.load(response)["data"]) == 3

        # The banner's dismiss example is refused, and so can be tried any number of times.
        dismiss = next(line for line in banner if "?action=dismiss" in line).strip().strip("'")
        refused = urllib.request.Request(  # noqa: S310
            dismiss, method="POST", headers={"Authorization": "Bearer sandbox-admin"}
        )
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(refused, timeout=10)  # noqa: S310
        assert caught.value.code == 409
        assert json.load(caught.value)["code"] == "UpgradeInProgress"
        caught.value.close()

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
