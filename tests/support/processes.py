"""Commands run as child processes: start one, read what it prints, stop it.

Servers are started on port 0 and tell their port in what they print (the sandbox's
banner), so no test picks a "free" port that someone else may take before the child
binds it. Output is read on a thread, so every wait has a real deadline even when the
child prints nothing.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[2]
#: The sandbox banner's last line.
BANNER_END = "Stop with Ctrl-C"
_BFF_URL = re.compile(r"BFF \(the page and the API\)\s+(http://127\.0\.0\.1:\d+\S*?)/?$", re.M)
_KUBE_URL = re.compile(r"Kubernetes API emulator\s+(https?://127\.0\.0\.1:\d+)$", re.M)


def command(*args: str) -> list[str]:
    """``harvester-upgrade-bff ARGS`` as this interpreter runs it."""
    return [sys.executable, "-m", "bff", *args]


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without a ``BFF_`` setting, a kubeconfig or an in-cluster address
    (a developer's own would leak in), plus ``extra``."""
    leaks = ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BFF_") and k not in leaks}
    return {**env, **extra}


def run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``harvester-upgrade-bff ARGS`` to the end, in :func:`clean_env` plus ``env``."""
    return subprocess.run(
        command(*args),
        cwd=ROOT,
        env=clean_env(**(env or {})),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def one_line_exit_2(result: subprocess.CompletedProcess[str]) -> str:
    """A bad start as the user meets it: exit status 2, one line on stderr, nothing else."""
    assert result.returncode == 2, (result.returncode, result.stderr[-3000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert lines[0].startswith("harvester-upgrade-bff: error: ")
    assert not lines[0].rstrip().endswith("..")
    return lines[0]


class Child:
    """A running command whose stdout is collected line by line in the background."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        stderr: int | IO[bytes] = subprocess.DEVNULL,
        cwd: Path = ROOT,
        preexec_fn: Callable[[], object] | None = None,
    ) -> None:
        self.proc = subprocess.Popen(
            list(argv),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=clean_env() if env is None else env,
            cwd=cwd,
            preexec_fn=preexec_fn,
        )
        #: Every line read so far.
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line)
        self._queue.put(None)

    def read_until(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        """Read lines until one matches ``pattern``; fail with all output when none does."""
        compiled = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                raise AssertionError(f"the command ended before printing {pattern!r}:\n{self.text}")
            self.lines.append(line)
            match = compiled.search(line)
            if match:
                return match
        raise AssertionError(f"no line matched {pattern!r} in {timeout} s:\n{self.text}")

    def banner(self, timeout: float = 30.0) -> str:
        """The sandbox's banner, through its last line."""
        self.read_until(re.escape(BANNER_END), timeout)
        return self.text

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, wait; SIGKILL if it does not end in time. Returns the exit status."""
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise
        finally:
            self._reader.join(timeout)
            for stream in (self.proc.stdout, self.proc.stderr):
                if stream is not None:
                    stream.close()


@contextlib.contextmanager
def started(
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    stderr: int | IO[bytes] = subprocess.DEVNULL,
) -> Iterator[Child]:
    """Start ``argv``; on exit stop it (a no-op wait if it already ended) and close its pipes."""
    child = Child(argv, env=env, stderr=stderr)
    try:
        yield child
    finally:
        child.stop()


def banner_urls(banner: str) -> tuple[str, str]:
    """The BFF's URL (no trailing slash) and the emulator's, as the sandbox banner gives them."""
    bff_url, kube_url = _BFF_URL.search(banner), _KUBE_URL.search(banner)
    assert bff_url, banner
    assert kube_url, banner
    return bff_url.group(1), kube_url.group(1)
