"""Checks ``webhook.registered``, ``webhook.ca-bundle`` and ``webhook.called``.

- registered: the release's MutatingWebhookConfiguration exists and holds the guard.
- ca-bundle: its ``caBundle`` verifies the serving certificate, for the name the API
  server dials. Proven by a TLS handshake to the webhook itself when doctor can reach
  it (a ``url`` webhook, or the Service's endpoints from inside the cluster); else by a
  handshake in memory with the certificate and key of the Secret the Deployment mounts
  (what the pods serve, not that they serve it); else not proven here, and
  ``webhook.called`` is the proof.
- called: the API server really calls the guard. A server-side dry-run
  (``dryRun=All``) PUT of an existing guarded object without its status must come
  back with status intact and the guard's ``Warning``. A dry run stores nothing.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any
from urllib.parse import urlsplit

from bff.doctor import report
from bff.doctor.client import Answer, DoctorClient
from bff.doctor.crds import guarded
from bff.doctor.release import Release
from bff.doctor.tlsverify import handshake, handshake_in_memory

REGISTERED, CA_BUNDLE, CALLED = "webhook.registered", "webhook.ca-bundle", "webhook.called"
#: What every warning of the guard starts with (bff/admission/guard.py).
WARNING_MARK = "harvester-upgrade-bff:"
ENABLE = (
    "Install the guard: helm upgrade --reuse-values --set webhook.enabled=true (cert-manager "
    "issues its certificate; see docs/install.md for the other certificate sources)."
)


def registered(release: Release) -> report.Check:
    hook = release.webhook
    if not release.serves_webhooks:
        return report.skipped(
            REGISTERED,
            "skipped: this API server serves no webhook configurations "
            "(admissionregistration.k8s.io/v1): no real cluster (the sandbox's emulator "
            "consults its guard without one); webhook.called still tries it",
        )
    if release.webhook_configuration is None:
        return report.problem(
            REGISTERED,
            f"no MutatingWebhookConfiguration {release.name}: the cluster guard is not "
            "registered, so a write from any client other than the BFF can wipe a status",
            ENABLE,
        )
    if hook is None:
        return report.problem(
            REGISTERED,
            f"MutatingWebhookConfiguration {release.name} holds no guard webhook",
            ENABLE,
        )
    config = hook.get("clientConfig") or {}
    where = config.get("url") or "service {namespace}/{name}:{port}".format(
        port=443, **(config.get("service") or {"namespace": "?", "name": "?"})
    )
    policy = hook.get("failurePolicy", "Fail")
    return report.ok(
        REGISTERED,
        f"webhook {hook.get('name')} is registered ({where}, failurePolicy {policy})",
        [f"rules: {len(hook.get('rules') or [])}", f"failurePolicy: {policy}"],
    )


def _pem(value: str) -> str | None:
    try:
        return base64.b64decode(value, validate=True).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None


async def _endpoints(
    client: DoctorClient, namespace: str, service: str, port: int
) -> list[tuple[str, int]]:
    """Ready addresses and target port of the Service's ``port``, from its EndpointSlices."""
    svc = await client.get(f"/api/v1/namespaces/{namespace}/services/{service}")
    if svc.status != 200:
        return []
    ports = [p for p in svc.body.get("spec", {}).get("ports") or [] if p.get("port") == port]
    if not ports:
        return []
    wanted = ports[0].get("name")
    slices = await client.get(
        f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices",
        labelSelector=f"kubernetes.io/service-name={service}",
    )
    out: list[tuple[str, int]] = []
    for item in (slices.body or {}).get("items", []) if slices.status == 200 else []:
        numbers = [p.get("port") for p in item.get("ports") or [] if p.get("name") == wanted]
        for endpoint in item.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready") is False:
                continue
            for address in endpoint.get("addresses") or []:
                out.extend((address, n) for n in numbers if isinstance(n, int))
    return out


def _secret_name(release: Release) -> str:
    pod = (release.deployment or {}).get("spec", {}).get("template", {}).get("spec", {})
    for volume in pod.get("volumes") or []:
        if volume.get("name") == "webhook-tls" and volume.get("secret"):
            return str(volume["secret"].get("secretName"))
    return f"{release.name}-webhook-tls"


async def ca_bundle(client: DoctorClient, release: Release) -> report.Check:
    hook = release.webhook
    if hook is None:
        return report.skipped(CA_BUNDLE, "skipped: no guard webhook registered")
    config = hook.get("clientConfig") or {}
    ca = _pem(config.get("caBundle") or "")
    if not ca:
        return report.problem(
            CA_BUNDLE,
            "the webhook's caBundle is empty or not base64 PEM: the API server cannot trust "
            "the guard, and with failurePolicy Fail refuses every write it guards",
            "With the chart: check that cert-manager's CA injector runs and that the "
            "Certificate harvester-upgrade-bff-webhook is Ready (kubectl describe certificate).",
        )
    tried: list[str] = []
    if config.get("url"):
        url = urlsplit(config["url"])
        host, port = url.hostname or "", url.port or 443
        targets, name = [(host, port)], host
    else:
        service = config.get("service") or {}
        ns, svc = service.get("namespace", release.namespace), service.get("name", release.name)
        name = f"{svc}.{ns}.svc"
        targets = await _endpoints(client, ns, svc, int(service.get("port", 443)))
    for host, port in targets[:3]:
        try:
            failure = await handshake(host, port, name, ca)
        except OSError as exc:
            tried.append(f"{host}:{port} not reachable from here ({exc})")
            continue
        return _verdict(failure, f"the certificate served at {host}:{port}", name, tried)
    secret_name = _secret_name(release)
    secret = await client.get(f"/api/v1/namespaces/{release.namespace}/secrets/{secret_name}")
    if secret.status == 200:
        data = secret.body.get("data") or {}
        cert, key = _pem(data.get("tls.crt", "")), _pem(data.get("tls.key", ""))
        if cert and key:
            failure = handshake_in_memory(cert, key, name, ca)
            what = f"the certificate in Secret {release.namespace}/{secret_name}"
            return _verdict(failure, what, name, tried)
        tried.append(f"Secret {secret_name} holds no tls.crt and tls.key")
    else:
        tried.append(f"Secret {release.namespace}/{secret_name}: answered {secret.status}")
    return report.skipped(
        CA_BUNDLE,
        "caBundle not verified directly (the webhook is not reachable from here and its "
        "Secret is not readable); webhook.called proves whether the API server trusts it",
        tried,
    )


def _verdict(failure: str | None, what: str, name: str, tried: list[str]) -> report.Check:
    if failure is None:
        return report.ok(
            CA_BUNDLE, f"the caBundle verifies {what} for {name}", [*tried, f"verified: {what}"]
        )
    return report.problem(
        CA_BUNDLE,
        f"the caBundle does not verify {what} for {name} ({failure}): the API server "
        "cannot call the guard",
        "Put the CA that signs the webhook's serving certificate in the configuration's "
        "caBundle: with the chart, cert-manager's cainjector does it from the annotation "
        "cert-manager.io/inject-ca-from; after a manual change, re-apply the configuration.",
        [*tried, failure],
    )


def _path(group: str, version: str, resource: str, obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    ns = f"namespaces/{meta['namespace']}/" if meta.get("namespace") else ""
    return f"/apis/{group}/{version}/{ns}{resource}/{meta['name']}"


async def _target(client: DoctorClient, release: Release) -> tuple[str, dict[str, Any]] | None:
    """An existing guarded object with a status: an Upgrade first, else any guarded kind."""
    resources = guarded(release)
    resources.sort(key=lambda g: (g.resource != "upgrades", g.name))
    for g in resources:
        where = f"namespaces/{release.upgrades_namespace}/" if g.resource == "upgrades" else ""
        answer = await client.get(f"/apis/{g.group}/{g.version}/{where}{g.resource}", limit="50")
        if answer.status != 200:
            continue
        for item in answer.body.get("items") or []:
            if item.get("status"):
                item.setdefault("apiVersion", f"{g.group}/{g.version}")
                return _path(g.group, g.version, g.resource, item), item
    return None


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


async def called(client: DoctorClient, release: Release) -> report.Check:
    if release.webhook is None and release.serves_webhooks:
        return report.skipped(CALLED, "skipped: no guard webhook registered")
    found = await _target(client, release)
    if found is None:
        return report.skipped(
            CALLED, "skipped: no guarded object with a status to try a dry-run write on"
        )
    path, live = found
    kind, name = live.get("kind", "object"), live["metadata"]["name"]
    body = {k: v for k, v in live.items() if k != "status"}
    answer = await client.request("PUT", path, query={"dryRun": "All"}, body=body)
    after = await client.get(path)
    unchanged = (
        after.status == 200
        and after.body["metadata"].get("resourceVersion") == live["metadata"]["resourceVersion"]
    )
    details = [
        f"dry-run PUT {path} without status: {answer.status}",
        "object unchanged afterwards (same resourceVersion)"
        if unchanged
        else "the object changed meanwhile (not by the dry run, which stores nothing)",
    ]
    return _called_verdict(answer, live, kind, name, details)


def _called_verdict(
    answer: Answer, live: dict[str, Any], kind: str, name: str, details: list[str]
) -> report.Check:
    warnings = [w for w in answer.warnings if WARNING_MARK in w]
    details += [f"warning: {w}" for w in warnings]
    repaired = answer.status == 200 and _same((answer.body or {}).get("status"), live["status"])
    if repaired and warnings:
        return report.ok(
            CALLED,
            f"the API server calls the guard: a dry-run PUT of {kind} {name} without its "
            "status came back repaired, with the guard's warning",
            details,
        )
    if repaired:
        return report.problem(
            CALLED,
            f"a dry-run PUT of {kind} {name} without its status came back with it, but "
            "without the guard's warning: something else than the guard put it back",
            "Look for another mutating webhook on this resource "
            "(kubectl get mutatingwebhookconfigurations).",
            details,
        )
    if answer.status == 200:
        return report.problem(
            CALLED,
            f"the API server did not call the guard: a dry-run PUT of {kind} {name} without "
            "its status came back with the status removed (a real write would wipe it)",
            "Check the webhook's rules and matchConditions: the guard leaves out the "
            "resources' owners and --trusted-writer users by design, so run doctor as "
            "another user (e.g. a cluster admin) if yours is one of them.",
            details,
        )
    if answer.status == 409:
        return report.skipped(
            CALLED,
            f"skipped: {kind} {name} changed while doctor tried its dry run (409); run it again",
            details,
        )
    message = (answer.body or {}).get("message") if isinstance(answer.body, dict) else answer.body
    if answer.status == 403 and WARNING_MARK in str(message):
        # A guard in deny mode (the chart's mode: deny) refuses instead of repairing.
        details.append(f"answer: {str(message)[:500]}")
        return report.ok(
            CALLED,
            f"the API server calls the guard: a dry-run PUT of {kind} {name} without its "
            "status was refused by the guard (deny mode)",
            details,
        )
    if answer.status in (401, 403):
        return report.skipped(
            CALLED,
            f"skipped: doctor's user may not update {kind} {name} ({answer.status}), so it "
            "cannot show that the API server calls the guard",
            details,
        )
    details.append(f"answer: {str(message)[:500]}")
    return report.problem(
        CALLED,
        f"the API server could not call the guard: a dry-run PUT of {kind} {name} was "
        f"refused ({answer.status}: {str(message)[:300]})",
        "With failurePolicy Fail every guarded write is refused like this: check that the "
        "BFF's pods are ready and serve the webhook port, and that the caBundle verifies "
        "their certificate (webhook.ca-bundle).",
        details,
    )
