"""The container image, built from the Dockerfile and run, with no engine and no registry.

``tests.support.image`` builds the Dockerfile with buildah on a locally made
Debian bookworm base (the Dockerfile's ``BASE_IMAGE`` build argument; users keep
``python:3.11-slim``). Then, as an operator would check it:

* the image's user is numeric and not root, and a process inside runs as it;
* ``harvester-upgrade-bff --help`` works inside the image;
* the sandbox started inside the image answers ``/healthz`` and a dismiss from
  outside the container, and the dismiss sets the label without touching status.

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
from typing import Any

import pytest

from tests.support import image
from tests.support.processes import banner_urls, started

pytestmark = pytest.mark.image

FINISHED = "hvst-upgrade-7xn6v"


@pytest.fixture(scope="module")
def built() -> str:
    reason = image.unavailable_reason()
    if reason is not None:
        if os.environ.get("BFF_REQUIRE_IMAGE") == "1":
            pytest.fail(f"BFF_REQUIRE_IMAGE=1 but the image cannot be built here: {reason}")
        pytest.skip(f"container image not built: {reason}")
    return image.build_image()


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


def test_help_works_inside_the_image(container: str) -> None:
    result = _run(container, "harvester-upgrade-bff", "--help")
    assert result.returncode == 0, result.stderr
    for command in ("serve", "sandbox"):
        assert command in result.stdout


def test_the_sandbox_inside_the_image_answers_health_and_a_dismiss(container: str) -> None:
    argv = [
        "buildah", *image.STORAGE, "run", "--isolation", "chroot",
        "--env", "BFF_HOST=127.0.0.1", container, "--",
        "harvester-upgrade-bff", "sandbox", "--port", "0",
        "--kube-port", "0", "--controller-interval", "0",
    ]  # fmt: skip
    # The container shares the host's network: the banner gives the ports it bound.
    with started(argv) as child:
        base, _ = banner_urls(child.banner(timeout=60))
        status, _, body = _request(f"{base}/healthz")
        assert (status, body) == (200, {"status": "ok"})

        item = f"{base}/api/v1.0.5/upgrades/harvester-system/{FINISHED}"
        _, _, before = _request(item, token="sandbox-admin")
        status, headers, after = _request(
            f"{item}?action=dismiss", method="POST", token="sandbox-admin"
        )
        assert status == 200, after
        assert headers["X-Upgrade-Bff-Changed"] == "true"
        assert after["metadata"]["labels"]["harvesterhci.io/read-message"] == "true"
        assert after["status"] == before["status"]
