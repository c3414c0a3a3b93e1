"""Doctor's settings: where the BFF runs, what it is called, and how to answer.

``doctor`` reads these rows and ``serve``'s ``--kubeconfig`` and ``--context``
(:mod:`bff.settings`): it checks the cluster ``serve`` runs on, reached the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from bff.names import is_dns1123_label
from bff.settings import Command, Settings, parse_namespace, parse_on_off, setting

_DOCTOR = frozenset({Command.DOCTOR})

#: The chart's fixed object names (deploy/chart/harvester-upgrade-bff/values.yaml).
DEFAULT_RELEASE = "harvester-upgrade-bff"


def _release(text: str) -> str:
    if not is_dns1123_label(text):
        raise ValueError("must be a DNS-1123 label (a Helm release fullname)")
    return text


def _url(text: str) -> str:
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL, e.g. https://harvester.example.com")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError("must carry no credentials, query or fragment")
    return text.strip().rstrip("/")


@dataclass(frozen=True)
class DoctorSettings(Settings):
    doctor_namespace: str = setting(
        "--namespace", "BFF_DOCTOR_NAMESPACE",
        "Namespace where the BFF runs (its Deployment, Service and ServiceAccount, the "
        "Helm release's namespace).",
        default="harvester-system", parse=parse_namespace, commands=_DOCTOR, metavar="NS",
    )  # fmt: skip
    doctor_upgrades_namespace: str = setting(
        "--upgrades-namespace", "BFF_DOCTOR_UPGRADES_NAMESPACE",
        "Namespace whose Upgrades are verified, and where the BFF's read cache must be "
        "allowed to list and watch them (unless its Deployment sets BFF_NAMESPACE).",
        default="harvester-system", parse=parse_namespace, commands=_DOCTOR, metavar="NS",
    )  # fmt: skip
    doctor_release: str = setting(
        "--release", "BFF_DOCTOR_RELEASE",
        "The Helm release fullname: the Deployment and MutatingWebhookConfiguration of that "
        "name, else those labelled app.kubernetes.io/instance=NAME; then the Service the "
        "webhook names and the ServiceAccount the Deployment runs as (else NAME).",
        default=DEFAULT_RELEASE, parse=_release, commands=_DOCTOR, metavar="NAME",
    )  # fmt: skip
    doctor_url: str | None = setting(
        "--url", "BFF_DOCTOR_URL",
        "Also check that this URL (the operator's Ingress in front of the BFF) reaches the "
        "BFF: GET URL/api/v1.0.5/upgrades, without credentials, must be answered by the BFF "
        "(its X-Served-By header).",
        default=None, parse=_url, commands=_DOCTOR, metavar="URL", shown="none (not checked)",
    )  # fmt: skip
    doctor_json: bool = setting(
        "--json", "BFF_DOCTOR_JSON",
        "Print one JSON document (checks: id, status, summary, details, remedy) instead of "
        "one line per check.",
        default=False, parse=parse_on_off, commands=_DOCTOR, switch=True,
    )  # fmt: skip
