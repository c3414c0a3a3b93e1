"""The libraries' internals the product relies on, checked where they live.

bff.server subclasses aiohttp's private RequestHandler, reads its private state
(``_request_in_progress``, ``_messages``, ``_force_close``, ``_request_count``,
``_loop``) and overrides ``AppRunner._make_server``; bff.kube.transport's
RestClient copies kubernetes-asyncio's RESTClientObject constructor instead of
calling it, and bff.kube.config.anonymous_copy clears the credentials a
Configuration holds. Neither library promises any of that, so the versions are
bounded in pyproject.toml at the minor versions tested, and each detail is
checked here: an upgrade that moves one fails this module, by name, in CI.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import logging
import re
import ssl
from collections.abc import AsyncIterator
from importlib import metadata
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio.client import rest as k8s_rest

from bff import server
from bff.kube import config as kube_config
from bff.kube import transport
from bff.settings import Settings

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def _declared(name: str) -> str:
    """The requirement on ``name`` in pyproject.toml's core dependencies."""
    text = PYPROJECT.read_text(encoding="utf-8")
    core = text.split("dependencies = [", 1)[1].split("]", 1)[0]
    found = re.search(rf'"{re.escape(name)}([^"]*)"', core)
    assert found, f"{name} is not a core dependency"
    return found.group(1)


@pytest.mark.parametrize("name", ["aiohttp", "kubernetes-asyncio"])
def test_the_libraries_whose_internals_we_use_are_bounded_at_the_minor_tested(name: str) -> None:
    spec = _declared(name)
    upper = re.search(r"<(\d+)\.(\d+)(?:\D|$)", spec)
    assert upper, f"{name}{spec} has no upper bound at a minor version"
    installed = tuple(int(p) for p in metadata.version(name).split(".")[:2])
    bound = (int(upper.group(1)), int(upper.group(2)))
    # The bound is the next minor after the one installed (and tested): not looser.
    assert bound == (installed[0], installed[1] + 1), (name, spec, installed)
    lower = re.search(r">=(\d+)\.(\d+)", spec)
    assert lower, f"{name}{spec} has no lower bound"
    assert (int(lower.group(1)), int(lower.group(2))) <= installed


# --- aiohttp ---------------------------------------------------------------------------


@pytest.fixture
async def running() -> AsyncIterator[tuple[web.AppRunner, str]]:
    app = web.Application()

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hi")

    app.router.add_get("/", hello)
    runner, url = await server.start(app, Settings(), host="127.0.0.1", port=0)
    try:
        yield runner, url
    finally:
        await runner.cleanup()


async def test_the_runner_builds_its_server_through_make_server(
    running: tuple[web.AppRunner, str],
) -> None:
    # BoundedAppRunner overrides AppRunner._make_server: were it renamed, setup() would
    # build aiohttp's plain Server and every connection bound would silently go.
    runner, _ = running
    assert inspect.iscoroutinefunction(web.AppRunner._make_server)
    assert isinstance(runner.server, server.BoundedServer)
    plain_server = web.Server(runner.server.request_handler)
    for name in ("request_handler", "request_factory", "handler_cancellation"):
        assert hasattr(plain_server, name), name


async def _handler_of_a_live_connection(
    runner: web.AppRunner, url: str
) -> tuple[server.BoundedRequestHandler, asyncio.StreamWriter]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    _, writer = await asyncio.open_connection(host, int(port.split("/")[0]))
    assert runner.server is not None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while not runner.server.connections:
        assert loop.time() < deadline, "the connection never reached the server"
        await asyncio.sleep(0.01)
    handler = runner.server.connections[0]
    assert isinstance(handler, server.BoundedRequestHandler)
    return handler, writer


async def test_the_request_handlers_private_state_exists_with_its_types(
    running: tuple[web.AppRunner, str],
) -> None:
    runner, url = running
    handler, writer = await _handler_of_a_live_connection(runner, url)
    try:
        # What BoundedRequestHandler.waiting and its watchdog read.
        assert handler._request_in_progress is False
        assert isinstance(handler._messages, collections.deque)
        assert not handler._messages
        assert handler._force_close is False
        assert handler._request_count == 0
        assert isinstance(handler._loop, asyncio.AbstractEventLoop)
        assert handler.waiting
        handler.close_connection("checked")
        assert handler._force_close is True
    finally:
        writer.close()


def test_the_request_handlers_constructor_takes_what_we_pass() -> None:
    params = inspect.signature(RequestHandler.__init__).parameters
    for name in ("manager", "loop", "keepalive_timeout", "access_log_class", "access_log"):
        assert name in params, name
    # BoundedServer.__call__ replaces Server.__call__, which builds the handler with the
    # server's keyword arguments; ours passes handler_kwargs instead.
    assert "loop" in inspect.signature(web.Server.__init__).parameters
    assert list(inspect.signature(web.Server.connection_made).parameters) == [
        "self",
        "handler",
        "transport",
    ]


def test_handle_error_is_called_as_we_override_it() -> None:
    ours = inspect.signature(server.BoundedRequestHandler.handle_error)
    theirs = inspect.signature(RequestHandler.handle_error)
    assert list(ours.parameters) == list(theirs.parameters)
    for name, param in theirs.parameters.items():
        assert ours.parameters[name].default == param.default, name


def test_the_log_record_source_switch_exists() -> None:
    # bff.logs turns off logging's caller lookup (logging._srcfile = None) for speed.
    assert hasattr(logging, "_srcfile")


# --- kubernetes-asyncio ----------------------------------------------------------------


def _configuration(**values: Any) -> Any:
    configuration = k8s.Configuration()
    configuration.host = "https://127.0.0.1:6443"
    for key, value in values.items():
        setattr(configuration, key, value)
    return configuration


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"verify_ssl": False},
        {"disable_strict_ssl_verification": True, "tls_server_name": "kubernetes"},
        {"proxy": "http://127.0.0.1:3128", "proxy_headers": {"X-A": "b"}},
        {"connection_pool_maxsize": 7},
    ],
    ids=["plain", "no-verify", "not-strict", "proxy", "pool"],
)
async def test_the_rest_client_builds_what_the_librarys_constructor_builds(
    values: dict[str, Any],
) -> None:
    configuration = _configuration(**values)
    theirs = k8s_rest.RESTClientObject(configuration)
    ours = transport.RestClient(configuration)
    try:
        # Every attribute the library's constructor sets, and only ours besides.
        assert set(vars(theirs)) == set(vars(ours)) - {"_base_url", "allowed", "dropped"}
        for name in vars(theirs):
            if name != "pool_manager":
                assert getattr(ours, name) == getattr(theirs, name), name
        mine, lib = ours.pool_manager, theirs.pool_manager
        assert mine.trust_env is False
        assert lib.trust_env is True
        assert mine._read_bufsize == lib._read_bufsize
        assert isinstance(mine.connector, aiohttp.TCPConnector)
        assert isinstance(lib.connector, aiohttp.TCPConnector)
        assert mine.connector.limit == lib.connector.limit
        mine_tls, lib_tls = mine.connector._ssl, lib.connector._ssl
        assert isinstance(mine_tls, ssl.SSLContext)
        assert isinstance(lib_tls, ssl.SSLContext)
        for name in ("check_hostname", "verify_mode", "verify_flags", "minimum_version"):
            assert getattr(mine_tls, name) == getattr(lib_tls, name), name
    finally:
        await ours.close()
        await theirs.close()


def test_the_rest_clients_request_is_called_positionally_as_we_call_it() -> None:
    params = list(inspect.signature(k8s_rest.RESTClientObject.request).parameters)
    assert params[:7] == ["self", "method", "url", "query_params", "headers", "body",
                          "post_params"]  # fmt: skip


async def test_the_api_client_sends_through_its_rest_client_and_closes_it() -> None:
    api = await transport.api_client(_configuration())
    assert isinstance(api.rest_client, transport.RestClient)
    assert api.user_agent == "harvester-upgrade-bff"
    session = api.rest_client.pool_manager
    await api.close()
    assert session.closed  # ApiClient.close closes the rest client we put in


async def test_an_anonymous_copy_clears_every_credential_a_configuration_holds() -> None:
    configuration = _configuration(
        api_key={"BearerToken": "secret"},
        api_key_prefix={"BearerToken": "Bearer"},
        username="u",
        password="p",
        cert_file="/c",
        key_file="/k",
    )
    assert await configuration.auth_settings()  # the library sees a credential
    configuration.refresh_api_key_hook = lambda c: None
    anon = kube_config.anonymous_copy(configuration)
    assert await anon.auth_settings() == {}
    # A credential field the library adds tomorrow must be cleared too: every
    # attribute named like one is empty on the copy (the CA is not a credential).
    credential = re.compile(r"key|token|password|username|cert|auth|secret|hook")
    names = {n for n in vars(anon) if credential.search(n) and n != "ssl_ca_cert"}
    assert names >= {"api_key", "cert_file", "key_file", "password", "refresh_api_key_hook"}
    for name in names:
        assert not getattr(anon, name), name
