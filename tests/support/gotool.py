"""Go-built tools the tests run, each built once and cached by version.

A tool lives at ``$XDG_CACHE_HOME/harvester-upgrade-bff/<name>/<version>/<name>``
(or under ``~/.cache``). :func:`ensure` returns it, building it first under a
file lock, so parallel test processes build it once and the others wait. A
build writes into a scratch directory next to the final place and is renamed
into place only when it succeeded, so an interrupted build never leaves a
binary the next run would trust. Each build's commands and output go to
``build.log`` beside it, with the seconds it took.

The tools: helm (tests/support/helm.py), Traefik (tests/support/traefik.py)
and kube-apiserver (tests/support/real_apiserver.py, from its own wrapper
module). The Harvester referee (tests/support/harvester.py) builds a directory
of binaries and manifests rather than one binary, with the same lock, runner
and log.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

#: Where Go's official tarball puts it, when ``go`` is not on PATH.
GO_FALLBACK = "/usr/local/go/bin/go"

#: One build's ceiling: a cold build on two loaded cores has taken up to about 25 minutes.
BUILD_TIMEOUT = 60 * 60


class ToolUnavailable(RuntimeError):
    """No cached binary and no Go toolchain to build one: skip, unless required."""


class ToolBuildError(RuntimeError):
    """Go was there, but the build failed."""


def find_go() -> str | None:
    found = shutil.which("go")
    if found:
        return found
    return GO_FALLBACK if os.access(GO_FALLBACK, os.X_OK) else None


def tail(path: Path, lines: int = 40) -> str:
    """The last lines of a log, for an error message."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no {path.name})"
    return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive file lock, so parallel test processes build only once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def cache_root() -> Path:
    """This project's directory under the user cache directory."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "harvester-upgrade-bff"


def cache_dir(name: str, version: str) -> Path:
    return cache_root() / name / version


def cached(name: str, version: str) -> Path | None:
    binary = cache_dir(name, version) / name
    return binary if binary.is_file() and os.access(binary, os.X_OK) else None


def go_env(**extra: str) -> dict[str, str]:
    """The environment of a build: no workspace, no VCS stamping (a module zip has no .git)."""
    return {**os.environ, "GOWORK": "off", "GOFLAGS": "-buildvcs=false", **extra}


class Build:
    """One build in progress: its scratch directory, its Go, and a logged runner."""

    def __init__(self, go: str, scratch: Path, log: Path) -> None:
        self.go = go
        self.scratch = scratch
        self.log = log

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        capture: bool = False,
    ) -> str:
        """Run one command to the end, its output appended to the log (or returned)."""
        with open(self.log, "a") as out:
            out.write(f"$ {' '.join(argv)}\n")
            out.flush()
            try:
                proc = subprocess.run(
                    list(argv),
                    cwd=cwd or self.scratch,
                    env=dict(env) if env is not None else go_env(),
                    stdout=subprocess.PIPE if capture else out,
                    stderr=out,
                    text=True,
                    timeout=BUILD_TIMEOUT,
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                raise ToolBuildError(
                    f"{argv[0]} took over {BUILD_TIMEOUT}s; log {self.log}"
                ) from exc
        if proc.returncode != 0:
            raise ToolBuildError(
                f"{' '.join(argv[:3])} failed (exit {proc.returncode}); log {self.log}:\n"
                + tail(self.log)
            )
        return proc.stdout if capture else ""


def ensure(name: str, version: str, build: Callable[[Build], Path]) -> Path:
    """The cached ``name`` at ``version``; ``build`` makes it in a scratch directory first.

    ``build`` returns the path of the binary it made; it is renamed into place.
    """
    found = cached(name, version)
    if found:
        return found
    go = find_go()
    if go is None:
        raise ToolUnavailable(f"Go is not installed, so {name} {version} cannot be built")
    target = cache_dir(name, version)
    with locked(target / ".lock"):
        found = cached(name, version)
        if found:
            return found
        return _build(name, version, target, go, build)


def _build(name: str, version: str, target: Path, go: str, build: Callable[[Build], Path]) -> Path:
    log = target / "build.log"
    log.write_text("")
    scratch = Path(tempfile.mkdtemp(prefix=".build-", dir=target))
    print(f"building {name} {version} (log: {log}) ...", file=sys.stderr, flush=True)
    began = time.monotonic()
    try:
        made = build(Build(go, scratch, log))
        os.replace(made, target / name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    seconds = time.monotonic() - began
    with open(log, "a") as out:
        out.write(f"built {target / name} in {seconds:.0f}s\n")
    print(f"built {name} {version} in {seconds:.0f}s", file=sys.stderr, flush=True)
    return target / name


def main(name: str, version: str, ensure_tool: Callable[[], Path]) -> int:
    """``python -m tests.support.<tool>``: build (or find) the cached binary; exit 2 without Go.

    Every Go-built referee's command line (kube-apiserver, helm, Traefik, the
    Harvester referee) ends here, whichever harness built it.
    """
    began = time.monotonic()
    try:
        binary = ensure_tool()
    except ToolUnavailable as exc:
        print(f"{name} unavailable: {exc}", file=sys.stderr)
        return 2
    except ToolBuildError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"{name} {version}: {binary} ({time.monotonic() - began:.0f}s)")
    return 0
