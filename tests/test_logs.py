"""bff.logs: both formats carry a record's extra fields and the request id."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bff.logs import JsonFormatter, TextFormatter, request_id
from tests.support.waiting import until


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord("bff.audit", logging.INFO, __file__, 1, "write", (), None)
    for key, value in extra.items():
        setattr(record, key, value)
    record.request_id = "rid-1"
    return record


def test_text_lines_carry_the_extras_as_json_values() -> None:
    line = TextFormatter().format(_record(audit={"user": "alice", "result": "changed"}, n=3))
    assert " INFO    bff.audit [rid-1] write " in line
    assert 'audit={"user":"alice","result":"changed"}' in line.replace(", ", ",").replace(
        '": "', '":"'
    )
    assert "n=3" in line


def test_json_lines_carry_the_extras_as_fields() -> None:
    entry = json.loads(JsonFormatter().format(_record(audit={"user": "alice"})))
    assert entry["audit"] == {"user": "alice"}
    assert entry["request_id"] == "rid-1"
    assert entry["logger"] == "bff.audit"


def _forged() -> logging.LogRecord:
    """A webhook line as a hostile review makes it: CR/LF in the name, a 100 KB uid."""
    forged = "x\r\n2026-01-01T00:00:00.000Z ERROR   bff.admission [-] forged"
    record = logging.LogRecord(
        "bff.admission", logging.WARNING, __file__, 1,
        "restored status on Upgrade %s by %s", (forged, "bob\nroot"), None,
    )  # fmt: skip
    record.review_uid = "u" * 100_000
    record.groups = ["g\r\n" * 10, "h" * 5000]
    record.request_id = "rid-1"
    return record


def test_text_lines_escape_controls_and_bound_each_field() -> None:
    line = TextFormatter().format(_forged())
    assert "\n" not in line
    assert "\r" not in line
    assert "forged" in line  # still there, escaped, on the same line
    assert "\\r\\n2026" in line
    assert len(line) < 8 * 1024
    assert "(+98976 chars)" in line


def test_json_lines_bound_each_field() -> None:
    line = JsonFormatter().format(_forged())
    assert "\n" not in line
    entry = json.loads(line)
    assert "\r\n" in entry["message"]  # JSON escapes it; the reader gets the text back
    assert len(entry["review_uid"]) < 1100
    assert len(line) < 8 * 1024


def test_the_request_id_of_the_context_is_on_every_line() -> None:
    from bff import logs
    from bff.logs import LogFormat

    stream = io.StringIO()
    logs.configure(LogFormat.TEXT, "INFO", stream)
    token = request_id.set("rid-from-context")
    try:
        logging.getLogger("bff.test").info("hello")
    finally:
        request_id.reset(token)
        logging.getLogger().handlers.clear()
    assert "[rid-from-context] hello" in stream.getvalue()


async def test_access_lines_written_directly_are_the_lines_logging_writes(tmp_path: Path) -> None:
    """The access log's direct path (no LogRecord) writes exactly what logging would.

    The same request is answered twice by the real server: once with the configured
    handler alone (the direct path: no LogRecord is made), once with a filter on
    ``bff.access`` (logging's own path). Only the time and the duration may differ.
    """
    from bff import logs
    from bff.app import create_app
    from bff.logs import LogFormat
    from bff.sandbox.kubeconfig import write_kubeconfig
    from bff.server import start, stop
    from bff.settings import Settings

    config = write_kubeconfig(tmp_path / "k", "http://127.0.0.1:9", token="sandbox-bff")
    settings = Settings(kubeconfig=str(config), port=0, read_cache=False)
    made: list[str] = []
    factory = logging.getLogRecordFactory()

    def counting(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        made.append(record.name)
        return record

    access = logging.getLogger("bff.access")
    logging.setLogRecordFactory(counting)
    try:
        for fmt in (LogFormat.TEXT, LogFormat.JSON):
            stream = io.StringIO()
            logs.configure(fmt, "INFO", stream)
            runner, url = await start(create_app(settings), settings)
            try:
                async with aiohttp.ClientSession() as session:
                    for through_logging in (False, True):
                        if through_logging:
                            access.addFilter(logging.Filter())  # passes all; not direct
                        made.clear()
                        before = stream.getvalue().count("bff.access")
                        async with session.get(
                            f"{url}/healthz", headers={"X-Request-ID": "rid-same"}
                        ) as answer:
                            assert answer.status == 200
                        # The access line is written just after the answer is sent.
                        await until(partial(more_lines, stream, before), "the access line")
                        assert made.count("bff.access") == (1 if through_logging else 0)
            finally:
                await stop(runner)
                for kept in list(access.filters):
                    access.removeFilter(kept)
            lines = [x for x in stream.getvalue().splitlines() if "bff.access" in x]
            assert len(lines) == 2, lines
            direct, logged = (_masked(line) for line in lines)
            assert direct == logged, fmt
            assert "rid-same" in direct
            assert "/healthz" in direct
    finally:
        logging.setLogRecordFactory(factory)
        logging.getLogger().handlers.clear()


def more_lines(stream: io.StringIO, than: int) -> bool:
    """Whether ``stream`` holds more than ``than`` access lines."""
    return stream.getvalue().count("bff.access") > than


def _masked(line: str, *, duration: bool = True) -> str:
    line = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", "<time>", line)
    return re.sub(r'("?duration_ms"?[=:])[0-9.]+', r"\1<ms>", line) if duration else line


async def test_access_lines_joining_a_turns_batch_are_the_lines_logging_writes() -> None:
    """The first access line of a turn opens its batch; the next ones are added to it
    directly (no lock, no handler lookup). All are the line logging itself writes, and
    the lines go out in one write soon after the turn ends."""
    from bff import logs
    from bff.logs import LogFormat, access_line

    stream = _Counting()
    logs.configure(LogFormat.TEXT, "INFO", stream)
    access = logging.getLogger("bff.access")
    try:
        for status, seconds in ((404, 1.5), (200, 0.012345), (200, 0.0)):
            access_line("127.0.0.1", "GET", "/api/{version}/upgrades", status, seconds, "rid-1")
        assert stream.writes == 0  # the turn has not ended
        await until(lambda: stream.writes == 1, "the batch's write")
        batched = stream.getvalue().splitlines()
        access.addFilter(logging.Filter())  # passes all; logging's own path
        for status, seconds in ((404, 1.5), (200, 0.012345), (200, 0.0)):
            access_line("127.0.0.1", "GET", "/api/{version}/upgrades", status, seconds, "rid-1")
        logged = stream.getvalue().splitlines()[3:]
    finally:
        for kept in list(access.filters):
            access.removeFilter(kept)
        logging.getLogger().handlers.clear()
    assert len(batched) == 3
    assert [_masked(line, duration=False) for line in batched] == [
        _masked(line, duration=False) for line in logged
    ]
    assert "status=404 duration_ms=1500.0 client=" in batched[0]


async def test_access_lines_of_several_turns_are_written_together_soon_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Lines wait past the end of their turn, for ``WRITE_AFTER``: the lines of several
    turns go out in one write; a turn that leaves ``WRITE_AT`` waiting writes them at
    once; a write left scheduled on another loop (one stopped) does not hold them."""
    from bff import logs
    from bff.logs import LogFormat, access_line

    stream = _Counting()
    logs.configure(LogFormat.TEXT, "INFO", stream)
    monkeypatch.setattr(logs, "WRITE_AFTER", 0.5)
    other = asyncio.new_event_loop()
    try:
        for n in range(3):
            access_line("127.0.0.1", "GET", "/r", 200, 0.001, f"turn-{n}")
            await asyncio.sleep(0)  # the turn ends; its line waits
        assert stream.writes == 0
        await until(lambda: stream.writes == 1, "one write for three turns")
        assert [line.split()[3] for line in stream.getvalue().splitlines()] == [
            "[turn-0]", "[turn-1]", "[turn-2]"
        ]  # fmt: skip
        monkeypatch.setattr(logs, "WRITE_AT", 2)
        access_line("127.0.0.1", "GET", "/r", 200, 0.001, "many-0")
        access_line("127.0.0.1", "GET", "/r", 200, 0.001, "many-1")
        await asyncio.sleep(0)
        assert stream.writes == 2  # at the turn's end, not half a second later
        monkeypatch.setattr(logs, "WRITE_AFTER", 0.01)
        monkeypatch.setattr(logs, "_timer", other.call_later(60, lambda: None))
        monkeypatch.setattr(logs, "_timer_loop", other)
        access_line("127.0.0.1", "GET", "/r", 200, 0.001, "after-another-loop")
        await until(lambda: "after-another-loop" in stream.getvalue(), "its own write")
    finally:
        other.close()
        logging.getLogger().handlers.clear()


class _Counting(io.StringIO):
    """A stream that counts its writes."""

    writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


async def test_access_lines_of_a_loop_turn_are_written_together_and_in_order() -> None:
    """Access lines wait past the end of the event loop's turn (one write for them all),
    but never past another line: the log keeps the order things happened in.

    A real server with the BFF's access logger answers three requests: each access
    line is in the stream once. Then a line made in a turn is not written in the
    middle of it, the next line logged writes it first, and alone it is written
    soon after the turn ends.
    """
    from aiohttp import web

    from bff import logs
    from bff.logs import AccessLogger, LogFormat

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    stream = _Counting()
    logs.configure(LogFormat.TEXT, "INFO", stream)
    app = web.Application()
    app.router.add_get("/ok", ok)
    runner = web.AppRunner(app, access_log_class=AccessLogger)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/ok"
        async with aiohttp.ClientSession() as session:
            for _ in range(3):
                async with session.get(url) as answer:
                    assert answer.status == 200
        await until(lambda: stream.getvalue().count("GET /ok 200") == 3, "3 access lines")
        handler = logs._configured
        assert handler is not None
        before = stream.writes
        logs._write_soon(handler, "pending access line")
        assert stream.writes == before  # not yet: the turn has not ended
        logging.getLogger("bff.test").info("after the access line")
        text = stream.getvalue()
        assert text.index("pending access line") < text.index("after the access line")
        logs._write_soon(handler, "second pending line")
        await until(lambda: "second pending line" in stream.getvalue(), "the turn's end")
        assert stream.getvalue().count("pending access line") == 1
    finally:
        await runner.cleanup()
        logging.getLogger().handlers.clear()


async def test_an_access_line_carries_the_time_it_was_logged_not_the_time_it_was_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A text access line is made into text only when its batch is written; its time is
    still the time :func:`access_line` was called (the request's end)."""
    from bff import logs
    from bff.logs import LogFormat, access_line

    stream = _Counting()
    logs.configure(LogFormat.TEXT, "INFO", stream)
    monkeypatch.setattr(logs, "WRITE_AFTER", 0.3)
    try:
        logged = time.time()
        access_line("127.0.0.1", "GET", "/r", 200, 0.001, "rid-t")
        await until(lambda: stream.writes == 1, "the batch's write")
        written = time.time()
    finally:
        logging.getLogger().handlers.clear()
    text = stream.getvalue().split()[0]
    stamp = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()
    assert written - logged >= 0.3
    assert logged - 0.002 <= stamp <= logged + 0.1


def test_durations_are_milliseconds_to_two_decimals_as_round_makes_them() -> None:
    from bff.logs import _milliseconds

    seconds = [0.0, 5e-06, 0.000123456, 0.0123449999, 0.012345, 1.5, 12.3456789, 3600.0]
    seconds += [n / 7919 for n in range(1, 2000)]
    for value in seconds:
        made = _milliseconds(value)
        assert abs(made - value * 1000) <= 0.005 + 1e-9, value
        assert made == round(made, 2), value  # no more than two decimals
        assert made == round(value * 1000, 2) or abs(made - round(value * 1000, 2)) < 0.0101
    assert [_milliseconds(v) for v in (0.000123456, 1.5, 0.0)] == [0.12, 1500.0, 0.0]


async def test_stopping_the_server_writes_the_access_lines_still_waiting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request answered just before the server stops has its access line written by
    the stop, not left to a write scheduled on a loop that may not run again."""
    from bff import logs
    from bff.app import create_app
    from bff.logs import LogFormat
    from bff.sandbox.kubeconfig import write_kubeconfig
    from bff.server import start, stop
    from bff.settings import Settings

    monkeypatch.setattr(logs, "WRITE_AFTER", 60.0)
    config = write_kubeconfig(tmp_path / "k", "http://127.0.0.1:9", token="sandbox-bff")
    settings = Settings(kubeconfig=str(config), port=0, read_cache=False)
    stream = _Counting()
    logs.configure(LogFormat.TEXT, "INFO", stream)
    try:
        runner, url = await start(create_app(settings), settings)
        try:
            async with aiohttp.ClientSession() as session, session.get(f"{url}/healthz") as got:
                assert got.status == 200
            await asyncio.sleep(0.05)  # the turn has ended; the write is a minute away
            assert "GET /healthz 200" not in stream.getvalue()
        finally:
            await stop(runner)
        assert "GET /healthz 200" in stream.getvalue()
    finally:
        logs.flush()
        logging.getLogger().handlers.clear()
