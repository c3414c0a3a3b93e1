"""Traefik (k3s's Ingress controller), built from its module, run against the real API server.

The binary: ``github.com/traefik/traefik/v3`` at :data:`TRAEFIK_VERSION`, built
once and cached (tests/support/gotool.py). Its go.mod has ``replace`` lines, so
``go install ...@version`` refuses it; the build downloads the module through
the Go module proxy, copies its sources (go.mod and go.sum as published) to a
scratch directory and runs ``go build ./cmd/traefik`` there, stamping the
version the way Traefik's Makefile does. ``python -m tests.support.traefik``
builds it; ``scripts/test`` runs that before pytest.

Measured on a shared 2-core machine: downloading the module graph 2 min; the
compile from an empty Go build cache 38 min of wall clock while three other Go
builds ran (load average 15-20; 41% of a core on average, 806 s user plus
138 s system CPU), so about 8-10 min on two otherwise idle cores; with the
build cache warm, 42 s (the copy and the link); found in the cache, no time.

:class:`Traefik` runs it with only the Kubernetes Ingress provider, reading
the API server through a kubeconfig (``KUBECONFIG``, which Traefik's provider
reads when it is not in a cluster), one HTTP entry point and its API
(``--api.insecure``) on a second one, both on loopback. No version check and
no usage report leave the machine. :meth:`Traefik.routers` is its router
table, with the priority that decides each request.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tests.support import gotool
from tests.support.real_apiserver import free_port

TRAEFIK_VERSION = "v3.6.12"
MODULE = "github.com/traefik/traefik/v3"
NAME = "traefik"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0

START_ATTEMPTS = 3

TraefikUnavailable = gotool.ToolUnavailable
TraefikBuildError = gotool.ToolBuildError


class TraefikExited(RuntimeError):
    """The traefik process ended while it was waited on."""


def _build(build: gotool.Build, version: str) -> Path:
    # `go mod download` outside any module: GOFLAGS=-mod=mod is refused there.
    info = json.loads(
        build.run([build.go, "mod", "download", "-json", f"{MODULE}@{version}"], capture=True)
    )
    source = build.scratch / "src"
    shutil.copytree(info["Dir"], source, copy_function=shutil.copyfile)
    # The module cache's directories are read-only and copytree keeps their
    # mode; the scratch directory must be removable afterwards.
    for root, _dirs, _files in os.walk(source):
        os.chmod(root, 0o700)
    binary = build.scratch / NAME
    ldflags = f"-s -w -X {MODULE}/pkg/version.Version={version}"
    build.run(
        [build.go, "build", "-trimpath", "-ldflags", ldflags, "-o", str(binary), "./cmd/traefik"],
        cwd=source,
    )
    printed = build.run([str(binary), "version"], capture=True)
    if version not in printed:
        raise TraefikBuildError(f"the built traefik reports {printed!r}, not {version}")
    return binary


def ensure_traefik(version: str = TRAEFIK_VERSION) -> Path:
    """The cached traefik binary, building it first when there is none."""
    return gotool.ensure(NAME, version, lambda build: _build(build, version))


class Traefik:
    """One traefik process watching Ingresses through ``kubeconfig``.

    ``args`` add to the command line (for example the provider's
    ``allowExternalNameServices``). Use as a context manager.
    """

    def __init__(self, kubeconfig: Path, log: Path, args: Sequence[str] = ()) -> None:
        self.kubeconfig = kubeconfig
        self.log = log
        self.args = list(args)
        self.web_port = 0
        self.api_port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Traefik:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def argv(self, binary: Path) -> list[str]:
        return [
            str(binary),
            "--global.checkNewVersion=false",
            "--global.sendAnonymousUsage=false",
            f"--entryPoints.web.address=127.0.0.1:{self.web_port}",
            # --api.insecure serves the API on the entry point named "traefik".
            f"--entryPoints.traefik.address=127.0.0.1:{self.api_port}",
            "--api.insecure=true",
            "--providers.kubernetesingress=true",
            "--log.level=DEBUG",
            *self.args,
        ]

    def start(self) -> None:
        binary = ensure_traefik()
        env = {k: v for k, v in os.environ.items() if k != "KUBERNETES_SERVICE_HOST"}
        env["KUBECONFIG"] = str(self.kubeconfig)
        # Traefik cannot listen on port 0 and tell its port, so free ports are
        # picked first; one taken meanwhile ends it at once, and it is retried.
        for attempt in range(1, START_ATTEMPTS + 1):
            self.web_port = free_port()
            while (api_port := free_port()) == self.web_port:
                pass
            self.api_port = api_port
            with open(self.log, "wb") as out:
                self._proc = subprocess.Popen(
                    self.argv(binary), stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env
                )
            try:
                self.wait_until(
                    lambda: self._get("/api/overview") is not None,
                    START_TIMEOUT,
                    "its API answering",
                )
                return
            except TraefikExited:
                if attempt == START_ATTEMPTS:
                    raise

    def stop(self) -> None:
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=STOP_TIMEOUT)

    def _get(self, path: str) -> Any:
        try:
            with urllib.request.urlopen(self.api_url + path, timeout=5) as resp:  # noqa: S310
                return json.loads(resp.read())
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return None

    def routers(self) -> list[dict[str, Any]]:
        """Traefik's HTTP router table: name, rule, priority, service, status, provider."""
        table = self._get("/api/http/routers?per_page=1000")
        assert isinstance(table, list), f"traefik's API answered {table!r}"
        return table

    def wait_until(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll ``ready`` until true; fail with traefik's log tail when it never is."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise TraefikExited(f"traefik exited ({self._proc.returncode}):\n{self.tail()}")
            if ready():
                return
            time.sleep(0.1)
        raise TimeoutError(f"traefik: no {what} within {timeout}s:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def main() -> int:
    return gotool.main(NAME, TRAEFIK_VERSION, ensure_traefik)


if __name__ == "__main__":
    sys.exit(main())
