"""bff.server: the connection limits it derives, its answers outside the app, where it
listens and what it says when it cannot, the TLS files it accepts, and its direct
request handler, which answers as aiohttp's own does.

The process-level behaviour (one line and exit 2 through the command line, the
timeouts on real sockets, SIGTERM) is in tests/reliability/; these call the
module's functions directly, on loopback.
"""

from __future__ import annotations

import json
import resource
import socket
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiohttp.typedefs import Handler
from aiohttp.web_urldispatcher import UrlMappingMatchInfo

from bff import server
from bff.app import create_app
from bff.keys import READINESS
from bff.readiness import Readiness
from bff.sandbox.kubeconfig import write_kubeconfig
from bff.settings import Settings
from tests.support.certs import make_server_certificate


def test_connection_limits_follow_the_file_descriptor_limit() -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    settings = replace(Settings(), max_connections=0, upstream_pool_size=32)
    limits = server.connection_limits(settings)
    # What is left after the pool and the reserve holds the backlog and the connections.
    usable = min(soft, 65536) - server.FD_RESERVE - 32
    assert limits.backlog + limits.max_connections <= max(usable, 3 * server.MIN_CONNECTIONS)
    assert server.MIN_CONNECTIONS <= limits.backlog <= 128
    assert limits.max_connections >= server.MIN_CONNECTIONS


def test_an_explicit_connection_limit_wins() -> None:
    settings = replace(Settings(), max_connections=50, keepalive_timeout=7.0)
    limits = server.connection_limits(settings)
    assert limits.max_connections == 50
    assert limits.keepalive_timeout == 7.0


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, "MalformedRequest"), (408, "RequestTimeout"), (504, "Timeout"), (500, "InternalError"),
     (418, "InternalError")],
)  # fmt: skip
def test_an_answer_outside_the_app_is_the_projects_error(status: int, code: str) -> None:
    answer = server.error_answer(status)
    assert answer.body is not None
    body = json.loads(bytes(answer.body))  # type: ignore[arg-type]
    assert body["type"] == "error"
    assert body["code"] == code
    # An unknown status is answered as itself, with the generic message.
    assert body["status"] == answer.status == status
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Content-Security-Policy"] == "frame-ancestors 'none'"
    assert answer.headers["X-Served-By"] == "harvester-upgrade-bff"  # doctor --url looks for it
    assert len(answer.headers["X-Request-ID"]) == 32
    assert answer.keep_alive is False


async def test_start_answers_at_the_base_path_and_stop_turns_readiness_off() -> None:
    app = web.Application()
    app[READINESS] = Readiness(_no_problem)
    settings = replace(Settings(), base_path="/under")
    runner, url = await server.start(app, settings, host="127.0.0.1", port=0)
    try:
        assert url.startswith("http://127.0.0.1:")
        assert url.endswith("/under")
        assert isinstance(runner.server, server.BoundedServer)
    finally:
        await server.stop(runner)
    assert app[READINESS].shutting_down


async def _no_problem() -> str | None:
    return None


async def test_an_address_in_use_is_one_line_naming_the_flags() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(server.StartupError) as refused:
            await server.start(web.Application(), Settings(), host="127.0.0.1", port=port)
    message = str(refused.value)
    assert message.startswith(f"cannot listen on 127.0.0.1:{port} (--host, --port): ")
    assert "\n" not in message


def test_no_tls_files_is_plain_http() -> None:
    assert server.tls_context(Settings()) is None


def test_tls_files_that_fit_make_a_tls_1_2_context(tmp_path: Path) -> None:
    cert = make_server_certificate(tmp_path)
    settings = replace(Settings(), tls_cert=str(cert.cert_file), tls_key=str(cert.key_file))
    context = server.tls_context(settings)
    assert context is not None
    assert context.minimum_version.name == "TLSv1_2"


@pytest.mark.parametrize(
    ("swap", "expected"),
    [
        ("swapped", "the two files are swapped"),
        ("missing cert", "--tls-cert {cert} is unreadable"),
        ("not pem", "--tls-cert {cert} is not a PEM certificate"),
        ("other key", "--tls-key {key} does not match --tls-cert {cert}"),
    ],
)
def test_unusable_tls_files_are_named_in_words(tmp_path: Path, swap: str, expected: str) -> None:
    one = make_server_certificate(tmp_path / "one")
    cert, key = str(one.cert_file), str(one.key_file)
    if swap == "swapped":
        cert, key = key, cert
    elif swap == "missing cert":
        cert = str(tmp_path / "absent.crt")
    elif swap == "not pem":
        (tmp_path / "junk.crt").write_text("junk")
        cert = str(tmp_path / "junk.crt")
    else:
        key = str(make_server_certificate(tmp_path / "two").key_file)
    with pytest.raises(server.StartupError) as refused:
        server.tls_context(replace(Settings(), tls_cert=cert, tls_key=key))
    assert str(refused.value).startswith(expected.format(cert=cert, key=key))


#: Requests whose answers need no cluster: a probe, no route, a method not allowed, no
#: credential, an impersonation header, a body announced with ``Expect: 100-continue``.
_ASKED: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("GET", "/healthz", {}),
    ("GET", "/no/such/route", {}),
    ("DELETE", "/api/v1.0.5/upgrades/harvester-system/u", {}),
    ("GET", "/api/v1.0.5/upgrades/harvester-system/u", {}),
    ("GET", "/api/v1.0.5/upgrades", {"Impersonate-User": "admin", "Authorization": "Bearer t"}),
    # Read only after "100 Continue": a handler that reads it needs aiohttp to send that.
    (
        "PUT",
        "/api/v1.0.5/upgrades/harvester-system/u",
        {"Expect": "100-continue", "Authorization": "Bearer t", "Content-Type": "application/json"},
    ),
)


async def _answers(url: str) -> list[tuple[int, dict[str, str], bytes]]:
    answers = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        for method, path, headers in _ASKED:
            data = b"{}" if method == "PUT" else None
            async with session.request(
                method, f"{url}{path}", headers=headers, data=data,
                expect100=("Expect" in headers),
            ) as answer:  # fmt: skip
                kept = {
                    k: v for k, v in answer.headers.items() if k not in ("Date", "X-Request-ID")
                }
                answers.append((answer.status, kept, await answer.read()))
    return answers


async def test_the_direct_handler_answers_as_aiohttps_own(
    tmp_path: Path, aiohttp_server: Callable[..., Awaitable[TestServer]]
) -> None:
    """The served app's requests skip aiohttp's middleware assembly; nothing a client
    sees changes: the same requests through aiohttp's own handler get the same answers."""
    config = write_kubeconfig(tmp_path / "k", "http://127.0.0.1:9", token="sandbox-bff")
    settings = Settings(kubeconfig=str(config), port=0, read_cache=False)
    app = create_app(settings)
    assert server.direct_handler(app) is not None
    runner, url = await server.start(app, settings, host="127.0.0.1", port=0)
    try:
        assert runner.server is not None
        handler = runner.server.request_handler
        assert handler.__qualname__ == "direct_handler.<locals>.handle"
        served = await _answers(url)
        again = await _answers(url)  # each route now from the kept table
    finally:
        await server.stop(runner)
    plain = await aiohttp_server(create_app(settings))  # aiohttp's own handler
    expected = await _answers(str(plain.make_url("")).rstrip("/"))
    assert [status for status, _, _ in served] == [200, 404, 405, 401, 403, 400]
    assert served == expected
    assert again == expected


async def test_the_direct_handler_asks_the_router_once_per_target_and_keeps_a_bounded_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A method and request target found once is not routed again (its frozen match is
    shared); a miss is never kept, and a full table starts over rather than growing."""
    app = web.Application(middlewares=[_passing])
    for name in ("a", "b", "c"):
        app.router.add_get(f"/{name}/{{id}}", _echo)
    asked: list[str] = []
    routed = app.router.resolve

    async def counting(request: web.Request) -> UrlMappingMatchInfo:
        asked.append(f"{request.method} {request.raw_path}")
        return await routed(request)

    app.router.resolve = counting  # type: ignore[method-assign]
    monkeypatch.setattr(server, "RESOLVED_MAX", 2)
    config = write_kubeconfig(tmp_path / "k", "http://127.0.0.1:9", token="sandbox-bff")
    runner, url = await server.start(
        app, Settings(kubeconfig=str(config)), host="127.0.0.1", port=0
    )
    try:
        async with aiohttp.ClientSession() as session:

            async def get(path: str) -> tuple[int, str]:
                async with session.get(f"{url}{path}") as answer:
                    return answer.status, await answer.text()

            assert await get("/a/1") == (200, "/a/{id} 1 1")
            assert await get("/a/1") == (200, "/a/{id} 1 1")
            assert await get("/a/2") == (200, "/a/{id} 2 1")
            assert asked == ["GET /a/1", "GET /a/2"]
            assert (await get("/nowhere"))[0] == 404
            assert (await get("/nowhere"))[0] == 404
            assert asked[2:] == ["GET /nowhere", "GET /nowhere"]  # a miss is asked again
            assert await get("/b/1") == (200, "/b/{id} 1 1")  # the table was full: it starts over
            assert await get("/a/1") == (200, "/a/{id} 1 1")
            assert await get("/b/1") == (200, "/b/{id} 1 1")
            assert asked[4:] == ["GET /b/1", "GET /a/1"]
    finally:
        await server.stop(runner)


@web.middleware
async def _passing(request: web.Request, handler: Handler) -> web.StreamResponse:
    return await handler(request)


async def _echo(request: web.Request) -> web.Response:
    resource = request.match_info.route.resource
    assert resource is not None
    apps = len(request.match_info.apps)  # one: a kept match is never added to again
    return web.Response(text=f"{resource.canonical} {request.match_info['id']} {apps}")


def test_an_app_with_a_sub_application_keeps_aiohttps_handler(tmp_path: Path) -> None:
    config = write_kubeconfig(tmp_path / "k", "http://127.0.0.1:9", token="sandbox-bff")
    settings = Settings(kubeconfig=str(config), base_path="/under")
    assert server.direct_handler(create_app(settings)) is None
    assert server.direct_handler(web.Application()) is None  # no middleware
