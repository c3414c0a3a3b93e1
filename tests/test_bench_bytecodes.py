"""bff.bench.bytecodes: the count is the serving thread's work per request, and grows
with the work a handler does."""

from __future__ import annotations

from aiohttp import web

from bff.bench.bytecodes import Counter, _count
from bff.bench.forwarder import listening

#: Bytecodes of one ``for _ in spin: pass`` turn: FOR_ITER, STORE_FAST, JUMP_BACKWARD.
PER_TURN = 3


def test_the_counter_counts_each_bytecode_of_new_frames() -> None:
    def spin(turns: int) -> None:
        for _ in range(turns):
            pass

    counter = Counter()
    counter.start()
    spin(10)
    counter.stop()
    few = counter.count
    counter = Counter()
    counter.start()
    spin(110)
    counter.stop()
    assert counter.count - few == 100 * PER_TURN


async def _per_request(turns: int) -> float:
    spin = range(turns)

    async def answer(request: web.Request) -> web.Response:
        for _ in spin:
            pass
        return web.Response(body=b"{}", content_type="application/json")

    app = web.Application()
    app.router.add_get("/x", answer)
    async with listening(app) as port:
        return await _count(port, "/x", "t", requests=40)


async def test_a_request_that_does_more_counts_exactly_that_much_more() -> None:
    plain = await _per_request(0)
    more = await _per_request(500)
    assert plain > 1000  # aiohttp's and the loop's own work is counted
    # Nothing else differs between the two but how often the loop turns between a
    # request and the next: a few percent of the whole at most, run to run.
    assert abs((more - plain) - 500 * PER_TURN) <= 0.1 * plain
