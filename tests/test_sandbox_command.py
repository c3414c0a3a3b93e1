"""``harvester-upgrade-bff sandbox``, run as a user would: start, use, stop with SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_sandbox_starts_prints_urls_and_tokens_and_stops_cleanly() -> None:
    port, kube_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BFF_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bff", "sandbox", "--port", str(port),
         "--kube-port", str(kube_port), "--controller-interval", "0"],
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
        assert f"http://127.0.0.1:{kube_port}" in text
        assert "sandbox-admin" in text
        assert "sandbox-viewer" in text

        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1.0.5/upgrades",
            headers={"Authorization": "Bearer sandbox-viewer"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            assert len(json.load(response)["data"]) == 3

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
