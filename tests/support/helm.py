"""The ``helm`` binary the chart tests run: found in the user cache, or built once.

Helm is not packaged for Debian and no release download is reachable here, so
it is built from source through the Go module proxy with exactly

    GOBIN=<cache>/helm/<version> go install helm.sh/helm/v3/cmd/helm@<version>

into ``$XDG_CACHE_HOME/harvester-upgrade-bff/helm/<version>/helm`` (or under
``~/.cache``), under a file lock so parallel test processes build it once
(tests/support/gotool.py). A build from an empty Go build cache (the module
sources already downloaded) took 384 s at the lowest CPU priority on a shared,
loaded 2-core machine, up to about 12 minutes otherwise, and 30 minutes with
the modules downloaded too while three other Go builds ran, so
``scripts/test`` runs ``python -m tests.support.helm`` before pytest, where
its progress shows.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.support import gotool

HELM_VERSION = "v3.17.3"
PACKAGE = "helm.sh/helm/v3/cmd/helm"

HelmUnavailable = gotool.ToolUnavailable
HelmBuildError = gotool.ToolBuildError


def cache_dir(version: str = HELM_VERSION) -> Path:
    return gotool.cache_dir("helm", version)


def cached(version: str = HELM_VERSION) -> Path | None:
    return gotool.cached("helm", version)


def _build(build: gotool.Build, version: str) -> Path:
    env = gotool.go_env(GOBIN=str(build.scratch))
    build.run([build.go, "install", f"{PACKAGE}@{version}"], env=env)
    return build.scratch / "helm"


def ensure_helm(version: str = HELM_VERSION) -> Path:
    """The cached helm binary, building it first when there is none."""
    return gotool.ensure("helm", version, lambda build: _build(build, version))


def main() -> int:
    """``python -m tests.support.helm``: build (or find) the cached binary."""
    return gotool.main("helm", HELM_VERSION, ensure_helm)


if __name__ == "__main__":
    sys.exit(main())
