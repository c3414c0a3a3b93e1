"""bff.admission.certificates: the webhook's CA and serving certificate, made and judged.

Pure: real certificates made in memory; what the keeper does with them against an API
server is in tests/kube/test_webhook_certs.py.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import replace

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from bff.admission import certificates as certs

NAMES = certs.dns_names("harvester-system", "bff")


def rsa_ca() -> tuple[bytes, bytes]:
    """A valid CA whose key is RSA: an operator's own, say."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "an operator's CA")])
    now = dt.datetime.now(dt.UTC)
    ca = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(1)
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=900))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )  # fmt: skip
    return ca.public_bytes(serialization.Encoding.PEM), pem


def test_a_bundle_is_judged_on_names_signature_and_time() -> None:
    names = NAMES
    good = certs.new_bundle(names)
    assert certs.judge(good, names).action == "keep"
    assert certs.judge(good, ["other"]).action == "renew"
    other_ca = certs.new_bundle(names)
    assert certs.judge(replace(good, cert=other_ca.cert, key=other_ca.key), names).action == (
        "renew"
    )
    assert certs.judge(replace(good, key=other_ca.key), names).action == "renew"
    assert certs.judge(certs.new_bundle(names, serving_days=30), names).action == "renew"
    assert certs.judge(replace(good, ca_key=other_ca.ca_key), names).action == "replace"
    assert certs.judge(replace(good, ca_cert=b""), names).action == "replace"


def test_a_ca_whose_key_is_not_ec_is_replaced() -> None:
    ca_cert, ca_key = rsa_ca()
    theirs = replace(certs.new_bundle(NAMES), ca_cert=ca_cert, ca_key=ca_key)
    assert certs.judge(theirs, NAMES).action == "replace"


def test_an_ip_address_among_the_names_is_an_ip_san() -> None:
    bundle = certs.new_bundle(["localhost", "127.0.0.1"], ca_days=7, ca_name="a sandbox CA")
    cert = x509.load_pem_x509_certificate(bundle.cert)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    ca = x509.load_pem_x509_certificate(bundle.ca_cert)
    assert ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "a sandbox CA"
    assert ca.not_valid_after_utc - ca.not_valid_before_utc < dt.timedelta(days=8)
    cert.verify_directly_issued_by(ca)
