"""Waiting on a condition, with a deadline: the suite's one way to synchronise.

A fixed sleep is either too short on a busy machine (the test flakes) or too long
everywhere else; ``until`` returns as soon as the condition holds and fails, naming
what it waited for, once the deadline passes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(condition: Callable[[], object], what: str, *, within: float = 10.0) -> None:
    """Return once ``condition()`` is true; AssertionError naming ``what`` after ``within`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() >= deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.01)
