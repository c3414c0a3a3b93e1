"""``harvester-upgrade-bff demo`` run as a user runs it, in a subprocess.

The demo is also a smoke test of the whole stack: it exits 0 only when every step
behaved as it says. These tests run the real entry point and check the narration,
the exit status, and colour (only on a terminal, never with NO_COLOR). The v1.0.4
body the demo builds is checked against the body captured from the extension.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time

from bff import captured
from bff.demo import legacy_dismiss_body
from bff.sandbox.seed import seed_objects

ESC = "\033["


def demo_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BFF_") and k != "NO_COLOR"}
    env.pop("TERM", None)
    env.update(extra)
    return env


def run_in_pty(env: dict[str, str], timeout: float = 60) -> tuple[int, str]:
    """Run the demo with a terminal as its stdout; return its status and output."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bff", "demo"],
        stdout=follower, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if ready:
                try:
                    data = os.read(leader, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        return proc.wait(timeout=30), b"".join(chunks).decode()
    finally:
        os.close(leader)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_demo_runs_every_step_and_exits_0() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bff", "demo"],
        capture_output=True, text=True, env=demo_env(), timeout=120, check=False,
    )  # fmt: skip
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    for header in (
        "1. The finished upgrade hvst-upgrade-7xn6v",
        "2. The bug: extension v1.0.4's dismiss body, PUT straight to the cluster",
        "3. The fix: the same v1.0.4 body through the BFF, for hvst-upgrade-fl4k2",
        "4. The v1.0.5 dismiss action",
        "5. Dismissing hvst-upgrade-zjft7, which is still in progress",
        "6. The direct PUT again, with the cluster guard on",
        "7. Extension v1.0.4 edits the IPPool vip-pool's description, with and without the guard",
    ):
        assert header in out
    # Step 2: status wiped, the controller's own log and counter.
    assert "conditions  (no status at all)" in out
    assert "controller: re-initialised upgrade hvst-upgrade-7xn6v (1 so far)" in out
    assert "controller re-initialisations: 0 -> 1" in out
    # Step 3: the response's headers.
    assert "X-Upgrade-Bff-Changed: true" in out
    assert 'Warning: 299 - "status in the request body was ignored' in out
    assert "finalizers" not in out  # a body without finalizers draws no finalizers warning
    # Step 5.
    assert "-> 409 UpgradeInProgress" in out
    # Step 6: the same direct PUT with the cluster guard on.
    step6 = out[out.index("6. The direct PUT again") :]
    assert "ok   the guard put status back into the PUT: nothing was wiped" in step6
    assert "ok   the simulated controller re-initialised nothing" in step6
    assert "the cluster guard kept the current status" in step6
    # Step 7: the IPPool edit, straight (allocations lost) and with the guard (kept).
    step7 = out[out.index("7. Extension v1.0.4 edits the IPPool") :]
    straight, _, with_guard = step7.partition("with the guard (the second sandbox)")
    assert "after   (no status: no allocations)" in straight
    assert "ok   the allocations are gone" in straight
    assert "after   3 allocated (192.168.100.10=default/rke2-ingress-lb" in with_guard
    assert "ok   the guard kept the allocations" in with_guard
    assert 'Warning: 299 - "harvester-upgrade-bff: IPPool vip-pool' in with_guard
    assert "FAIL" not in out
    assert "checks held." in out.splitlines()[-1]
    # Not a terminal: no colour.
    assert ESC not in out
    # The narration is the output: no request log lines on either stream.
    assert " INFO " not in out + result.stderr


def test_demo_uses_colour_on_a_terminal_only_without_no_color() -> None:
    status, out = run_in_pty(demo_env(TERM="xterm"))
    assert status == 0, out
    assert f"{ESC}32mok  {ESC}0m" in out
    status, out = run_in_pty(demo_env(TERM="xterm", NO_COLOR="1"))
    assert status == 0, out
    assert ESC not in out
    assert "ok   upgradeState=Succeeded and Completed=True" in out


def test_demo_help_says_what_it_shows_and_what_the_exit_status_means() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bff", "demo", "--help"],
        capture_output=True, text=True, env=demo_env(), timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "exit status is 0 only if every check held" in text
    assert "NO_COLOR" in text


def test_the_demo_sends_the_body_captured_from_extension_v104() -> None:
    body = captured.client_body("v1.0.4")
    succeeded = next(o for o in seed_objects() if o["metadata"]["name"] == "hvst-upgrade-7xn6v")
    assert legacy_dismiss_body(succeeded) == body
