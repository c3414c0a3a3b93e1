"""bff.abandoned: a stream given up on is dropped at once, and waited for.

The upstream never answers a TLS close, so a connection to it ends only if it is dropped.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp

from bff.abandoned import Dropped
from tests.support.silent_tls import EVENT, SilentTlsUpstream, sockets_to


async def test_a_dropped_stream_is_closed_when_wait_returns(tmp_path: Path) -> None:
    dropped = Dropped()
    with SilentTlsUpstream(tmp_path, {}) as upstream:
        async with aiohttp.ClientSession() as session:
            response = await session.get(
                f"{upstream.url}/w?watch=true", ssl=upstream.client_context()
            )
            assert await response.content.readline() == EVENT
            dropped.drop(response)
            await dropped.wait()
            assert sockets_to(upstream.port) == 0  # no loop iteration since wait returned
            response.release()


async def test_an_answer_already_released_is_left_alone(tmp_path: Path) -> None:
    dropped = Dropped()
    with SilentTlsUpstream(tmp_path, {"/one": {"a": 1}}) as upstream:
        trusting = upstream.client_context()
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{upstream.url}/one", ssl=trusting) as one:
                assert await one.json() == {"a": 1}
            dropped.drop(one)  # read to the end and back in the pool: nothing to drop
            await dropped.wait()
            assert sockets_to(upstream.port) == 1
            async with session.get(f"{upstream.url}/one", ssl=trusting) as two:
                assert await two.json() == {"a": 1}
            assert sockets_to(upstream.port) == 1  # the same connection, reused
