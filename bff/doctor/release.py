"""The installed BFF: its Deployment, ServiceAccount and webhook configuration, and its settings.

Each object is found by the release's fullname first (the chart's fixed names),
then by the chart's label ``app.kubernetes.io/instance=<release>``. What the BFF
runs with (auth mode, read cache, namespace, Rancher) is read from the
Deployment's environment, the variables the chart sets; without a Deployment,
the chart's defaults are assumed and said so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bff.admission.configuration import WEBHOOK_NAME
from bff.doctor.client import DoctorClient
from bff.doctor.settings import DoctorSettings
from bff.identities import AuthMode
from bff.kube.permissions import SelfCertificates
from bff.settings import parse_on_off

INSTANCE_LABEL = "app.kubernetes.io/instance"
CRD_API = "/apis/apiextensions.k8s.io/v1"
WEBHOOK_API = "/apis/admissionregistration.k8s.io/v1"
WEBHOOK_CONFIGURATIONS = f"{WEBHOOK_API}/mutatingwebhookconfigurations"


@dataclass(frozen=True)
class Release:
    name: str
    namespace: str
    upgrades_namespace: str
    deployment: dict[str, Any] | None
    webhook_configuration: dict[str, Any] | None
    service_account: str
    auth_mode: AuthMode
    read_cache: bool
    rancher: bool
    #: The BFF's BFF_NAMESPACE, when its Deployment sets one.
    served_namespace: str | None
    #: With ``--webhook-cert-source self``: the Secret and configuration it keeps.
    certificates: SelfCertificates | None = None
    #: Whether the API server serves CRDs and webhook configurations at all (the
    #: sandbox's emulator serves neither: it consults its guard without one).
    serves_crds: bool = True
    serves_webhooks: bool = True

    @property
    def webhook(self) -> dict[str, Any] | None:
        """The guard's webhook in the configuration (by its name, else the only one)."""
        hooks = list((self.webhook_configuration or {}).get("webhooks") or [])
        named = [h for h in hooks if h.get("name") == WEBHOOK_NAME]
        if named:
            return dict(named[0])
        return dict(hooks[0]) if len(hooks) == 1 else None


async def find(client: DoctorClient, path: str, name: str, release: str) -> dict[str, Any] | None:
    """``path/name``, else the one object under ``path`` labelled with the release."""
    answer = await client.get(f"{path}/{name}")
    if answer.status == 200:
        return dict(answer.body)
    answer = await client.get(path, labelSelector=f"{INSTANCE_LABEL}={release}")
    if answer.status == 200:
        items = answer.body.get("items") or []
        if items:
            return dict(items[0])
    return None


def _env(deployment: dict[str, Any] | None) -> dict[str, str]:
    if deployment is None:
        return {}
    containers = deployment.get("spec", {}).get("template", {}).get("spec", {}).get("containers")
    env: dict[str, str] = {}
    for container in containers or []:
        for item in container.get("env") or []:
            if isinstance(item.get("value"), str):
                env.setdefault(item["name"], item["value"])
    return env


def container_args(deployment: dict[str, Any] | None) -> dict[str, str]:
    """The containers' ``--flag=value`` arguments, by flag."""
    containers = (deployment or {}).get("spec", {}).get("template", {}).get("spec", {})
    found: dict[str, str] = {}
    for container in containers.get("containers") or []:
        for arg in container.get("args") or []:
            if isinstance(arg, str) and arg.startswith("--") and "=" in arg:
                flag, _, value = arg.partition("=")
                found.setdefault(flag, value)
    return found


def self_certificates(args: dict[str, str], env: dict[str, str]) -> SelfCertificates | None:
    """What ``--webhook-cert-source self`` keeps, read from the container's arguments
    (the chart's way) or its variables; ``None`` in files mode or when incomplete."""

    def value(flag: str, variable: str) -> str:
        return args.get(flag) or env.get(variable, "")

    if value("--webhook-cert-source", "BFF_WEBHOOK_CERT_SOURCE").strip().lower() != "self":
        return None
    secret = value("--webhook-cert-secret", "BFF_WEBHOOK_CERT_SECRET")
    configuration = value("--webhook-configuration", "BFF_WEBHOOK_CONFIGURATION")
    namespace, _, name = secret.partition("/")
    if not (namespace and name and configuration):
        return None  # serve would not start: the Deployment's own problem, not RBAC's
    return SelfCertificates(namespace, name, configuration)


def read_cache(env: dict[str, str], *, rancher: bool) -> bool:
    """Whether the Deployment's BFF serves from its read cache, read as ``serve`` reads it
    (any on/off word); unset, or a value ``serve`` would refuse: its default."""
    try:
        return parse_on_off(env.get("BFF_READ_CACHE", ""))
    except ValueError:
        return not rancher


async def discover(client: DoctorClient, settings: DoctorSettings) -> Release:
    ns, name = settings.doctor_namespace, settings.doctor_release
    deployment = await find(client, f"/apis/apps/v1/namespaces/{ns}/deployments", name, name)
    configuration = await find(client, WEBHOOK_CONFIGURATIONS, name, name)
    env = _env(deployment)
    pod = (deployment or {}).get("spec", {}).get("template", {}).get("spec", {})
    account = pod.get("serviceAccountName") or name
    try:
        mode = AuthMode(env.get("BFF_AUTH_MODE", AuthMode.PASSTHROUGH.value))
    except ValueError:
        mode = AuthMode.PASSTHROUGH
    rancher = bool(env.get("BFF_RANCHER_URL"))
    cache = read_cache(env, rancher=rancher)
    return Release(
        name=name,
        namespace=ns,
        upgrades_namespace=settings.doctor_upgrades_namespace,
        deployment=deployment,
        webhook_configuration=configuration,
        service_account=account,
        auth_mode=mode,
        read_cache=cache,
        rancher=rancher,
        served_namespace=env.get("BFF_NAMESPACE"),
        certificates=self_certificates(container_args(deployment), env),
        serves_crds=(await client.get(CRD_API)).status != 404,
        serves_webhooks=(await client.get(WEBHOOK_API)).status != 404,
    )
