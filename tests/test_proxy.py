"""The upstream proxy: resolved once from the environment, still used, and NO_PROXY honoured.

The client session runs with ``trust_env=False``, so these tests prove that the
proxy configuration survives that: a loopback proxy (plain forwarding for
``http://`` servers, ``CONNECT`` for ``https://`` ones) must see the BFF's
upstream requests, and must see none when ``NO_PROXY`` names the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bff.app import create_app
from bff.proxy import bypassed, for_server, redacted
from bff.sandbox.emulator import create_emulator_app
from bff.sandbox.kubeconfig import write_kubeconfig
from bff.settings import Settings
from tests.support.certs import make_server_certificate

SUCCEEDED = "/api/v1.0.5/upgrades/harvester-system/hvst-upgrade-7xn6v"
ADMIN = {"Authorization": "Bearer sandbox-admin"}


class LoopbackProxy:
    """A minimal HTTP proxy: absolute-form forwarding and CONNECT tunnels, loopback only."""

    def __init__(self) -> None:
        self.request_lines: list[str] = []
        self.authorizations: list[str] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            self.request_lines.append(lines[0])
            for line in lines[1:]:
                if line.lower().startswith("proxy-authorization:"):
                    self.authorizations.append(line.split(":", 1)[1].strip())
            method, target, _ = lines[0].split(" ", 2)
            if method == "CONNECT":
                host, _, port = target.rpartition(":")
            else:
                parts = urlsplit(target)
                host, port = parts.hostname or "", str(parts.port or 80)
            assert host == "127.0.0.1", f"the test proxy only reaches loopback, not {host}"
            up_reader, up_writer = await asyncio.open_connection(host, int(port))
            if method == "CONNECT":
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
            else:
                up_writer.write(head)  # an aiohttp server accepts the absolute form
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            self._tasks.discard(task)

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while chunk := await source.read(65536):
                sink.write(chunk)
                await sink.drain()
        finally:
            with contextlib.suppress(Exception):
                sink.close()


@pytest.fixture
async def loopback_proxy() -> AsyncIterator[tuple[LoopbackProxy, str]]:
    proxy = LoopbackProxy()
    url = await proxy.start()
    yield proxy, url
    await proxy.stop()


async def _bff(
    aiohttp_client: Callable[..., Any], tmp_path: Path, server: str, ca_file: str | None = None
) -> TestClient[web.Request, web.Application]:
    kubeconfig = write_kubeconfig(
        tmp_path / "bff.kubeconfig", server, token="sandbox-bff", ca_file=ca_file
    )
    client: TestClient[web.Request, web.Application] = await aiohttp_client(
        create_app(Settings(kubeconfig=str(kubeconfig)))
    )
    return client


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("bypass", [False, True], ids=["proxied", "no_proxy"])
async def test_the_configured_proxy_carries_upstream_requests_unless_no_proxy_names_the_server(
    scheme: str,
    bypass: bool,
    loopback_proxy: tuple[LoopbackProxy, str],
    aiohttp_server: Callable[..., Any],
    aiohttp_client: Callable[..., Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy, proxy_url = loopback_proxy
    ca_file = None
    tls = None
    if scheme == "https":
        made = make_server_certificate(tmp_path / "tls")
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(made.cert_file, made.key_file)
        ca_file = str(made.ca_file)
    emulator: TestServer = await aiohttp_server(create_emulator_app(), ssl=tls)
    server = str(emulator.make_url("")).rstrip("/")
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(f"{scheme.upper()}_PROXY", proxy_url)
    monkeypatch.setenv("NO_PROXY", f"example.com,127.0.0.1:{emulator.port}" if bypass else "x.y")

    client = await _bff(aiohttp_client, tmp_path, server, ca_file)
    response = await client.get(SUCCEEDED, headers=ADMIN)
    assert response.status == 200, await response.text()
    assert (await response.json())["metadata"]["name"] == "hvst-upgrade-7xn6v"

    target = f"127.0.0.1:{emulator.port}"
    if bypass:
        assert proxy.request_lines == []
    elif scheme == "https":
        assert f"CONNECT {target} HTTP/1.1" in proxy.request_lines
    else:
        assert any(line.startswith(f"GET http://{target}/apis/") for line in proxy.request_lines)


async def test_proxy_credentials_in_the_url_are_sent_to_the_proxy_only(
    loopback_proxy: tuple[LoopbackProxy, str],
    aiohttp_server: Callable[..., Any],
    aiohttp_client: Callable[..., Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy, proxy_url = loopback_proxy
    emulator: TestServer = await aiohttp_server(create_emulator_app())
    for name in ("HTTP_PROXY", "NO_PROXY", "http_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy_url.replace("://", "://squid:s3cret@"))
    client = await _bff(aiohttp_client, tmp_path, str(emulator.make_url("")).rstrip("/"))
    response = await client.get(SUCCEEDED, headers=ADMIN)
    assert response.status == 200
    assert proxy.authorizations
    assert set(proxy.authorizations) == {"Basic c3F1aWQ6czNjcmV0"}


def test_the_proxy_is_chosen_by_the_server_scheme() -> None:
    env = {"HTTPS_PROXY": "proxy.corp:3128", "http_proxy": "http://plain:8080"}
    assert for_server("https://10.0.0.1:6443", env) == "http://proxy.corp:3128"
    assert for_server("http://10.0.0.1:8080", env) == "http://plain:8080"
    assert for_server("https://10.0.0.1:6443", {}) is None
    # The lower-case name wins when both are set, as in curl.
    both = {"https_proxy": "http://lower:1", "HTTPS_PROXY": "http://upper:1"}
    assert for_server("https://k", both) == "http://lower:1"


@pytest.mark.parametrize(
    ("no_proxy", "host", "port", "expected"),
    [
        ("*", "anything", 443, True),
        ("kubernetes.default.svc", "kubernetes.default.svc", 443, True),
        (".svc", "kubernetes.default.svc", 443, True),
        ("svc", "kubernetes.default.svc", 443, True),
        ("default.svc", "notdefault.svc", 443, False),
        ("10.0.0.0/8", "10.43.0.1", 443, True),
        ("10.0.0.0/8", "192.168.1.1", 443, False),
        ("10.43.0.1", "10.43.0.1", 443, True),
        ("10.43.0.1:6443", "10.43.0.1", 443, False),
        ("10.43.0.1:6443", "10.43.0.1", 6443, True),
        ("[::1]:6443", "::1", 6443, True),
        ("::1", "::1", 443, True),
        ("fd00::/8", "fd12::1", 443, True),
        ("", "k", 443, False),
        (" , ,example.com ", "api.example.com", 443, True),
        ("EXAMPLE.com", "api.Example.COM", 443, True),
    ],
)
def test_no_proxy_matching(no_proxy: str, host: str, port: int, expected: bool) -> None:
    assert bypassed(host, port, no_proxy) is expected


def test_a_logged_proxy_url_carries_no_credentials() -> None:
    assert redacted("http://user:pa55@proxy.corp:3128/") == "http://proxy.corp:3128/"
    assert "pa55" not in redacted("http://user:pa55@[fd00::1]:3128")


async def test_the_environment_is_read_once_at_startup_not_per_request(
    loopback_proxy: tuple[LoopbackProxy, str],
    aiohttp_server: Callable[..., Any],
    aiohttp_client: Callable[..., Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A proxy variable set after startup changes nothing: no request consults os.environ."""
    proxy, proxy_url = loopback_proxy
    emulator: TestServer = await aiohttp_server(create_emulator_app())
    for name in ("HTTP_PROXY", "NO_PROXY", "http_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    client = await _bff(aiohttp_client, tmp_path, str(emulator.make_url("")).rstrip("/"))
    assert (await client.get(SUCCEEDED, headers=ADMIN)).status == 200
    monkeypatch.setenv("HTTP_PROXY", proxy_url)
    monkeypatch.setenv("http_proxy", proxy_url)
    for _ in range(3):
        assert (await client.get(SUCCEEDED, headers=ADMIN)).status == 200
    assert proxy.request_lines == []
