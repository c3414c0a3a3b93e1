"""Bad HTTP at scale: a seeded raw-socket fuzz pass over malformed requests.

Malformed request lines, oversized and broken headers, bad chunking and
pipelining, each carrying a secret in ``Authorization`` or the ``R_SESS``
cookie. Every answer is a 4xx (never a 5xx), the secret appears in no log
line and no answer, and nothing upstream changes.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
from collections import Counter
from collections.abc import Callable

from tests.reliability.conftest import Served, ServeFactory
from tests.reliability.rawhttp import exchange
from tests.support.backends import NAMESPACE, SUCCEEDED, served_emulator

#: Inputs per run; BFF_FUZZ_INPUTS raises it for a longer pass.
INPUTS = int(os.environ.get("BFF_FUZZ_INPUTS", "600"))
SEED = int(os.environ.get("BFF_FUZZ_SEED", "14"))
SECRET = "fz-s3cr3t-9f1c2e"
STATUS = re.compile(rb"HTTP/1\.[01] (\d{3}) ")

PATHS = [
    "/healthz",
    "/api/v1.0.5/upgrades",
    f"/api/v1.0.5/upgrades/{NAMESPACE}/{SUCCEEDED}",
    f"/api/v1.0.5/upgrades/{NAMESPACE}/{SUCCEEDED}?action=dismiss",
    f"/v1/harvester/harvesterhci.io.upgrades/{NAMESPACE}/{SUCCEEDED}",
]


def credential(r: random.Random) -> bytes:
    if r.random() < 0.5:
        return f"Authorization: Bearer {SECRET}\r\n".encode()
    return f"Cookie: a=1; R_SESS={SECRET}; b=2\r\n".encode()


def bad_request_line(r: random.Random) -> bytes:
    path = r.choice(PATHS).encode()
    return r.choice(
        [
            b"GET " + path + b" HTTP/9.9",
            b"GET " + path,
            b"GET  " + path + b" HTTP/1.1",
            b"G\x00T " + path + b" HTTP/1.1",
            b"FOO " + path + b" HTTP/1.1",
            b"GET /" + b"a" * r.randint(9000, 20000) + b" HTTP/1.1",
            b"GET " + path + b"\x7f HTTP/1.1",
            b"GET http://[::1 HTTP/1.1",
            b"\x16\x03\x01\x00\xa5\x01\x00",
            b"PUT " + path + b" HTTP/1.1 extra",
            bytes(r.randrange(256) for _ in range(r.randint(1, 40))),
        ]
    )


def bad_header(r: random.Random) -> bytes:
    return r.choice(
        [
            b"X-Big: " + b"A" * r.randint(8200, 20000) + b"\r\n",
            b"NoColonHere\r\n",
            b"Bad Name: x\r\n",
            b"X-Nul: a\x00b\r\n",
            b"X-Lf: a\nb\r\n",
            b"X-Cr: a\rb\r\n",
            b" folded: continuation\r\n",
            b"Content-Length: 3\r\nContent-Length: 4\r\n",
            b"Content-Length: -1\r\n",
            b"Content-Length: 1e3\r\n",
            b"Transfer-Encoding: chunked, identity\r\n",
            b"Host: a\r\nHost: b\r\n",
            b"".join(b"X-%d: v\r\n" % i for i in range(200)),
            b"\xff\xfe: x\r\n",
        ]
    )


def bad_chunking(r: random.Random, head: bytes) -> bytes:
    body = r.choice(
        [
            b"zz\r\n{}\r\n0\r\n\r\n",
            b"5\r\n{}\r\n0\r\n\r\n",
            b"2\r\n{}0\r\n\r\n",
            b"ffffffffffffffffff\r\n{}\r\n0\r\n\r\n",
            b"2;" + b"e" * 9000 + b"\r\n{}\r\n0\r\n\r\n",
            b"2\r\n{}\r\n0\r\nTrailer\x00: x\r\n\r\n",
            b"-2\r\n{}\r\n0\r\n\r\n",
        ]
    )
    return (
        head
        + b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        + r.choice([b"", b"Content-Length: 2\r\n"])
        + b"\r\n"
        + body
    )


def good_head(r: random.Random, method: bytes = b"GET") -> bytes:
    return method + b" " + r.choice(PATHS).encode() + b" HTTP/1.1\r\nHost: bff\r\n" + credential(r)


def pipelined(r: random.Random) -> bytes:
    first = good_head(r) + r.choice([b"Connection: close\r\n", b""]) + b"\r\n"
    return first + r.choice(
        [good_head(r) + b"\r\n", bad_request_line(r) + b"\r\n\r\n", b"\x00\x01garbage\r\n\r\n"]
    )


def generate(r: random.Random) -> tuple[str, bytes]:
    kinds: dict[str, Callable[[], bytes]] = {
        "request-line": lambda: bad_request_line(r) + b"\r\nHost: x\r\n" + credential(r) + b"\r\n",
        "header": lambda: good_head(r) + bad_header(r) + b"\r\n",
        "chunking": lambda: bad_chunking(r, good_head(r, r.choice([b"PUT", b"POST"]))),
        "pipelining": lambda: pipelined(r),
    }
    kind = r.choice(list(kinds))
    return kind, kinds[kind]()


async def upgrades(served: Served) -> object:
    async with served_emulator(served.emulator) as cluster:
        return list((await cluster.read_all()).values())


async def test_fuzzed_bad_http_gets_no_5xx_leaks_no_secret_and_changes_nothing(
    serve_factory: ServeFactory,
) -> None:
    served = await serve_factory(idle_timeout=1.0, header_timeout=1.0, keepalive_timeout=1.0)
    before = await upgrades(served)
    r = random.Random(SEED)
    cases = [generate(r) for _ in range(INPUTS)]
    statuses: Counter[int] = Counter()
    kinds: Counter[str] = Counter()
    leaked: list[bytes] = []
    gate = asyncio.Semaphore(16)

    async def one(kind: str, data: bytes) -> None:
        async with gate:
            raw = await exchange(served.host, served.port, data, wait=10)
        kinds[kind] += 1
        for match in STATUS.finditer(raw):
            statuses[int(match.group(1))] += 1
        if SECRET.encode() in raw:
            leaked.append(data[:200])

    await asyncio.gather(*(one(k, d) for k, d in cases))
    assert sum(kinds.values()) == INPUTS
    assert set(kinds) == {"request-line", "header", "chunking", "pipelining"}
    assert not [s for s in statuses if s >= 500], statuses
    assert statuses[400] > INPUTS // 2, statuses
    assert leaked == []
    logged = served.logs.text
    assert SECRET not in logged
    assert "Traceback" not in logged
    assert not [r for r in served.logs.records if r.levelname in ("ERROR", "CRITICAL")]
    # Nothing but access reviews (the read cache asks them for callers' reads) was POSTed.
    assert [w for w in served.journal.writes() if not w.path.endswith("accessreviews")] == []
    assert await upgrades(served) == before
    print(f"fuzz: {INPUTS} inputs {dict(kinds)}; answers {dict(sorted(statuses.items()))}")
