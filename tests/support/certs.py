"""Serving certificates for tests: the sandbox's throwaway CA and a server certificate, as files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bff.sandbox.tls import SandboxCA


@dataclass(frozen=True)
class ServerCertificate:
    ca_pem: bytes
    ca_file: Path
    cert_file: Path
    key_file: Path
    cert_pem: bytes
    key_pem: bytes


def make_server_certificate(directory: Path) -> ServerCertificate:
    """A new CA and a server certificate for 127.0.0.1 and localhost, as PEM files."""
    ca = SandboxCA.create()
    directory.mkdir(parents=True, exist_ok=True)
    out = ServerCertificate(
        ca_pem=ca.ca_pem,
        ca_file=directory / "ca.crt",
        cert_file=directory / "tls.crt",
        key_file=directory / "tls.key",
        cert_pem=ca.server_cert_pem,
        key_pem=ca.server_key_pem,
    )
    out.ca_file.write_bytes(ca.ca_pem)
    out.cert_file.write_bytes(ca.server_cert_pem)
    out.key_file.touch(mode=0o600)
    out.key_file.write_bytes(ca.server_key_pem)
    return out
