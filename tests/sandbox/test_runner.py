"""``harvester-upgrade-bff sandbox --write-kubeconfig``: the stock kubectl works against the
emulator unchanged (HTTPS with the CA made at start, user sandbox-admin), while the BFF
inside keeps its own kubeconfig and CA."""

from __future__ import annotations

import base64
import json
import os
import shutil
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.support.processes import banner_urls, command, one_line_exit_2, run, started

KUBECTL = shutil.which("kubectl")


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
def test_kubectl_uses_the_written_kubeconfig_unchanged(tmp_path: Path) -> None:
    assert KUBECTL is not None
    kubeconfig = tmp_path / "sandbox.kubeconfig"
    argv = command(
        "sandbox", "--port", "0", "--kube-port", "0", "--write-kubeconfig", str(kubeconfig)
    )
    with started(argv) as child:
        text = child.banner()
        assert f"export KUBECONFIG={kubeconfig}" in text
        bff_url, kube_url = banner_urls(text)
        assert kubeconfig.stat().st_mode & 0o077 == 0

        config = yaml.safe_load(kubeconfig.read_text())
        assert [u["name"] for u in config["users"]] == ["sandbox-admin"]
        cluster = config["clusters"][0]["cluster"]
        assert cluster["server"] == kube_url
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
        request = urllib.request.Request(f"{kube_url}/version")  # noqa: S310 - https
        with urllib.request.urlopen(request, context=trusting, timeout=10) as response:  # noqa: S310
            assert json.load(response)["major"] == "1"
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(request, timeout=10)  # noqa: S310

        # The BFF inside reaches the emulator through its own kubeconfig, with the same CA.
        listing = urllib.request.Request(  # noqa: S310 - http from the banner
            f"{bff_url}/api/v1.0.5/upgrades",
            headers={"Authorization": "Bearer sandbox-viewer"},
        )
        with urllib.request.urlopen(listing, timeout=10) as response:  # noqa: S310
            assert len(json.load(response)["data"]) == 3
        assert child.stop() == 0


def test_an_unwritable_kubeconfig_path_is_one_line_and_exit_2(tmp_path: Path) -> None:
    unwritable = str(tmp_path / "missing" / "kc")
    result = run("sandbox", "--write-kubeconfig", unwritable, "--kube-port", "0", timeout=30)
    line = one_line_exit_2(result)
    assert line.startswith("harvester-upgrade-bff: error: invalid --write-kubeconfig")
    assert "is not a writable directory" in line


def test_the_flag_is_explained_in_help() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bff", "sandbox", "--help"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    assert "--write-kubeconfig PATH" in out
    assert "BFF_WRITE_KUBECONFIG" in out
