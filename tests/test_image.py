"""The container image, built from the Dockerfile and run, with no engine and no registry.

``tests.support.image`` builds the Dockerfile with buildah on a locally made
Debian bookworm base (the Dockerfile's ``BASE_IMAGE`` build argument; users keep
``python:3.11-slim``). Then, as an operator would check it:

* the image's user is numeric and not root, and a process inside runs as it;
* ``harvester-upgrade-bff --help`` works inside the image;
* the image carries the product only: none of the ``sandbox`` extra's modules, and
  ``sandbox`` says in one line how to install the extra (exit 2);
* ``serve`` started inside the image against an Upgrade API on the host's loopback
  becomes ready.

The module skips with one line when the machine cannot build images (not root,
no buildah or debootstrap), and fails instead when ``BFF_REQUIRE_IMAGE=1``.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bff.cli import SANDBOX_EXTRA, SANDBOX_ONLY
from tests.support import image
from tests.support.processes import started
from tests.support.upgrade_api import serving_upgrade_api, write_token_kubeconfig

pytestmark = pytest.mark.image


@pytest.fixture(scope="module")
def label_args() -> dict[str, str]:
    """The label arguments the image is built with (the commit at build time)."""
    return image.build_args()


@pytest.fixture(scope="module")
def built(label_args: dict[str, str]) -> str:
    reason = image.unavailable_reason()
    if reason is not None:
        if os.environ.get("BFF_REQUIRE_IMAGE") == "1":
            pytest.fail(f"BFF_REQUIRE_IMAGE=1 but the image cannot be built here: {reason}")
        pytest.skip(f"container image not built: {reason}")
    return image.build_image(label_args)


@pytest.fixture
def container(built: str) -> Iterator[str]:
    with image.container(built) as name:
        yield name


def _run(container: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        image.run_argv(container, *argv), capture_output=True, text=True, timeout=120, check=False
    )


def _request(url: str, *, method: str = "GET", token: str | None = None) -> tuple[int, Any, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, response.headers, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, json.load(exc)


def test_the_image_runs_as_a_numeric_non_root_user(built: str, container: str) -> None:
    config = image.image_config(built)
    uid, _, gid = config["User"].partition(":")
    assert uid.isdigit(), config
    assert int(uid) != 0, config
    assert gid.isdigit(), config
    assert int(gid) != 0, config
    assert config["Entrypoint"] == ["harvester-upgrade-bff", "serve"]

    result = _run(container, "id", "-u")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == uid


def test_the_image_is_labelled_with_its_version_and_commit(
    built: str, label_args: dict[str, str]
) -> None:
    labels = image.image_config(built)["Labels"]
    expected = label_args
    assert labels["org.opencontainers.image.version"] == expected["VERSION"]
    assert labels["org.opencontainers.image.revision"] == expected["REVISION"]
    assert labels["org.opencontainers.image.source"] == expected["SOURCE"]
    assert labels["org.opencontainers.image.title"] == "harvester-upgrade-bff"
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"


def test_help_works_inside_the_image(container: str) -> None:
    result = _run(container, "harvester-upgrade-bff", "--help")
    assert result.returncode == 0, result.stderr
    for command in ("serve", "sandbox"):
        assert command in result.stdout


def test_the_image_carries_no_sandbox_dependency(container: str) -> None:
    probe = "import importlib.util as u, sys; print([m for m in sys.argv[1:] if u.find_spec(m)])"
    result = _run(container, "python3", "-c", probe, *SANDBOX_ONLY, "bff", "aiohttp")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['bff', 'aiohttp']"

    result = _run(container, "harvester-upgrade-bff", "sandbox")
    assert result.returncode == 2
    # buildah adds lines of its own about the exit status after the command's.
    ours = [line for line in result.stderr.splitlines() if "exited with status" not in line]
    assert ours[:1] == [
        f"harvester-upgrade-bff: error: sandbox needs the sandbox extra "
        f"(missing: {', '.join(SANDBOX_ONLY.values())}): {SANDBOX_EXTRA}"
    ], result.stderr
    assert "Traceback" not in result.stderr


def test_serve_inside_the_image_becomes_ready(container: str, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    tmp_path.chmod(0o755)  # the image's user reads the kubeconfig through the mount
    with serving_upgrade_api() as api:
        write_token_kubeconfig(shared / "kubeconfig", api)
        argv = [
            "buildah", *image.STORAGE, "run", "--isolation", "chroot",
            "--volume", f"{shared}:/config:ro", container, "--",
            "harvester-upgrade-bff", "serve", "--host", "127.0.0.1", "--port", "0",
            "--kubeconfig", "/config/kubeconfig", "--read-cache", "off",
        ]  # fmt: skip
        # The container shares the host's network: the log gives the port it bound.
        with started(argv, stderr=subprocess.STDOUT) as child:
            serving = child.read_until(r"serving on (http://127\.0\.0\.1:\d+)", timeout=60)
            status, _, body = _request(f"{serving.group(1)}/readyz")
            assert status == 200, body
