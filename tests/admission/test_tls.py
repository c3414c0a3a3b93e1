"""bff/admission/tls.py: the webhook's certificate follows its files, never half-loaded.

``check()`` is called directly (no timer): a changed pair is loaded into the same
``SSLContext``, an unchanged one is not, a pair that does not load yet (only the
certificate rewritten) keeps the previous one, and what the context serves is read
back from a real TLS handshake on loopback.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bff.admission.tls import ReloadingCertificate
from tests.support.certs import ServerCertificate, make_server_certificate


def _der(pem: bytes) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem.decode())


Served = tuple[ReloadingCertificate, ServerCertificate, int]


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    pair = make_server_certificate(tmp_path / "first")
    reloading = ReloadingCertificate(str(pair.cert_file), str(pair.key_file))

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=reloading.context)
    port = server.sockets[0].getsockname()[1]
    try:
        yield reloading, pair, port
    finally:
        server.close()
        await server.wait_closed()


async def _served_der(port: int) -> bytes:
    client = ssl.create_default_context()
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE  # only reading what is served
    _reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client)
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
        await writer.wait_closed()
    assert isinstance(der, bytes)
    return der


async def test_a_rewritten_pair_is_served_on_the_next_handshake(
    served: Served, tmp_path: Path
) -> None:
    reloading, pair, port = served
    assert await _served_der(port) == _der(pair.cert_pem)
    assert reloading.check() is False  # nothing changed: nothing loaded
    assert reloading.loads == 1
    rotated = make_server_certificate(tmp_path / "rotated")
    pair.key_file.write_bytes(rotated.key_file.read_bytes())
    pair.cert_file.write_bytes(rotated.cert_file.read_bytes())
    assert reloading.check() is True
    assert reloading.loads == 2
    assert await _served_der(port) == _der(rotated.cert_pem)


async def test_a_half_written_pair_keeps_the_previous_certificate(
    served: Served, tmp_path: Path
) -> None:
    reloading, pair, port = served
    rotated = make_server_certificate(tmp_path / "rotated")
    pair.cert_file.write_bytes(rotated.cert_file.read_bytes())  # the key not yet
    assert reloading.check() is False
    assert reloading.check() is False  # the same failed pair is not tried again
    assert await _served_der(port) == _der(pair.cert_pem)
    pair.key_file.write_bytes(rotated.key_file.read_bytes())
    assert reloading.check() is True
    assert await _served_der(port) == _der(rotated.cert_pem)


def test_a_pair_that_does_not_load_at_start_is_an_error(tmp_path: Path) -> None:
    first = make_server_certificate(tmp_path / "first")
    other = make_server_certificate(tmp_path / "other")
    with pytest.raises(ssl.SSLError):
        ReloadingCertificate(str(first.cert_file), str(other.key_file))
