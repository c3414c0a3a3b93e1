"""A tiny raw-socket HTTP/1.1 client, for requests no real client library will send."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


async def exchange(host: str, port: int, data: bytes, wait: float = 10.0) -> bytes:
    """Send ``data``, then read until the server closes (or ``wait`` seconds); return every byte."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(data)
        await writer.drain()
        chunks: list[bytes] = []
        async with asyncio.timeout(wait):
            while chunk := await reader.read(65536):
                chunks.append(chunk)
        return b"".join(chunks)
    except ConnectionResetError:
        return b"".join(chunks)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def parse_responses(raw: bytes) -> list[RawResponse]:
    """Split a byte stream into the HTTP responses it holds (Content-Length bodies only)."""
    responses = []
    while raw:
        head, sep, rest = raw.partition(b"\r\n\r\n")
        if not sep:
            raise AssertionError(f"incomplete response: {raw[:200]!r}")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        responses.append(RawResponse(status, headers, rest[:length]))
        raw = rest[length:]
    return responses


async def request(host: str, port: int, data: bytes, wait: float = 10.0) -> list[RawResponse]:
    return parse_responses(await exchange(host, port, data, wait))
