"""The webhook's server certificate, reloaded when its files change.

cert-manager (or whoever issues the certificate) rotates the Secret; the kubelet
then swaps the mounted files, usually weeks before the old certificate expires.
:class:`ReloadingCertificate` keeps one ``SSLContext`` for the listening socket
and loads the new pair into it when either file's identity (inode, size,
modification time) changes: new handshakes get the new certificate, open
connections keep theirs. A pair that does not load (half written, key and
certificate not matching) is logged once and the previous one stays in use
until a later change loads cleanly.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import tempfile

log = logging.getLogger("bff.admission")

# How often the files are looked at. A kubelet takes up to a minute or so to
# project a rotated Secret, so this is not the slow part.
DEFAULT_CHECK_INTERVAL = 10.0

FileIdentity = tuple[int, int, int, int]


def _identity(path: str) -> FileIdentity | None:
    try:
        st = os.stat(path)  # follows the kubelet's ..data symlink
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class ReloadingCertificate:
    """A server ``SSLContext`` whose certificate follows the files at ``cert``/``key``."""

    def __init__(self, cert: str, key: str, check_interval: float = DEFAULT_CHECK_INTERVAL) -> None:
        self.cert = cert
        self.key = key
        self.check_interval = check_interval
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        # The first load is allowed to fail loudly: a bad start is the operator's to fix.
        self._seen = self._identities()
        self._failed: tuple[FileIdentity | None, FileIdentity | None] | None = None
        self.context.load_cert_chain(cert, key)
        self.loads = 1

    def _identities(self) -> tuple[FileIdentity | None, FileIdentity | None]:
        return _identity(self.cert), _identity(self.key)

    def check(self) -> bool:
        """Load the pair again if either file changed; True when a new pair is in use."""
        seen = self._identities()
        if seen in (self._seen, self._failed) or None in seen:
            return False
        try:
            self._load_checked()
        except (OSError, ssl.SSLError) as exc:
            self._failed = seen  # said once per change, not at every check
            log.warning(
                "webhook certificate changed but does not load yet (%s); still serving the "
                "previous one",
                exc.__class__.__name__,
            )
            return False
        self._seen = seen
        self.loads += 1
        log.info("webhook certificate reloaded from %s", self.cert)
        return True

    def _load_checked(self) -> None:
        """Load the pair into the live context only once it is known to load.

        A failed ``load_cert_chain`` can leave a context holding the new certificate
        with the old key, so the pair is first copied aside (the files may change
        again meanwhile), tried on a scratch context, then loaded from the same copy.
        """
        with tempfile.TemporaryDirectory(prefix="bff-webhook-cert-") as scratch:
            cert, key = os.path.join(scratch, "tls.crt"), os.path.join(scratch, "tls.key")
            with open(self.cert, "rb") as src, open(cert, "wb") as dst:
                dst.write(src.read())
            fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with open(self.key, "rb") as src, os.fdopen(fd, "wb") as dst:
                dst.write(src.read())
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
            self.context.load_cert_chain(cert, key)

    async def watch(self) -> None:
        """Check the files every ``check_interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(self.check_interval)
            self.check()
