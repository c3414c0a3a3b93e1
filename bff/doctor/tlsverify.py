"""Does a ``caBundle`` verify a webhook's serving certificate, for the name the API server uses?

Two ways, both a real TLS handshake with Python's ``ssl`` and the caBundle as the only
trust, checking the host name as the API server does (``<service>.<namespace>.svc``
for a Service, the URL's host for a URL):

- :func:`handshake`: to the webhook's address itself: proves what it serves now;
- :func:`handshake_in_memory`: between two in-memory TLS ends, the server end holding
  the certificate and key read from the webhook's Secret (nothing listens, nothing
  leaves the process): proves what the pods load from that Secret.

Each returns None when the caBundle verifies the certificate, else the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import tempfile
from pathlib import Path


def _client_context(ca_pem: str) -> ssl.SSLContext | str:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cadata=ca_pem)
    except (ssl.SSLError, ValueError):
        return "the caBundle holds no PEM certificate"
    return context


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {exc.verify_message}"
    return str(exc) or exc.__class__.__name__


#: Seconds a webhook address has to complete a handshake before it counts as unreachable.
HANDSHAKE_TIMEOUT = 3.0


async def handshake(host: str, port: int, server_name: str, ca_pem: str) -> str | None:
    """Connect to ``host:port`` and verify its certificate; :class:`OSError` if unreachable."""
    context = _client_context(ca_pem)
    if isinstance(context, str):
        return context
    try:
        async with asyncio.timeout(HANDSHAKE_TIMEOUT):
            _, writer = await asyncio.open_connection(
                host, port, ssl=context, server_hostname=server_name
            )
    except ssl.SSLError as exc:
        return _reason(exc)
    except TimeoutError:
        raise OSError(f"no TLS answer from {host}:{port} within {HANDSHAKE_TIMEOUT:g}s") from None
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError):
        await writer.wait_closed()
    return None


def handshake_in_memory(cert_pem: str, key_pem: str, server_name: str, ca_pem: str) -> str | None:
    """Verify ``cert_pem`` (served with ``key_pem``) against ``ca_pem`` for ``server_name``."""
    context = _client_context(ca_pem)
    if isinstance(context, str):
        return context
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # load_cert_chain reads files only: a private directory, removed at once.
    with tempfile.TemporaryDirectory(prefix="bff-doctor-") as directory:
        cert, key = Path(directory, "tls.crt"), Path(directory, "tls.key")
        cert.write_text(cert_pem)
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(key_pem)
        try:
            server_context.load_cert_chain(cert, key)
        except (ssl.SSLError, OSError):
            return "the Secret's tls.crt and tls.key are not a PEM certificate and its key"
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = context.wrap_bio(to_client, to_server, server_hostname=server_name)
    server = server_context.wrap_bio(to_server, to_client, server_side=True)
    # Each step moves the handshake on; a TLS 1.3 handshake takes a few rounds.
    for _ in range(10):
        done = True
        for end in (client, server):
            try:
                end.do_handshake()
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                done = False
            except ssl.SSLError as exc:
                if end is client:
                    return _reason(exc)
                done = False
        if done:
            return None
    return "the TLS handshake did not finish"
