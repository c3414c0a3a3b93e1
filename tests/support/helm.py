"""The ``helm`` binary the chart tests run: found in the user cache, or built once.

Helm is not packaged for Debian and no release download is reachable here, so
it is built from source through the Go module proxy with exactly

    GOBIN=<cache>/helm/<version> go install helm.sh/helm/v3/cmd/helm@<version>

into ``$XDG_CACHE_HOME/harvester-upgrade-bff/helm/<version>/helm`` (or under
``~/.cache``), under a file lock so parallel test processes build it once. A
build from an empty Go build cache (the module sources already downloaded)
took 384 s at the lowest CPU priority on a shared, loaded 2-core machine, and
up to about 12 minutes otherwise, so ``scripts/test`` runs
``python -m tests.support.helm`` before pytest, where its progress shows.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.real_apiserver import find_go

HELM_VERSION = "v3.17.3"
PACKAGE = "helm.sh/helm/v3/cmd/helm"
BUILD_TIMEOUT = 45 * 60


class HelmUnavailable(RuntimeError):
    """No cached helm and no Go toolchain to build one: skip, unless required."""


class HelmBuildError(RuntimeError):
    """Go was there, but the build failed."""


def cache_dir(version: str = HELM_VERSION) -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "harvester-upgrade-bff" / "helm" / version


def cached(version: str = HELM_VERSION) -> Path | None:
    binary = cache_dir(version) / "helm"
    return binary if binary.is_file() and os.access(binary, os.X_OK) else None


def ensure_helm(version: str = HELM_VERSION) -> Path:
    """The cached helm binary, building it first when there is none."""
    found = cached(version)
    if found:
        return found
    go = find_go()
    if go is None:
        raise HelmUnavailable(f"Go is not installed, so helm {version} cannot be built")
    target = cache_dir(version)
    target.mkdir(parents=True, exist_ok=True)
    with open(target / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            found = cached(version)
            if found:
                return found
            return _build(go, version, target)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _build(go: str, version: str, target: Path) -> Path:
    log = target / "build.log"
    # Build into a scratch GOBIN and rename into place, so an interrupted build
    # never leaves a half-written binary where the next run would trust it.
    scratch = Path(tempfile.mkdtemp(prefix=".build-", dir=target))
    env = {**os.environ, "GOBIN": str(scratch), "GOWORK": "off", "GOFLAGS": "-buildvcs=false"}
    argv = [go, "install", f"{PACKAGE}@{version}"]
    print(f"building helm {version} (log: {log}) ...", file=sys.stderr, flush=True)
    began = time.monotonic()
    try:
        with open(log, "w") as out:
            out.write(f"$ GOBIN={scratch} {' '.join(argv)}\n")
            out.flush()
            try:
                proc = subprocess.run(
                    argv, env=env, stdout=out, stderr=out, timeout=BUILD_TIMEOUT, check=False
                )
            except subprocess.TimeoutExpired as exc:
                raise HelmBuildError(
                    f"building helm took over {BUILD_TIMEOUT}s; log {log}"
                ) from exc
        if proc.returncode != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
            raise HelmBuildError(f"go install {PACKAGE}@{version} failed; log {log}:\n{tail}")
        os.replace(scratch / "helm", target / "helm")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    seconds = time.monotonic() - began
    with open(log, "a") as out:
        out.write(f"built {target / 'helm'} in {seconds:.0f}s\n")
    print(f"built helm {version} in {seconds:.0f}s", file=sys.stderr, flush=True)
    return target / "helm"


def main() -> int:
    """``python -m tests.support.helm``: build (or find) the cached binary."""
    try:
        binary = ensure_helm()
    except HelmUnavailable as exc:
        print(f"helm unavailable: {exc}", file=sys.stderr)
        return 2
    except HelmBuildError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"helm {HELM_VERSION}: {binary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
