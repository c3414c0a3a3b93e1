"""The webhook's own CA and serving certificate, as PEM bytes (``--webhook-cert-source self``).

Pure: it makes and inspects certificates, it stores nothing and calls nothing.
:mod:`bff.kube.webhook_certs` keeps the result in a Secret and the caBundle.

The CA lives :data:`CA_DAYS` days; a serving certificate :data:`SERVING_DAYS`
days, and is renewed (a new key and certificate from the same CA, so the
caBundle does not change) once less than :data:`RENEW_MARGIN` is left.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
SERVING_DAYS = 365
#: Renewed this long before it expires: a pod stopped for weeks still finds it valid.
RENEW_MARGIN = dt.timedelta(days=60)
#: Clock skew allowed between the BFF and the API server when a certificate starts.
BACKDATE = dt.timedelta(hours=1)


class Unusable(ValueError):
    """What a Secret holds is not a CA and a serving certificate it signed (in words)."""


@dataclass(frozen=True)
class Bundle:
    """A CA (certificate and key) and a serving certificate and key it signed, as PEM."""

    ca_cert: bytes
    ca_key: bytes
    cert: bytes
    key: bytes


def dns_names(namespace: str, service: str) -> list[str]:
    """The names the API server may call a Service by."""
    return [
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    ]


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


_CA_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _subject_names(names: list[str]) -> x509.SubjectAlternativeName:
    """DNS names, and IP addresses where a name is one (the sandbox's ``127.0.0.1``)."""
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def new_bundle(
    names: list[str],
    *,
    serving_days: int = SERVING_DAYS,
    ca_days: int = CA_DAYS,
    ca_name: str = "harvester-upgrade-bff webhook CA",
) -> Bundle:
    """A new CA and a serving certificate for ``names`` signed by it."""
    key = _key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ca_name)])
    now = _now()
    ca = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + dt.timedelta(days=ca_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_CA_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    ca_cert = ca.public_bytes(serialization.Encoding.PEM)
    return renewed(ca_cert, _key_pem(key), names, serving_days=serving_days)


def renewed(
    ca_cert: bytes, ca_key: bytes, names: list[str], *, serving_days: int = SERVING_DAYS
) -> Bundle:
    """A new serving key and certificate for ``names``, signed by this CA."""
    ca = x509.load_pem_x509_certificate(ca_cert)
    signer = serialization.load_pem_private_key(ca_key, password=None)
    if not isinstance(signer, ec.EllipticCurvePrivateKey):
        raise Unusable("ca.key is not an EC key")
    key = _key()
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + dt.timedelta(days=serving_days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(_subject_names(names), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False
        )
        .sign(signer, hashes.SHA256())
    )
    return Bundle(ca_cert, ca_key, cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


@dataclass(frozen=True)
class Verdict:
    """What to do with a Secret's contents: keep them, renew the serving pair, or replace all."""

    #: "keep", "renew" or "replace".
    action: str
    why: str


def judge(bundle: Bundle, names: list[str], *, margin: dt.timedelta = RENEW_MARGIN) -> Verdict:
    """Whether ``bundle`` can be served as it is, needs a new serving pair, or a new CA."""
    try:
        ca = x509.load_pem_x509_certificate(bundle.ca_cert)
        ca_key = serialization.load_pem_private_key(bundle.ca_key, password=None)
    except (ValueError, TypeError) as exc:
        return Verdict("replace", f"the CA does not load ({exc.__class__.__name__})")
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        # The serving pair is signed with ECDSA (``renewed``): any other CA is replaced.
        return Verdict("replace", "ca.key is not an EC key")
    if ca_key.public_key() != ca.public_key():
        return Verdict("replace", "ca.key is not the key of ca.crt")
    now = _now()
    if ca.not_valid_after_utc - margin < now:
        return Verdict("replace", "the CA expires within the renewal margin")
    try:
        cert = x509.load_pem_x509_certificate(bundle.cert)
        key = serialization.load_pem_private_key(bundle.key, password=None)
    except (ValueError, TypeError) as exc:
        return Verdict("renew", f"the serving pair does not load ({exc.__class__.__name__})")
    if key.public_key() != cert.public_key():
        return Verdict("renew", "tls.key is not the key of tls.crt")
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return Verdict("renew", "tls.crt is not signed by ca.crt")
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        served = san.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        served = []
    if sorted(served) != sorted(names):
        return Verdict("renew", "tls.crt names other DNS names than --webhook-service")
    if cert.not_valid_after_utc - margin < now:
        return Verdict("renew", f"tls.crt expires {cert.not_valid_after_utc:%Y-%m-%d}")
    return Verdict("keep", "valid")
