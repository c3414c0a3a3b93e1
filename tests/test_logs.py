"""bff.logs: both formats carry a record's extra fields and the request id."""

from __future__ import annotations

import io
import json
import logging

from bff.logs import JsonFormatter, TextFormatter, request_id


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


def test_the_request_id_of_the_context_is_on_every_line() -> None:
    from bff import logs
    from bff.settings import LogFormat

    stream = io.StringIO()
    logs.configure(LogFormat.TEXT, "INFO", stream)
    token = request_id.set("rid-from-context")
    try:
        logging.getLogger("bff.test").info("hello")
    finally:
        request_id.reset(token)
        logging.getLogger().handlers.clear()
    assert "[rid-from-context] hello" in stream.getvalue()
