"""The emulator's admission chain: webhook configurations consulted the way kube-apiserver does.

:class:`WebhookAdmission` holds ``MutatingWebhookConfiguration`` and
``ValidatingWebhookConfiguration`` objects, as a cluster does, and for every write the
emulator makes it (Upgrades, and the other guarded resources of
:mod:`~bff.sandbox.guarded`, whose writes name their resource):

1. picks the webhooks whose ``rules`` match the operation and resource, whose
   ``namespaceSelector`` matches the namespace's labels (the emulator's namespaces
   carry only ``kubernetes.io/metadata.name``), whose ``objectSelector`` matches the
   new or the old object's labels, and whose ``matchConditions`` (CEL, evaluated here
   with cel-python) are all true;
2. POSTs an AdmissionReview ``admission.k8s.io/v1`` over HTTPS to ``clientConfig.url``
   with ``?timeout=Ns``, trusting only ``clientConfig.caBundle``, within
   ``timeoutSeconds`` (10 when unset);
3. applies a mutating answer's base64 ``JSONPatch`` to the object, relays its
   ``warnings`` to the client (the emulator sends them as ``Warning: 299`` headers),
   refuses the write when the answer is a denial, and, when a webhook cannot be
   reached or answers nonsense, fails the write or skips the webhook as its
   ``failurePolicy`` says (``Fail`` when unset);
4. refuses a dry run to a webhook whose ``sideEffects`` is not ``None`` or
   ``NoneOnDryRun``, and calls a mutating webhook with ``reinvocationPolicy:
   IfNeeded`` once more when a later webhook changed the object.

Webhooks configured with ``clientConfig.service`` cannot be reached from the sandbox
and are refused when the chain is built. The messages follow kube-apiserver's
(``staging/src/k8s.io/apiserver/pkg/admission/plugin/webhook``).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import json
import logging
import ssl
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import celpy
import celpy.adapter
import celpy.celparser
import celpy.evaluation
import jsonpatch

from bff.admission import configuration as guard_config
from bff.admission.configuration import (
    WEBHOOK_NAME,
    trusted_condition,
    url_client_config,
)
from bff.admission.guard import TrustedWriters
from bff.admission.resources import GuardTable, table_from
from bff.admission.webhook import KEEPALIVE_TIMEOUT, Guard, serving
from bff.metrics import Metrics
from bff.sandbox.status import StatusError
from bff.sandbox.tls import SandboxCA
from bff.sandbox.users import UserInfo
from bff.server import WebhookListener, webhook_limits
from bff.settings import Settings
from bff.upgrade_resource import GROUP, PLURAL, VERSION

__all__ = [
    "DEFAULT_WEBHOOK_NAME",
    "WebhookAdmission",
    "guard_configuration",
    "guarding",
    "trusted_writers_condition",
]

log = logging.getLogger("bff.sandbox.admission")

JSON = dict[str, Any]
DEFAULT_TIMEOUT = 10
DEFAULT_WEBHOOK_NAME = WEBHOOK_NAME


class Write(Protocol):
    """The attributes of a write that admission sees (the emulator's write request)."""

    @property
    def operation(self) -> str: ...
    @property
    def namespace(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def user(self) -> UserInfo: ...
    @property
    def dry_run(self) -> bool: ...


def trusted_writers_condition(trusted: TrustedWriters) -> str:
    """The CEL ``matchConditions`` expression that leaves ``trusted`` out."""
    condition = trusted_condition(trusted)
    return str(condition["expression"]) if condition is not None else "true"


def guard_configuration(
    url: str,
    ca_pem: bytes,
    *,
    trusted: TrustedWriters | None = None,
    table: GuardTable | None = None,
    failure_policy: str = "Fail",
    timeout_seconds: int = 5,
) -> JSON:
    """The cluster guard's MutatingWebhookConfiguration, as the Helm chart
    ships it for ``table``, but calling ``url`` (not the in-cluster Service) and
    trusting ``ca_pem``."""
    return guard_config.configuration(
        table if table is not None else GuardTable(),
        trusted or TrustedWriters(),
        url_client_config(url, ca_pem),
        failure_policy=failure_policy,
        timeout_seconds=timeout_seconds,
    )


# --- matching ---------------------------------------------------------------------------


#: group, version, resource, kind of what a write writes (Upgrades unless it says).
Resource = tuple[str, str, str, str]
UPGRADE_RESOURCE: Resource = (GROUP, VERSION, PLURAL, "Upgrade")


def _resource(write: Write) -> Resource:
    resource: Resource = getattr(write, "resource", UPGRADE_RESOURCE)
    return resource


def _rule_matches(rule: Mapping[str, Any], operation: str, resource: Resource, scope: str) -> bool:
    def has(key: str, value: str) -> bool:
        values = rule.get(key) or []
        return "*" in values or value in values

    group, version, plural, _ = resource
    resources = rule.get("resources") or []
    return (
        has("operations", operation)
        and has("apiGroups", group)
        and has("apiVersions", version)
        and any(r in ("*", "*/*", plural) for r in resources)
        and rule.get("scope", "*") in ("*", scope)
    )


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """``metav1.LabelSelector`` semantics; an empty or missing selector matches everything."""
    if not selector:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise ValueError(f"{op!r} is not a valid label selector operator")
    return True


def _labels(obj: Mapping[str, Any] | None) -> Mapping[str, str]:
    meta = (obj or {}).get("metadata") or {}
    labels = meta.get("labels") if isinstance(meta, dict) else None
    return labels if isinstance(labels, dict) else {}


# --- one webhook --------------------------------------------------------------------------


class _CallFailed(Exception):
    """The webhook could not be called, or its answer is unusable (failurePolicy applies)."""


@dataclass
class _Webhook:
    name: str
    mutating: bool
    spec: JSON
    url: str
    ssl_context: ssl.SSLContext
    conditions: list[tuple[str, Any]] = field(default_factory=list)

    @property
    def failure_policy(self) -> str:
        return str(self.spec.get("failurePolicy") or "Fail")

    @property
    def timeout(self) -> int:
        return int(self.spec.get("timeoutSeconds") or DEFAULT_TIMEOUT)

    @classmethod
    def build(cls, spec: JSON, mutating: bool) -> _Webhook:
        name = str(spec.get("name") or "")
        client = spec.get("clientConfig") or {}
        url = client.get("url")
        if not url:
            raise ValueError(
                f"webhook {name!r}: the sandbox can call only clientConfig.url webhooks"
            )
        context = ssl.create_default_context()
        if client.get("caBundle"):
            context = ssl.create_default_context(
                cadata=base64.b64decode(client["caBundle"]).decode("ascii")
            )
        if "v1" not in (spec.get("admissionReviewVersions") or []):
            raise ValueError(f"webhook {name!r}: admissionReviewVersions must include v1")
        env = celpy.Environment()
        conditions = []
        for condition in spec.get("matchConditions") or []:
            try:
                program = env.program(env.compile(condition["expression"]))
            except celpy.celparser.CELParseError as exc:
                raise ValueError(
                    f"webhook {name!r}: matchConditions[{condition.get('name')}]: {exc}"
                ) from None
            conditions.append((str(condition.get("name")), program))
        return cls(name, mutating, spec, url, context, conditions)

    def selects(self, write: Write, obj: JSON, old: JSON | None) -> bool:
        resource = _resource(write)
        scope = "Namespaced" if write.namespace else "Cluster"
        rules = self.spec.get("rules") or []
        if not any(_rule_matches(r, write.operation, resource, scope) for r in rules):
            return False
        # A cluster-scoped object never skips a webhook for its namespaceSelector.
        ns_labels = {"kubernetes.io/metadata.name": write.namespace}
        if write.namespace and not selector_matches(self.spec.get("namespaceSelector"), ns_labels):
            return False
        selector = self.spec.get("objectSelector")
        return selector_matches(selector, _labels(obj)) or (
            old is not None and selector_matches(selector, _labels(old))
        )

    def conditions_hold(self, review: JSON) -> bool:
        """All matchConditions true. An evaluation error raises _CallFailed (the API
        server treats it as a webhook error, subject to failurePolicy)."""
        request = review["request"]
        activation = celpy.adapter.json_to_cel(
            {
                "object": request.get("object"),
                "oldObject": request.get("oldObject"),
                "request": request,
            }
        )
        for name, program in self.conditions:
            try:
                result = program.evaluate(activation)
            except Exception as exc:  # celpy raises its own and Python errors alike
                raise _CallFailed(f"matchCondition {name!r} failed to evaluate: {exc}") from None
            if isinstance(result, celpy.evaluation.CELEvalError):
                raise _CallFailed(f"matchCondition {name!r} failed to evaluate: {result}")
            if not bool(result):
                return False
        return True

    async def call(self, session: aiohttp.ClientSession, review: JSON) -> JSON:
        url = f"{self.url}?timeout={self.timeout}s"
        try:
            async with session.post(
                url,
                json=review,
                ssl=self.ssl_context,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as response:
                if response.status != 200:
                    text = (await response.text())[:200]
                    raise _CallFailed(
                        f'failed to call webhook: Post "{url}": the server responded '
                        f"with status {response.status}: {text}"
                    )
                answer = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            what = "context deadline exceeded" if isinstance(exc, TimeoutError) else exc
            raise _CallFailed(f'failed to call webhook: Post "{url}": {what}') from None
        result = answer.get("response") if isinstance(answer, dict) else None
        if not isinstance(result, dict):
            raise _CallFailed("received invalid webhook response: response is missing")
        if result.get("uid") != review["request"]["uid"]:
            raise _CallFailed(
                f"expected response.uid={review['request']['uid']!r}, got {result.get('uid')!r}"
            )
        return result


# --- the chain ----------------------------------------------------------------------------


def _user_info(user: UserInfo) -> JSON:
    return {
        "username": user.username,
        "uid": user.uid,
        "groups": list(user.groups),
        "extra": {k: list(v) for k, v in user.extra.items()},
    }


def _review(write: Write, obj: JSON, old: JSON | None) -> JSON:
    group, version, plural, kind_name = _resource(write)
    resource = {"group": group, "version": version, "resource": plural}
    kind = {"group": group, "version": version, "kind": kind_name}
    options_kind = "UpdateOptions" if write.operation == "UPDATE" else "CreateOptions"
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": kind,
            "resource": resource,
            "requestKind": kind,
            "requestResource": resource,
            "name": write.name,
            "namespace": write.namespace,
            "operation": write.operation,
            "userInfo": _user_info(write.user),
            "object": obj,
            "oldObject": old,
            "dryRun": write.dry_run,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": options_kind},
        },
    }


def _internal(webhook: str, why: str) -> StatusError:
    return StatusError(
        500, "InternalError", f'Internal error occurred: failed calling webhook "{webhook}": {why}'
    )


def _denied(webhook: str, result: JSON) -> StatusError:
    raw = result.get("status")
    status: JSON = raw if isinstance(raw, dict) else {}
    code = int(status.get("code") or 403)
    message = status.get("message") or ""
    reason = status.get("reason") or ("Forbidden" if code == 403 else "BadRequest")
    text = f'admission webhook "{webhook}" denied the request'
    return StatusError(code, str(reason), f"{text}: {message}" if message else text)


class WebhookAdmission:
    """The emulator's admission: the webhooks of the configurations it holds."""

    def __init__(self, configurations: Sequence[JSON] = ()) -> None:
        self._mutating: list[_Webhook] = []
        self._validating: list[_Webhook] = []
        self._session: aiohttp.ClientSession | None = None
        for configuration in configurations:
            self.add(configuration)

    def add(self, configuration: JSON) -> None:
        """Hold one more configuration (as ``kubectl apply`` of it would)."""
        kind = configuration.get("kind")
        if kind not in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
            raise ValueError(f"not a webhook configuration: {kind!r}")
        mutating = kind == "MutatingWebhookConfiguration"
        hooks = [_Webhook.build(w, mutating) for w in configuration.get("webhooks") or []]
        (self._mutating if mutating else self._validating).extend(hooks)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def _consult(
        self, hook: _Webhook, write: Write, obj: JSON, old: JSON | None
    ) -> JSON | None:
        """The webhook's response, or None when it does not apply or is skipped (Ignore)."""
        if not hook.selects(write, obj, old):
            return None
        if write.dry_run and hook.spec.get("sideEffects") not in ("None", "NoneOnDryRun"):
            raise StatusError.bad_request(
                f'admission webhook "{hook.name}" does not support dry run'
            )
        review = _review(write, copy.deepcopy(obj), copy.deepcopy(old))
        try:
            if not hook.conditions_hold(review):
                return None
            return await hook.call(self._client(), review)
        except _CallFailed as exc:
            if hook.failure_policy == "Ignore":
                log.warning('failed calling webhook "%s": %s; ignored (failurePolicy Ignore)',
                            hook.name, exc)  # fmt: skip
                return None
            raise _internal(hook.name, str(exc)) from None

    async def mutate(self, write: Write, obj: JSON, old: JSON | None) -> tuple[JSON, list[str]]:
        warnings: list[str] = []
        ran_before_change: list[_Webhook] = []
        for index, hook in enumerate(self._mutating):
            before = copy.deepcopy(obj)
            obj = await self._mutate_one(hook, write, obj, old, warnings)
            if obj != before:
                ran_before_change = [
                    h for h in self._mutating[:index]
                    if h.spec.get("reinvocationPolicy") == "IfNeeded"
                ]  # fmt: skip
        for hook in ran_before_change:
            obj = await self._mutate_one(hook, write, obj, old, warnings)
        return obj, warnings

    async def _mutate_one(
        self, hook: _Webhook, write: Write, obj: JSON, old: JSON | None, warnings: list[str]
    ) -> JSON:
        result = await self._consult(hook, write, obj, old)
        if result is None:
            return obj
        warnings.extend(str(w) for w in result.get("warnings") or [])
        if not result.get("allowed"):
            raise _denied(hook.name, result)
        patch = result.get("patch")
        if not patch:
            return obj
        if result.get("patchType") != "JSONPatch":
            raise _internal(hook.name, f"unsupported patch type {result.get('patchType')!r}")
        try:
            ops = json.loads(base64.b64decode(patch, validate=True))
            patched: JSON = jsonpatch.JsonPatch(ops).apply(obj)
        except (binascii.Error, ValueError, jsonpatch.JsonPatchException,
                jsonpatch.JsonPointerException) as exc:  # fmt: skip
            raise _internal(hook.name, f"the server rejected the JSON patch: {exc}") from None
        return patched

    async def validate(self, write: Write, obj: JSON, old: JSON | None) -> list[str]:
        warnings: list[str] = []
        for hook in self._validating:
            result = await self._consult(hook, write, obj, old)
            if result is None:
                continue
            warnings.extend(str(w) for w in result.get("warnings") or [])
            if not result.get("allowed"):
                raise _denied(hook.name, result)
        return warnings


@contextlib.asynccontextmanager
async def guarding(
    settings: Settings,
    admission: WebhookAdmission | None,
    ca: SandboxCA,
    directory: Path,
    metrics: Metrics,
) -> AsyncIterator[str | None]:
    """``sandbox --webhook-port``: serve the cluster guard on loopback with a certificate
    from the sandbox's CA, and have ``admission`` (the emulator's) hold its
    configuration, as a cluster holds the overlay's. Yields the webhook's URL, or None
    when ``admission`` is None (the webhook is off)."""
    if admission is None or settings.webhook_port is None:
        yield None
        return
    cert, key = directory / "webhook.crt", directory / "webhook.key"
    key.touch(mode=0o600)
    key.write_bytes(ca.server_key_pem)
    cert.write_bytes(ca.server_cert_pem)
    trusted = TrustedWriters.parse(settings.trusted_writers)
    table = table_from(settings.guard_resources)
    guard = Guard(
        trusted,
        table,
        on_restore=lambda resource, reason: metrics.status_restores.labels(
            resource, str(reason)
        ).inc(),
    )
    try:
        # Bounded as serve's webhook port is (connection cap, header, idle and TLS
        # handshake timeouts, its share of the descriptors), with serve's defaults.
        listener = WebhookListener(webhook_limits(settings, keepalive_timeout=KEEPALIVE_TIMEOUT))
        async with serving(
            guard,
            host="127.0.0.1",
            port=settings.webhook_port,
            cert=str(cert),
            key=str(key),
            listen=listener,
        ) as url:
            admission.add(guard_configuration(url, ca.ca_pem, trusted=trusted, table=table))
            yield url
    finally:
        await admission.close()
