"""``--webhook-cert-source self``: the webhook's certificate kept in a Secret, its CA in a caBundle.

At start, and then every ``--webhook-cert-check-interval`` seconds, the
:class:`CertificateKeeper`:

* reads the Secret (``--webhook-cert-secret``): missing, it makes a CA and a
  serving certificate and creates it (a 409 means another replica created it
  first: it reads theirs); present and valid, it uses it; with a serving
  certificate near its end (:data:`bff.admission.certificates.RENEW_MARGIN`) or
  naming other DNS names, it puts a new one from the same CA (the caBundle stays);
  unreadable (no CA, a CA key that does not fit), it replaces the lot. Every
  update is a PUT with the resourceVersion read, so two replicas never overwrite
  each other: the loser of a 409 reads the winner's and uses it;
* writes the pair it serves to a private directory, swapping a ``current``
  symlink as the kubelet swaps ``..data``, so
  :class:`bff.admission.tls.ReloadingCertificate` (the same reload as
  ``--webhook-tls-cert``) picks the new pair up for new handshakes;
* sets every webhook's ``clientConfig.caBundle`` of the MutatingWebhookConfiguration
  (``--webhook-configuration``) to the Secret's ``ca.crt`` when it differs, with a
  JSON patch that first tests the resourceVersion it read, so only the caBundles
  change and a concurrent edit makes the patch fail (and it is done again on the
  next read) instead of overwriting it.

A recheck at an interval rather than a watch: it needs no watch right and no
long-lived connection to re-establish, one loop serves renewal, replacement by
another replica and drift alike, and a drift is repaired within one interval
(60 s by default; the API server's own informer takes a moment to see a change
anyway). Every request leaves through :func:`bff.kube.transport.certificate_client`,
whose allowlist holds these requests for these two names and nothing else.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio.client.exceptions import ApiException

from bff.admission import certificates as certs
from bff.kube.config import UpstreamOptions, load_configuration
from bff.kube.transport import certificate_client

log = logging.getLogger("bff.admission")

#: Seconds for one request to the API server.
REQUEST_TIMEOUT = 10.0
#: Reads and writes of one round before giving up (each conflict means another replica wrote).
ATTEMPTS = 5
LABELS = {"app.kubernetes.io/managed-by": "harvester-upgrade-bff"}


class WebhookCertificateError(Exception):
    """The webhook's certificate cannot be kept; the message is one line for the operator."""


@dataclass(frozen=True)
class CertificateOptions:
    secret_namespace: str
    secret_name: str
    service_namespace: str
    service_name: str
    configuration: str
    check_interval: float = 60.0

    @property
    def names(self) -> list[str]:
        return certs.dns_names(self.service_namespace, self.service_name)

    @property
    def secret(self) -> str:
        return f"{self.secret_namespace}/{self.secret_name}"


#: What a request to the API server can fail with: its answer, or no answer.
_FAILURES = (ApiException, aiohttp.ClientError, TimeoutError)


def _reason(exc: BaseException) -> str:
    """An API error in words: its status and the server's message, on one line."""
    if isinstance(exc, ApiException):
        message = ""
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            message = str(json.loads(exc.body or b"{}").get("message", ""))
        return " ".join(f"{exc.status} {exc.reason}: {message}".split()).rstrip(": ")
    return " ".join(f"{exc.__class__.__name__}: {exc}".split())


def _decoded(data: dict[str, str] | None) -> certs.Bundle:
    """The Secret's four keys as bytes; a missing or undecodable one is empty."""

    def key(name: str) -> bytes:
        try:
            return base64.b64decode((data or {}).get(name) or "", validate=True)
        except (binascii.Error, ValueError):
            return b""

    return certs.Bundle(key("ca.crt"), key("ca.key"), key("tls.crt"), key("tls.key"))


def _encoded(bundle: certs.Bundle) -> dict[str, str]:
    def b64(value: bytes) -> str:
        return base64.b64encode(value).decode()

    return {"ca.crt": b64(bundle.ca_cert), "ca.key": b64(bundle.ca_key),
            "tls.crt": b64(bundle.cert), "tls.key": b64(bundle.key)}  # fmt: skip


class CertificateKeeper:
    """The Secret, the files served and the caBundle, kept in step (see the module)."""

    def __init__(self, api: Any, options: CertificateOptions, directory: Path) -> None:
        self.options = options
        self.core = k8s.CoreV1Api(api)
        self.admission = k8s.AdmissionregistrationV1Api(api)
        self.directory = directory
        self.cert_file = str(directory / "current" / "tls.crt")
        self.key_file = str(directory / "current" / "tls.key")
        #: The bundle being served; the caBundle wanted is its CA.
        self.bundle: certs.Bundle | None = None
        self._generation = 0

    # --- the Secret -----------------------------------------------------------------

    def _body(self, bundle: certs.Bundle, version: str | None = None) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "name": self.options.secret_name,
            "namespace": self.options.secret_namespace,
            "labels": dict(LABELS),
        }
        if version is not None:
            meta["resourceVersion"] = version
        return {"apiVersion": "v1", "kind": "Secret", "metadata": meta,
                "type": "kubernetes.io/tls", "data": _encoded(bundle)}  # fmt: skip

    async def _read_secret(self) -> Any | None:
        try:
            return await self.core.read_namespaced_secret(
                self.options.secret_name,
                self.options.secret_namespace,
                _request_timeout=REQUEST_TIMEOUT,
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def sync_secret(self) -> None:
        """Make the Secret hold a valid bundle (creating, renewing or replacing it); serve it."""
        o = self.options
        for _ in range(ATTEMPTS):
            try:
                secret = await self._read_secret()
            except _FAILURES as exc:
                raise WebhookCertificateError(
                    f"cannot get Secret {o.secret}: {_reason(exc)}"
                ) from None
            try:
                if secret is None:
                    bundle = certs.new_bundle(o.names)
                    # A plain dict, sent as it is: what the allowlist checks is what goes.
                    await self.core.create_namespaced_secret(
                        o.secret_namespace,
                        self._body(bundle),  # type: ignore[arg-type]
                        _request_timeout=REQUEST_TIMEOUT,
                    )
                    log.info("webhook certificate: created Secret %s with a new CA", o.secret)
                else:
                    bundle = _decoded(secret.data)
                    verdict = certs.judge(bundle, o.names)
                    if verdict.action != "keep":
                        if verdict.action == "renew":
                            bundle = certs.renewed(bundle.ca_cert, bundle.ca_key, o.names)
                        else:
                            bundle = certs.new_bundle(o.names)
                        version = secret.metadata.resource_version
                        await self.core.replace_namespaced_secret(
                            o.secret_name,
                            o.secret_namespace,
                            self._body(bundle, version),  # type: ignore[arg-type]
                            _request_timeout=REQUEST_TIMEOUT,
                        )
                        log.info(
                            "webhook certificate: %s Secret %s (%s)",
                            "renewed the serving certificate of"
                            if verdict.action == "renew"
                            else "replaced the CA and certificate of",
                            o.secret,
                            verdict.why,
                        )
            except _FAILURES as exc:
                if isinstance(exc, ApiException) and exc.status == 409:
                    continue  # another replica wrote first: read and use theirs
                verb = "create" if secret is None else "update"
                raise WebhookCertificateError(
                    f"cannot {verb} Secret {o.secret}: {_reason(exc)}"
                ) from None
            self._serve(bundle)
            return
        raise WebhookCertificateError(
            f"Secret {o.secret} changed under each of {ATTEMPTS} attempts to write it"
        )

    def _serve(self, bundle: certs.Bundle) -> None:
        """Put ``bundle``'s pair where the listener reads it, both files in one swap."""
        if self.bundle is not None and (bundle.cert, bundle.key) == (
            self.bundle.cert,
            self.bundle.key,
        ):
            self.bundle = bundle
            return
        self._generation += 1
        folder = self.directory / f"pair-{self._generation}"
        folder.mkdir(mode=0o700)
        (folder / "tls.crt").write_bytes(bundle.cert)
        fd = os.open(folder / "tls.key", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(bundle.key)
        link = self.directory / f".current-{self._generation}"
        link.symlink_to(folder.name)
        os.replace(link, self.directory / "current")
        old = self.directory / f"pair-{self._generation - 1}"
        for name in ("tls.crt", "tls.key"):
            with contextlib.suppress(FileNotFoundError):
                (old / name).unlink()
        with contextlib.suppress(FileNotFoundError):
            old.rmdir()
        if self.bundle is not None:
            log.info("webhook certificate: serving the pair now in Secret %s", self.options.secret)
        self.bundle = bundle

    # --- the caBundle ---------------------------------------------------------------

    async def sync_ca_bundle(self) -> None:
        """Set every webhook's caBundle to the CA served, if any differs."""
        assert self.bundle is not None
        o = self.options
        want = base64.b64encode(self.bundle.ca_cert).decode()
        for _ in range(ATTEMPTS):
            try:
                configuration = await self.admission.read_mutating_webhook_configuration(
                    o.configuration, _request_timeout=REQUEST_TIMEOUT
                )
            except _FAILURES as exc:
                if isinstance(exc, ApiException) and exc.status == 404:
                    log.warning(
                        "webhook certificate: MutatingWebhookConfiguration %s not found yet; its "
                        "caBundle is set once it exists",
                        o.configuration,
                    )
                    return
                raise WebhookCertificateError(
                    f"cannot get MutatingWebhookConfiguration {o.configuration}: {_reason(exc)}"
                ) from None
            # "add" sets a member whether or not it exists (a chart may render none);
            # the test makes the whole patch fail if anything changed since the read.
            patch: list[dict[str, Any]] = [
                {"op": "test", "path": "/metadata/resourceVersion",
                 "value": configuration.metadata.resource_version},
            ]  # fmt: skip
            for index, hook in enumerate(configuration.webhooks or ()):
                if (hook.client_config.ca_bundle or "") != want:
                    patch.append({"op": "add", "path": f"/webhooks/{index}/clientConfig/caBundle",
                                  "value": want})  # fmt: skip
            if len(patch) == 1:
                return
            try:
                await self.admission.patch_mutating_webhook_configuration(
                    o.configuration, patch, _request_timeout=REQUEST_TIMEOUT
                )
            except _FAILURES as exc:
                # A failed test is 422 (Invalid) or 409: read again and redo the patch.
                if isinstance(exc, ApiException) and exc.status in (409, 422):
                    continue
                raise WebhookCertificateError(
                    f"cannot patch MutatingWebhookConfiguration {o.configuration}: {_reason(exc)}"
                ) from None
            log.info(
                "webhook certificate: set the caBundle of %d webhook(s) of %s to the CA of "
                "Secret %s",
                len(patch) - 1,
                o.configuration,
                o.secret,
            )
            return
        raise WebhookCertificateError(
            f"MutatingWebhookConfiguration {o.configuration} changed under each of {ATTEMPTS} "
            "attempts to set its caBundle"
        )

    async def sync(self) -> None:
        await self.sync_secret()
        await self.sync_ca_bundle()

    async def keep(self) -> None:
        """Sync every ``check_interval`` seconds until cancelled; a failure is logged, retried."""
        while True:
            await asyncio.sleep(self.options.check_interval)
            try:
                await self.sync()
            except (WebhookCertificateError, *_FAILURES) as exc:
                log.warning("webhook certificate: %s; trying again in %gs", exc,
                            self.options.check_interval)  # fmt: skip
            except Exception:  # never end quietly: renewal and the caBundle depend on this loop
                log.exception("webhook certificate: the check failed; trying again in %gs",
                              self.options.check_interval)  # fmt: skip


@contextlib.asynccontextmanager
async def keeping(
    upstream: UpstreamOptions, options: CertificateOptions
) -> AsyncIterator[CertificateKeeper]:
    """Sync once (a failure is :class:`WebhookCertificateError`), then keep syncing in the
    background while the block runs; yield the keeper (its ``cert_file`` and ``key_file``)."""
    configuration = await load_configuration(upstream)
    api = await certificate_client(
        configuration, options.secret_namespace, options.secret_name, options.configuration
    )
    try:
        with tempfile.TemporaryDirectory(prefix="bff-webhook-cert-") as scratch:
            keeper = CertificateKeeper(api, options, Path(scratch))
            await keeper.sync()
            task = asyncio.create_task(keeper.keep(), name="webhook-certificate-keeper")
            try:
                yield keeper
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    finally:
        await api.close()
