"""bff.readiness.Readiness: the probe's answer, shutting down first, and a slow upstream."""

from __future__ import annotations

import asyncio

from bff.readiness import Readiness


async def test_ready_when_the_probe_finds_no_problem() -> None:
    async def fine() -> str | None:
        return None

    assert await Readiness(fine).problem() is None


async def test_the_probe_s_problem_is_the_reason() -> None:
    async def down() -> str | None:
        return "the Kubernetes API is unreachable"

    assert await Readiness(down).problem() == "the Kubernetes API is unreachable"


async def test_shutting_down_wins_over_a_healthy_upstream_and_skips_the_probe() -> None:
    asked: list[bool] = []

    async def fine() -> str | None:
        asked.append(True)
        return None

    readiness = Readiness(fine)
    readiness.shutting_down = True
    assert await readiness.problem() == "shutting down"
    assert asked == []


async def test_a_probe_that_does_not_answer_in_time_is_a_problem() -> None:
    never = asyncio.Event()

    async def hangs() -> str | None:
        await never.wait()
        return None

    problem = await Readiness(hangs, timeout=0.01).problem()
    assert problem == "the Kubernetes API did not answer the readiness check in time"
