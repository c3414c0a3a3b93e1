"""A throwaway certificate authority for the sandbox, made at start.

kubectl refuses to send a bearer token over plain HTTP, so the emulator serves TLS with
a server certificate for ``127.0.0.1`` and ``localhost`` signed by a CA that exists
only for this run. Every kubeconfig the sandbox writes carries that CA. Nothing here is
secret beyond the process's lifetime: the keys stay in memory and in the sandbox's
private temporary directory.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["SandboxCA"]

_VALIDITY = dt.timedelta(days=7)
_CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=True,
    key_cert_sign=True,
    crl_sign=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    encipher_only=False,
    decipher_only=False,
)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "harvester-upgrade-bff sandbox"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass(frozen=True)
class SandboxCA:
    """A CA certificate and a server certificate it signed, all PEM."""

    ca_pem: bytes
    server_cert_pem: bytes
    server_key_pem: bytes

    @classmethod
    def create(cls) -> SandboxCA:
        now = dt.datetime.now(dt.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = _name("harvester-upgrade-bff sandbox CA")
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_CA_KEY_USAGE, critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        server = (
            x509.CertificateBuilder()
            .subject_name(_name("harvester-upgrade-bff sandbox API emulator"))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
                ),
                critical=False,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        return cls(
            ca_pem=ca.public_bytes(serialization.Encoding.PEM),
            server_cert_pem=server.public_bytes(serialization.Encoding.PEM),
            server_key_pem=_pem_key(key),
        )

    def server_context(self, directory: Path) -> ssl.SSLContext:
        """An SSL context serving the server certificate (its files go in ``directory``)."""
        cert = directory / "emulator.crt"
        key = directory / "emulator.key"
        key.touch(mode=0o600)
        key.write_bytes(self.server_key_pem)
        cert.write_bytes(self.server_cert_pem)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        return context

    def client_context(self) -> ssl.SSLContext:
        """An SSL context that trusts this CA, and only it."""
        return ssl.create_default_context(cadata=self.ca_pem.decode())

    def write_ca(self, path: Path) -> Path:
        path.write_bytes(self.ca_pem)
        return path
