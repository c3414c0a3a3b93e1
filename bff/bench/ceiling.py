"""The ceiling: a bare aiohttp handler that answers every GET with the same bytes.

Nothing an aiohttp service does on this machine can be faster, so the BFF's
throughput over this one says how much of the remaining cost is the BFF's own.

``python -m bff.bench.ceiling --body FILE`` prints ``port N`` once listening.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from aiohttp import web

from bff.bench.forwarder import _serve


def ceiling_app(body: bytes) -> web.Application:
    async def fixed(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", fixed)
    return app


def main() -> None:
    import asyncio

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--body", required=True, help="file whose bytes every answer carries")
    args = parser.parse_args()
    asyncio.run(_serve(ceiling_app(Path(args.body).read_bytes())))


if __name__ == "__main__":
    main()
