"""A throwaway certificate authority for the sandbox, made at start.

kubectl refuses to send a bearer token over plain HTTP, so the emulator serves TLS with
a server certificate for ``127.0.0.1`` and ``localhost`` signed by a CA that exists
only for this run. Every kubeconfig the sandbox writes carries that CA. Nothing here is
secret beyond the process's lifetime: the keys stay in memory and in the sandbox's
private temporary directory.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from bff.admission.certificates import new_bundle

__all__ = ["SandboxCA"]

#: Days the CA and the server certificate are valid: longer than any sandbox runs.
_VALIDITY_DAYS = 7


@dataclass(frozen=True)
class SandboxCA:
    """A CA certificate and a server certificate it signed, all PEM."""

    ca_pem: bytes
    server_cert_pem: bytes
    server_key_pem: bytes

    @classmethod
    def create(cls) -> SandboxCA:
        """A new CA and a server certificate for ``127.0.0.1`` and ``localhost``: the
        same making as the webhook's own certificates (``bff.admission.certificates``)."""
        bundle = new_bundle(
            ["localhost", "127.0.0.1"],
            serving_days=_VALIDITY_DAYS,
            ca_days=_VALIDITY_DAYS,
            ca_name="harvester-upgrade-bff sandbox CA",
        )
        return cls(ca_pem=bundle.ca_cert, server_cert_pem=bundle.cert, server_key_pem=bundle.key)

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
