"""Doctor's caBundle verification (bff/doctor/tlsverify.py), with real certificates.

Two throwaway CAs (the real-API-server harness's PKI code); a serving certificate
for the name the API server dials for the chart's Service. In memory (the Secret's
certificate and key) and over a loopback TLS socket (the webhook's address): the
right CA verifies it, another CA does not, another name does not, a caBundle that
is not PEM is said to be so, and an address where nothing listens is unreachable.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bff.doctor.tlsverify import handshake, handshake_in_memory
from tests.support.real_apiserver import free_port, issue_certificate, make_pki

NAME = "harvester-upgrade-bff.harvester-system.svc"


@dataclass(frozen=True)
class Certs:
    ca: str
    other_ca: str
    cert: Path
    key: Path


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    ours = make_pki(tmp_path_factory.mktemp("ours"))
    other = make_pki(tmp_path_factory.mktemp("other"))
    out = tmp_path_factory.mktemp("serving")
    cert, key = issue_certificate(
        ours.ca_cert, ours.ca_key, out / "tls.crt", out / "tls.key",
        common_name="webhook", hosts=(NAME, "127.0.0.1"),
    )  # fmt: skip
    return Certs(ours.ca_cert.read_text(), other.ca_cert.read_text(), cert, key)


def _in_memory(certs: Certs, name: str, ca: str) -> str | None:
    return handshake_in_memory(certs.cert.read_text(), certs.key.read_text(), name, ca)


def test_in_memory_the_right_ca_verifies(certs: Certs) -> None:
    assert _in_memory(certs, NAME, certs.ca) is None


def test_in_memory_another_ca_does_not(certs: Certs) -> None:
    failure = _in_memory(certs, NAME, certs.other_ca)
    assert failure is not None
    assert failure.startswith("certificate verify failed: unable to get local issuer")


def test_in_memory_another_name_does_not(certs: Certs) -> None:
    failure = _in_memory(certs, "harvester-upgrade-bff.default.svc", certs.ca)
    assert failure is not None
    assert "Hostname mismatch" in failure


def test_a_ca_bundle_that_is_not_pem(certs: Certs) -> None:
    assert _in_memory(certs, NAME, "not a certificate") == "the caBundle holds no PEM certificate"


def test_a_secret_whose_key_does_not_match(certs: Certs, tmp_path: Path) -> None:
    other = make_pki(tmp_path)
    failure = handshake_in_memory(certs.cert.read_text(), other.ca_key.read_text(), NAME, certs.ca)
    assert failure == "the Secret's tls.crt and tls.key are not a PEM certificate and its key"


@pytest.fixture
async def serving(certs: Certs) -> AsyncIterator[int]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs.cert, certs.key)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=context)
    async with server:
        yield server.sockets[0].getsockname()[1]


async def test_over_the_wire(certs: Certs, serving: int) -> None:
    assert await handshake("127.0.0.1", serving, NAME, certs.ca) is None
    failure = await handshake("127.0.0.1", serving, NAME, certs.other_ca)
    assert failure is not None
    assert failure.startswith("certificate verify failed")


async def test_nothing_listening_is_unreachable(certs: Certs) -> None:
    with pytest.raises(OSError, match="Connect call failed"):
        await handshake("127.0.0.1", free_port(), NAME, certs.ca)
