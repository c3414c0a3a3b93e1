"""Python bytecodes per cached GET, the BFF's and the bare handler's: counted, not timed.

CPU time per request moves with whatever else the machine runs; the bytecodes
the interpreter runs to answer one request do not. This serves the BFF (its
access line on, text, as deployed) and then the ceiling in this process, sends
each the same GET over one keep-alive connection from a thread of its own, and
counts, with ``sys.settrace`` opcode events in the serving thread only, the
bytecodes run while the counted requests are answered. Work done in C (the
socket, aiohttp's parser, orjson, the digest of a token) is not counted: the
figure is the Python code's alone, the part the BFF's own code can change.

One request at a time, so the event loop's own work is counted once per request
(under load one turn of the loop answers several): the figure is an upper bound
on the loop's share, the same for both sides. How often the loop turns between
one request and the next depends on timing, which moves the figure by about one
percent from run to run (a few at most).

``python -m bff.bench.bytecodes --kubeconfig FILE --namespace NS --path PATH
--token TOKEN --body FILE`` prints one JSON object: ``bff`` and ``ceiling``
(bytecodes per request) and ``requests`` (how many were counted on each side).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from bff import logs, server
from bff.app import create_app
from bff.bench.ceiling import ceiling_app
from bff.bench.forwarder import listening
from bff.settings import Settings

#: Requests answered before counting (the cache synced, every first-time path taken).
WARM = 50
_LENGTH = re.compile(rb"content-length: *(\d+)", re.IGNORECASE)


class Counter:
    """Bytecodes run by new frames of the thread that starts it, until it stops."""

    def __init__(self) -> None:
        self.count = 0

    def _opcode(self, frame: FrameType, event: str, arg: Any) -> Callable[..., Any]:
        if event == "opcode":
            self.count += 1
        return self._opcode

    def _call(self, frame: FrameType, event: str, arg: Any) -> Callable[..., Any]:
        frame.f_trace_opcodes = True
        return self._opcode

    def start(self) -> None:
        sys.settrace(self._call)

    def stop(self) -> None:
        sys.settrace(None)


def _get(port: int, path: str, token: str, times: int) -> int:
    """``times`` GETs over one connection, each read to its end; the last status."""
    head = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {token}\r\nUser-Agent: bench\r\n\r\n"
    ).encode()
    status = 0
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        for _ in range(times):
            sock.sendall(head)
            data = b""
            while True:
                chunk = sock.recv(1 << 16)
                if not chunk:
                    raise ConnectionError("the server closed the connection")
                data += chunk
                top, sep, rest = data.partition(b"\r\n\r\n")
                found = _LENGTH.search(top) if sep else None
                if found and len(rest) >= int(found.group(1)):
                    break
            status = int(top.split(b" ", 2)[1])
    return status


async def _count(port: int, path: str, token: str, requests: int) -> float:
    """Bytecodes this thread runs per request while ``requests`` GETs are answered."""
    loop = asyncio.get_running_loop()
    warm = await loop.run_in_executor(None, _get, port, path, token, WARM)
    if warm != 200:
        raise RuntimeError(f"GET {path} answered {warm}, not 200")
    done = asyncio.Event()
    failed: list[BaseException] = []

    def client() -> None:
        try:
            _get(port, path, token, requests)
        except BaseException as exc:  # reported below, from the loop's thread
            failed.append(exc)
        finally:
            loop.call_soon_threadsafe(done.set)

    counter = Counter()
    counter.start()
    try:
        threading.Thread(target=client, daemon=True).start()
        await done.wait()
    finally:
        counter.stop()
    if failed:
        raise failed[0]
    return counter.count / requests


async def _ready(port: int) -> None:
    for _ in range(300):
        try:
            status = await asyncio.get_running_loop().run_in_executor(
                None, _get, port, "/readyz", "-", 1
            )
        except OSError:
            status = 0
        if status == 200:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError("the BFF did not become ready in 30 s")


async def measure(
    kubeconfig: Path, namespace: str, path: str, token: str, body: bytes, requests: int
) -> dict[str, float]:
    """Bytecodes per request of the BFF's cached GET of ``path``, and of the ceiling."""
    with open(os.devnull, "w") as sink:  # noqa: ASYNC230 (a device: nothing to wait for)
        logs.configure(logs.LogFormat.TEXT, "INFO", sink)
        settings = Settings(kubeconfig=str(kubeconfig), namespace=namespace, read_cache=True)
        runner, url = await server.start(create_app(settings), settings, host="127.0.0.1", port=0)
        try:
            port = int(url.rsplit(":", 1)[1])
            await _ready(port)
            bff = await _count(port, path, token, requests)
        finally:
            await server.stop(runner)
    async with listening(ceiling_app(body)) as port:
        ceiling = await _count(port, path, token, requests)
    return {"bff": round(bff, 1), "ceiling": round(ceiling, 1), "requests": requests}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kubeconfig", required=True, type=Path, help="the BFF's kubeconfig")
    parser.add_argument("--namespace", required=True, help="the namespace the BFF serves")
    parser.add_argument("--path", required=True, help="the GET to count, e.g. /api/v1.0.5/...")
    parser.add_argument("--token", required=True, help="the caller's bearer token")
    parser.add_argument("--body", required=True, type=Path, help="the ceiling's answer")
    parser.add_argument("--requests", type=int, default=200, help="requests counted per side")
    args = parser.parse_args()
    figures = asyncio.run(
        measure(args.kubeconfig, args.namespace, args.path, args.token,
                args.body.read_bytes(), args.requests)
    )  # fmt: skip
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
