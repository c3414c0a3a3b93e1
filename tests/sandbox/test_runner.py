"""``harvester-upgrade-bff sandbox --write-kubeconfig``: the stock kubectl works against the
emulator unchanged (HTTPS with the CA made at start, user sandbox-admin), while the BFF
inside keeps its own kubeconfig and CA."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

KUBECTL = shutil.which("kubectl")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sandbox(*args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BFF_")}
    return subprocess.Popen(
        [sys.executable, "-m", "bff", "sandbox", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def banner_of(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    lines = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if "Stop with Ctrl-C" in line or not line:
            break
    return "".join(lines)


def stop(proc: subprocess.Popen[str]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
def test_kubectl_uses_the_written_kubeconfig_unchanged(tmp_path: Path) -> None:
    assert KUBECTL is not None
    kubeconfig = tmp_path / "sandbox.kubeconfig"
    port, kube_port = free_port(), free_port()
    proc = sandbox(
        "--port", str(port), "--kube-port", str(kube_port), "--write-kubeconfig", str(kubeconfig)
    )
    try:
        text = banner_of(proc)
        assert f"export KUBECONFIG={kubeconfig}" in text
        assert f"https://127.0.0.1:{kube_port}" in text
        assert kubeconfig.stat().st_mode & 0o077 == 0

        config = yaml.safe_load(kubeconfig.read_text())
        assert [u["name"] for u in config["users"]] == ["sandbox-admin"]
        cluster = config["clusters"][0]["cluster"]
        assert cluster["server"] == f"https://127.0.0.1:{kube_port}"
        ca_pem = base64.b64decode(cluster["certificate-authority-data"])

        env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(tmp_path)}
        listed = subprocess.run(
            [KUBECTL, "get", "upgrades", "-n", "harvester-system", "-o", "name"],
            capture_output=True, text=True, env=env, timeout=60, check=False,
        )  # fmt: skip
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.split() == [
            "upgrade.harvesterhci.io/hvst-upgrade-7xn6v",
            "upgrade.harvesterhci.io/hvst-upgrade-fl4k2",
            "upgrade.harvesterhci.io/hvst-upgrade-zjft7",
        ]
        # The emulator's certificate is signed by that CA and by nothing this machine trusts.
        trusting = ssl.create_default_context(cadata=ca_pem.decode())
        request = urllib.request.Request(f"https://127.0.0.1:{kube_port}/version")
        with urllib.request.urlopen(request, context=trusting, timeout=10) as response:  # noqa: S310
            assert json.load(response)["major"] == "1"
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(request, timeout=10)  # noqa: S310

        # The BFF inside reaches the emulator through its own kubeconfig, with the same CA.
        bff = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1.0.5/upgrades",
            headers={"Authorization": "Bearer sandbox-viewer"},
        )
        with urllib.request.urlopen(bff, timeout=10) as response:  # noqa: S310
            assert len(json.load(response)["data"]) == 3
    finally:
        assert stop(proc) == 0


def test_an_unwritable_kubeconfig_path_is_one_line_and_exit_2(tmp_path: Path) -> None:
    proc = sandbox("--write-kubeconfig", str(tmp_path / "missing" / "kc"), "--kube-port", "0")
    try:
        out, err = proc.communicate(timeout=30)
    finally:
        stop(proc)
    assert proc.returncode == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("harvester-upgrade-bff: error: invalid --write-kubeconfig")
    assert "is not a writable directory" in lines[0]


def test_the_flag_is_explained_in_help() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bff", "sandbox", "--help"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    assert "--write-kubeconfig PATH" in out
    assert "BFF_WRITE_KUBECONFIG" in out
