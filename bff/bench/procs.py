"""Processes the bench starts, and what ``/proc`` says about them: CPU, RSS, cores."""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

#: prctl(2) option: the signal a child gets when its parent dies.
PR_SET_PDEATHSIG = 1
TICK_US = 1_000_000 / os.sysconf("SC_CLK_TCK")


def tick_us() -> float:
    return TICK_US


def cpu_ticks(pid: int) -> int:
    """utime + stime of ``pid`` (all its threads), in clock ticks; 0 once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """Resident set size (``VmRSS``) or its peak (``VmHWM``) in MB (10^6 bytes)."""
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return round(int(match.group(1)) * 1024 / 1e6, 1) if match else 0.0


def rss_kb(pid: int) -> int:
    """Resident set size (``VmRSS``) in kB, as ``/proc`` counts it (KiB)."""
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else 0


class Cpu:
    """CPU used by a process between its creation (or ``start``) and its last sample."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._start = cpu_ticks(pid)
        self._last = self._start

    def sample(self) -> None:
        self._last = cpu_ticks(self.pid) or self._last

    def used(self) -> int:
        return max(0, self._last - self._start)


def cores() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return []


def _die_with_parent() -> None:
    """Linux: the child gets SIGTERM when the bench dies, even by SIGKILL (no orphans)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def pinner(cpus: Sequence[int]) -> Callable[[], None]:
    """A ``preexec_fn``: the child dies with the bench, and is pinned to ``cpus`` if it can."""
    chosen = set(cpus)

    def setup() -> None:
        _die_with_parent()
        if chosen and hasattr(os, "sched_setaffinity"):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(0, chosen)

    return setup


def pin_process(pid: int, cpus: Sequence[int]) -> None:
    """Every thread of a running ``pid`` on ``cpus`` (``taskset -a -p``); a no-op without cores.

    A Go server's threads each have their own affinity, so each is moved; threads
    started later inherit it from the thread that starts them.
    """
    if not cpus or not hasattr(os, "sched_setaffinity"):
        return
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return
    for tid in threads:
        with contextlib.suppress(OSError):  # a thread that has just ended
            os.sched_setaffinity(int(tid), set(cpus))


class Child:
    """A long-running child (server) whose stdout announces ``port N``; stderr goes to a file."""

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        log_file: Path,
        *,
        pin: Callable[[], None] | None = None,
        port_pattern: str = r"^port (\d+)$",
        port_in_log: bool = False,
        env: dict[str, str] | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.name = name
        self.log_file = log_file
        self._log = log_file.open("w")
        self.process = subprocess.Popen(
            [sys.executable, *args],
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            preexec_fn=pin,
            env=env,
        )
        self._port_in_log = port_in_log
        self.port = self._wait_for_port(re.compile(port_pattern), timeout)

    @property
    def pid(self) -> int:
        return self.process.pid

    def _wait_for_port(self, pattern: re.Pattern[str], timeout: float) -> int:
        deadline = time.monotonic() + timeout
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            if self._port_in_log:
                match = pattern.search(self.log_file.read_text())
                if match:
                    return int(match.group(1))
                if self.process.poll() is not None:
                    break
                time.sleep(0.05)
                continue
            line = self.process.stdout.readline()
            if not line:
                break
            match = pattern.search(line.strip())
            if match:
                return int(match.group(1))
        self.stop()
        tail = self.log_file.read_text()[-500:]
        raise RuntimeError(f"{self.name} did not start: {tail.strip()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=25)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._log.close()
