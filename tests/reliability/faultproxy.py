"""A small TCP fault proxy between the BFF and its API server, for faults no hook can make.

``refuse()`` closes the listening socket and every open connection, so new
connections are refused; ``restore()`` listens again on the same port.
``cut_after = n`` forwards only the first ``n`` bytes of each answer and then
closes the connection: a response cut mid-message; ``cut_watches()`` does that
to the watch streams open now, inside their next event.
"""

from __future__ import annotations

import asyncio
import contextlib


class FaultProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.cut_after: int | None = None
        self.watches = 0
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._streams: list[tuple[list[int | None], list[int]]] = []

    def cut_watches(self, after: int = 600) -> None:
        """Cut every open watch stream once ``after`` more bytes of it have passed."""
        for limit, answered in self._streams:
            limit[0] = answered[0] + after
        self._streams.clear()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def refuse(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()
        self._server = None

    async def restore(self) -> None:
        await self.start()

    async def stop(self) -> None:
        if self._server is not None:
            await self.refuse()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            self._writers.discard(writer)
            return
        self._writers.add(up_writer)

        limit: list[int | None] = [self.cut_after]
        answered = [0]

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, cut: bool) -> None:
            sent = 0
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                while data := await src.read(65536):
                    # A watch may reuse a kept-alive connection: look at every request.
                    if not cut and b"watch=true" in data.lower():
                        self.watches += 1
                        self._streams.append((limit, answered))
                    if cut and limit[0] is not None and sent + len(data) > limit[0]:
                        dst.write(data[: max(0, limit[0] - sent)])
                        await dst.drain()
                        break
                    sent += len(data)
                    if cut:
                        answered[0] = sent
                    dst.write(data)
                    await dst.drain()
            for w in (writer, up_writer):
                w.transport.abort()

        try:
            await asyncio.gather(
                pump(reader, up_writer, cut=False), pump(up_reader, writer, cut=True)
            )
        finally:
            self._writers.discard(writer)
            self._writers.discard(up_writer)
