"""Configuration: the product's flags (``serve``'s), and the one way every command reads its own.

Each field of :class:`Settings` is one entry: its flag, its environment
variable, its type (the parser), its default, its help, and the commands that
take it. ``--help`` is generated from it, the flag wins over the variable, and
a bad value fails at startup with one line that names both (exit status 2).
Adding a flag is adding one field.

The sandbox's and the bench's settings extend :class:`Settings` in their own
packages (:mod:`bff.sandbox.settings`, :mod:`bff.bench.settings`); the functions
here take the class to read (``kind``), so their rows follow the same rules.
"""

from __future__ import annotations

import argparse
import enum
import ipaddress
import os
import re
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, TypeVar, overload
from urllib.parse import urlsplit

from bff.admission.guard import TrustedWriters
from bff.admission.resources import GuardTable, apply_changes, parse_changes
from bff.identities import AuthMode
from bff.logs import LogFormat
from bff.names import is_dns1123_label, is_dns1123_subdomain


class Command(enum.StrEnum):
    SERVE = "serve"
    SANDBOX = "sandbox"
    DEMO = "demo"
    BENCH = "bench"
    DOCTOR = "doctor"


class SettingsError(ValueError):
    """A configuration value is unusable; the message is one line for the operator."""


@dataclass(frozen=True)
class Option:
    """One row of the table: how a setting is given and read."""

    flag: str
    env: str
    help: str
    parse: Callable[[str], Any]
    commands: frozenset[Command]
    metavar: str | None = None
    #: Read after ``env`` when it is unset (``KUBECONFIG``, as kubectl does).
    fallback_env: tuple[str, ...] = ()
    #: A flag without a value (``--quick``); its variable takes what :func:`parse_on_off` does.
    switch: bool = False
    #: How ``--help`` shows the default, when the default value itself does not say it.
    shown: str | None = None
    #: The flag may be given several times; its variable takes a comma-separated list.
    repeatable: bool = False


def parse_whole(text: str, why: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(why) from None


def parse_real(text: str, why: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(why) from None


def _choice(kind: type[enum.StrEnum]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            return kind(text)
        except ValueError:
            raise ValueError("must be one of " + ", ".join(m.value for m in kind)) from None

    return parse


def _non_negative_int(text: str) -> int:
    why = "must be zero or a positive whole number"
    value = parse_whole(text, why)
    if value < 0:
        raise ValueError(why)
    return value


def parse_positive_int(text: str) -> int:
    why = "must be a positive whole number"
    value = parse_whole(text, why)
    if value <= 0:
        raise ValueError(why)
    return value


def parse_port(text: str) -> int:
    why = "must be a port number from 0 to 65535"
    value = parse_whole(text, why)
    if not 0 <= value <= 65535:
        raise ValueError(why)
    return value


def _positive_float(text: str) -> float:
    why = "must be a positive number of seconds"
    value = parse_real(text, why)
    if not value > 0:
        raise ValueError(why)
    return value


def parse_non_negative_float(text: str) -> float:
    why = "must be zero or more seconds"
    value = parse_real(text, why)
    if not value >= 0:
        raise ValueError(why)
    return value


def _base_path(text: str) -> str:
    text = text.strip()
    if text in ("", "/"):
        return ""
    if not re.fullmatch(r"(/[A-Za-z0-9._~-]+)+/?", text):
        raise ValueError("must look like /some/prefix (letters, digits, '.', '_', '~', '-')")
    return text.rstrip("/")


def parse_namespace(text: str) -> str:
    if not is_dns1123_label(text):
        raise ValueError("must be a DNS-1123 label")
    return text


def _origins(text: str) -> tuple[str, ...]:
    origins = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        if item == "*":
            raise ValueError("'*' is not allowed: credentials are never shared with any origin")
        parts = urlsplit(item)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
            raise ValueError(f"{item!r} is not an origin like https://rancher.example.com")
        origins.append(f"{parts.scheme}://{parts.netloc}".lower())
    return tuple(origins)


def _networks(text: str) -> tuple[str, ...]:
    nets = []
    for item in (part.strip() for part in text.split(",")):
        if item:
            nets.append(str(ipaddress.ip_network(item, strict=False)))
    return tuple(nets)


def _log_level(text: str) -> str:
    level = text.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
    return level


def parse_file(text: str) -> str:
    if not os.path.isfile(text):
        raise ValueError(f"no such file: {text}")
    return text


def _rancher_url(text: str) -> str:
    parts = urlsplit(text.strip())
    if parts.scheme != "https":
        raise ValueError("must be an https:// URL: the callers' tokens never go over plain HTTP")
    if not parts.hostname or parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError("must look like https://rancher.example.com (no query, no credentials)")
    return f"https://{parts.netloc}{parts.path}".rstrip("/")


def _ca_bundle(text: str) -> str:
    if not os.path.isfile(text):
        raise ValueError(f"no such file: {text}")
    try:
        ssl.create_default_context(cafile=text)
    except (OSError, ssl.SSLError):
        raise ValueError(f"{text} holds no PEM certificate") from None
    return text


def _cluster_id(text: str) -> str:
    if not is_dns1123_label(text):
        raise ValueError(f"{text[:80]!r} is not a cluster id like local or c-m-abcd1234")
    return text


def _cluster_ids(text: str) -> tuple[str, ...]:
    ids = tuple(_cluster_id(part.strip()) for part in text.split(",") if part.strip())
    if not ids:
        raise ValueError("names no cluster")
    return tuple(dict.fromkeys(ids))


def _trusted_writers(text: str) -> tuple[str, ...]:
    entries = tuple(part.strip() for part in text.split(",") if part.strip())
    if not entries:
        raise ValueError("names no user or group")
    TrustedWriters.parse(entries)
    return entries


def _guard_resources(text: str) -> tuple[str, ...]:
    apply_changes(parse_changes(text))  # raises ValueError naming the entry at fault
    return tuple(part.strip() for part in text.split(",") if part.strip())


#: The BFF's own settings: the commands that run a BFF.
_SERVING = frozenset({Command.SERVE, Command.SANDBOX})
#: Settings for a BFF against a real cluster only (the sandbox makes its own).
_CLUSTER = frozenset({Command.SERVE})
#: Where the cluster is: serve's, and doctor's (which checks the cluster serve runs on).
_KUBECONFIG = frozenset({Command.SERVE, Command.DOCTOR})
_LOGGING = frozenset({Command.SERVE, Command.SANDBOX, Command.DEMO})


class CertSource(enum.StrEnum):
    FILES = "files"
    SELF = "self"


def _object_ref(text: str) -> str:
    namespace, _, name = text.partition("/")
    if not is_dns1123_label(namespace) or not is_dns1123_label(name) or len(name) > 63:
        raise ValueError("must be NAMESPACE/NAME, each a DNS-1123 label")
    return text


def _subdomain(text: str) -> str:
    if not is_dns1123_subdomain(text):
        raise ValueError("must be a DNS-1123 subdomain")
    return text


def split_ref(ref: str) -> tuple[str, str]:
    """``NAMESPACE/NAME`` as its two parts (the value was checked when read)."""
    namespace, _, name = ref.partition("/")
    return namespace, name


#: The flags only self mode reads, and their variables.
SELF_ONLY = (
    ("webhook_cert_secret", "--webhook-cert-secret / BFF_WEBHOOK_CERT_SECRET"),
    ("webhook_service", "--webhook-service / BFF_WEBHOOK_SERVICE"),
    ("webhook_configuration", "--webhook-configuration / BFF_WEBHOOK_CONFIGURATION"),
)


def _check_cert_source(settings: Settings, given_interval: bool) -> None:
    """The webhook certificate's two modes, each with its own flags (one line each)."""
    if settings.webhook_cert_source is CertSource.FILES:
        extra = [flag for name, flag in SELF_ONLY if getattr(settings, name) is not None]
        if given_interval:
            extra.append("--webhook-cert-check-interval / BFF_WEBHOOK_CERT_CHECK_INTERVAL")
        if extra:
            raise SettingsError(
                f"{extra[0]} needs --webhook-cert-source self (BFF_WEBHOOK_CERT_SOURCE=self)"
            )
        return
    missing = [flag for name, flag in SELF_ONLY if getattr(settings, name) is None]
    if settings.webhook_port is None:
        missing.insert(0, "--webhook-port / BFF_WEBHOOK_PORT")
    if missing:
        raise SettingsError(f"--webhook-cert-source self needs {', '.join(missing)}")
    if settings.webhook_tls_cert or settings.webhook_tls_key:
        raise SettingsError(
            "--webhook-tls-cert / --webhook-tls-key do not go with --webhook-cert-source self: "
            "the certificate comes from --webhook-cert-secret"
        )


#: The words every on/off setting takes (``--read-cache``, a switch's variable such as
#: ``BFF_BENCH_QUICK``), in any case: one parser, so no two settings disagree on a word.
ON_WORDS = ("on", "true", "yes", "1")
OFF_WORDS = ("off", "false", "no", "0")


def parse_on_off(text: str) -> bool:
    """``on``/``off`` (or true/false, yes/no, 1/0); anything else is an error."""
    value = text.strip().lower()
    if value in ON_WORDS:
        return True
    if value in OFF_WORDS:
        return False
    raise ValueError("must be on or off (or true/false, yes/no, 1/0)")


def setting(
    flag: str,
    env: str,
    help: str,
    *,
    default: Any,
    parse: Callable[[str], Any] = str,
    commands: frozenset[Command] = _SERVING,
    metavar: str | None = None,
    fallback_env: tuple[str, ...] = (),
    switch: bool = False,
    shown: str | None = None,
    repeatable: bool = False,
) -> Any:
    """A :class:`Settings` field together with its row of the table."""
    option = Option(
        flag, env, help, parse, commands, metavar, fallback_env, switch, shown, repeatable
    )
    return field(default=default, metadata={"option": option})


@dataclass(frozen=True)
class Settings:
    """Every setting of every command; each field is one row of the table."""

    host: str = setting(
        "--host", "BFF_HOST", "Address to listen on.", default="127.0.0.1", metavar="ADDR"
    )
    port: int = setting("--port", "BFF_PORT", "Port to listen on.", default=8080, parse=parse_port)
    base_path: str = setting(
        "--base-path",
        "BFF_BASE_PATH",
        "Mount every route under this prefix, e.g. /harvester-upgrade-bff.",
        default="",
        parse=_base_path,
        metavar="PATH",
    )
    namespace: str = setting(
        "--namespace",
        "BFF_NAMESPACE",
        "Namespace whose Upgrades the collection routes list.",
        default="harvester-system",
        parse=parse_namespace,
    )
    auth_mode: AuthMode = setting(
        "--auth-mode",
        "BFF_AUTH_MODE",
        "passthrough: send the caller's token upstream, so the API server authenticates "
        "and authorises it. impersonate: check the token with a TokenReview, then act as "
        "the BFF with Impersonate-* headers for that user.",
        default=AuthMode.PASSTHROUGH,
        parse=_choice(AuthMode),
        metavar="{passthrough,impersonate}",
    )
    kubeconfig: str | None = setting(
        "--kubeconfig",
        "BFF_KUBECONFIG",
        "Kubeconfig file for the cluster (KUBECONFIG is also read). Without one, the "
        "in-cluster service account is used.",
        default=None,
        parse=parse_file,
        commands=_KUBECONFIG,
        metavar="FILE",
        fallback_env=("KUBECONFIG",),
    )
    context: str | None = setting(
        "--context",
        "BFF_CONTEXT",
        "Kubeconfig context to use.",
        default=None,
        commands=_KUBECONFIG,
        metavar="NAME",
    )
    allowed_origins: tuple[str, ...] = setting(
        "--allowed-origin",
        "BFF_ALLOWED_ORIGIN",
        "Comma-separated browser origins allowed besides the BFF's own host "
        "(e.g. https://rancher.example.com). '*' is refused.",
        default=(),
        parse=_origins,
        metavar="ORIGINS",
    )
    trusted_proxies: tuple[str, ...] = setting(
        "--trusted-proxies",
        "BFF_TRUSTED_PROXIES",
        "Comma-separated CIDRs whose X-Forwarded-For is believed, for logs only.",
        default=(),
        parse=_networks,
        metavar="CIDRS",
    )
    max_body_bytes: int = setting(
        "--max-body-bytes",
        "BFF_MAX_BODY_BYTES",
        "Largest request body accepted (413 beyond).",
        default=64 * 1024,
        parse=parse_positive_int,
        metavar="BYTES",
    )
    upstream_connect_timeout: float = setting(
        "--upstream-connect-timeout",
        "BFF_UPSTREAM_CONNECT_TIMEOUT",
        "Seconds to wait for a connection to the Kubernetes API.",
        default=5.0,
        parse=_positive_float,
        metavar="SECONDS",
    )
    upstream_read_timeout: float = setting(
        "--upstream-read-timeout",
        "BFF_UPSTREAM_READ_TIMEOUT",
        "Seconds to wait for the Kubernetes API to answer.",
        default=15.0,
        parse=_positive_float,
        metavar="SECONDS",
    )
    upstream_pool_size: int = setting(
        "--upstream-pool-size",
        "BFF_UPSTREAM_POOL_SIZE",
        "Most connections open to the Kubernetes API at once.",
        default=32,
        parse=parse_positive_int,
        metavar="N",
    )
    conflict_retries: int = setting(
        "--conflict-retries",
        "BFF_CONFLICT_RETRIES",
        "Attempts at the label patch when the object keeps changing (409 beyond).",
        default=5,
        parse=parse_positive_int,
        metavar="N",
    )
    token_review_ttl: float = setting(
        "--token-review-ttl",
        "BFF_TOKEN_REVIEW_TTL",
        "Impersonate mode: seconds a successful TokenReview is reused (at most 10).",
        default=10.0,
        parse=parse_non_negative_float,
        metavar="SECONDS",
    )
    read_cache: bool = setting(
        "--read-cache",
        "BFF_READ_CACHE",
        "on: serve GET and LIST of --namespace from a watch-backed cache (each caller "
        "authorised by an access review, allows reused for at most 10 s) and check the write "
        "guards against it; off: every read goes upstream with the caller's credentials.",
        default=True,
        parse=parse_on_off,
        metavar="{on,off}",
        shown="on (off with --rancher-url)",
    )
    max_streams: int = setting(
        "--max-streams",
        "BFF_MAX_STREAMS",
        "Most live-update streams (the page's events) open at once; more get 429. They "
        "are counted apart from --max-connections, so page readers never take the "
        "connections of API callers (capped at half of what the open-file limit leaves).",
        default=64,
        parse=parse_positive_int,
        metavar="N",
    )
    max_streams_per_caller: int = setting(
        "--max-streams-per-caller",
        "BFF_MAX_STREAMS_PER_CALLER",
        "Most live-update streams one credential (token or session) may hold open; more get 429.",
        default=4,
        parse=parse_positive_int,
        metavar="N",
    )
    stream_write_timeout: float = setting(
        "--stream-write-timeout",
        "BFF_STREAM_WRITE_TIMEOUT",
        "Seconds a live-update stream may wait for a client that stops reading before "
        "it is dropped (the page reconnects and gets a new snapshot).",
        default=10.0,
        parse=_positive_float,
        metavar="SECONDS",
    )
    stream_recheck_interval: float = setting(
        "--stream-recheck-interval",
        "BFF_STREAM_RECHECK_INTERVAL",
        "Seconds between access checks of an open live-update stream; a caller who "
        "lost access is cut off within twice this (at most 10 s of which a reused allow).",
        default=5.0,
        parse=_positive_float,
        metavar="SECONDS",
    )
    shutdown_timeout: float = setting(
        "--shutdown-timeout",
        "BFF_SHUTDOWN_TIMEOUT",
        "Seconds in-flight requests get to finish after SIGTERM.",
        default=20.0,
        parse=parse_non_negative_float,
        metavar="SECONDS",
    )
    keepalive_timeout: float = setting(
        "--keepalive-timeout",
        "BFF_KEEPALIVE_TIMEOUT",
        "Seconds an idle keep-alive connection stays open after a response.",
        default=75.0,
        parse=_positive_float,
        metavar="SECONDS",
    )
    header_timeout: float = setting(
        "--header-timeout",
        "BFF_HEADER_TIMEOUT",
        "Seconds a client has to send a request's headers, from their first byte; "
        "slower connections are closed.",
        default=10.0,
        parse=_positive_float,
        metavar="SECONDS",
    )
    idle_timeout: float = setting(
        "--idle-timeout",
        "BFF_IDLE_TIMEOUT",
        "Seconds a new connection may send nothing, and a request body may stall, "
        "before the connection is closed (a stalled body gets 408).",
        default=15.0,
        parse=_positive_float,
        metavar="SECONDS",
    )
    max_connections: int = setting(
        "--max-connections",
        "BFF_MAX_CONNECTIONS",
        "Most client connections open at once; beyond it the longest-idle ones are "
        "closed. 0: derived from the open-file limit.",
        default=0,
        parse=_non_negative_int,
        metavar="N",
    )
    log_format: LogFormat = setting(
        "--log-format",
        "BFF_LOG_FORMAT",
        "Log format.",
        default=LogFormat.TEXT,
        parse=_choice(LogFormat),
        commands=_LOGGING,
        metavar="{text,json}",
    )
    log_level: str = setting(
        "--log-level",
        "BFF_LOG_LEVEL",
        "Log level: DEBUG, INFO, WARNING, ERROR.",
        default="INFO",
        parse=_log_level,
        commands=_LOGGING,
        metavar="LEVEL",
    )
    tls_cert: str | None = setting(
        "--tls-cert",
        "BFF_TLS_CERT",
        "Serve HTTPS with this certificate (PEM); needs --tls-key.",
        default=None,
        parse=parse_file,
        commands=_CLUSTER,
        metavar="FILE",
    )
    tls_key: str | None = setting(
        "--tls-key",
        "BFF_TLS_KEY",
        "Private key for --tls-cert (PEM).",
        default=None,
        parse=parse_file,
        commands=_CLUSTER,
        metavar="FILE",
    )
    metrics_port: int | None = setting(
        "--metrics-port",
        "BFF_METRICS_PORT",
        "Serve /metrics over plain HTTP on this port (on --host) instead of the API port, "
        "which then answers 404 for it: Prometheus scrapes it without passing the API "
        "port's network policy or TLS.",
        default=None,
        parse=parse_port,
        commands=_CLUSTER,
        metavar="PORT",
        shown="none (/metrics on the API port)",
    )

    # --- Rancher's cluster proxy as the upstream ---
    rancher_url: str | None = setting(
        "--rancher-url",
        "BFF_RANCHER_URL",
        "Rancher mode: send callers' requests to Rancher's cluster proxy, "
        "URL/k8s/clusters/<cluster>, with the caller's own Rancher token (bearer or the "
        "R_SESS cookie); Rancher authenticates it and acts as that user. https only. "
        "Readiness still uses the BFF's own kubeconfig or service account. Not with "
        "--auth-mode impersonate or --read-cache on (the read cache is off in this mode).",
        default=None,
        parse=_rancher_url,
        commands=_CLUSTER,
        metavar="URL",
        shown="none (callers' requests go to the kubeconfig's cluster)",
    )
    rancher_ca_bundle: str | None = setting(
        "--rancher-ca-bundle",
        "BFF_RANCHER_CA_BUNDLE",
        "CA certificates (PEM) that TLS to --rancher-url is verified against; without it, "
        "the system's trusted CAs. Verification is never turned off.",
        default=None,
        parse=_ca_bundle,
        commands=_CLUSTER,
        metavar="FILE",
        shown="the system's CAs",
    )
    clusters: tuple[str, ...] = setting(
        "--cluster",
        "BFF_CLUSTERS",
        "A cluster id served under /k8s/clusters/<id>/...; repeat the flag for more (the "
        "variable takes a comma-separated list). Any other id is a 404 before any upstream "
        "call. In Rancher mode each id is reached at --rancher-url/k8s/clusters/<id>.",
        default=(),
        parse=_cluster_ids,
        commands=_CLUSTER,
        metavar="ID",
        repeatable=True,
        shown="any id without --rancher-url; only --default-cluster with it",
    )
    default_cluster: str = setting(
        "--default-cluster",
        "BFF_DEFAULT_CLUSTER",
        "Rancher mode: the cluster for paths without /k8s/clusters/<id> (local is the "
        "Harvester cluster of Harvester's embedded Rancher); one of --cluster.",
        default="local",
        parse=_cluster_id,
        commands=_CLUSTER,
        metavar="ID",
    )

    # --- the cluster guard (admission webhook) ---
    webhook_port: int | None = setting(
        "--webhook-port",
        "BFF_WEBHOOK_PORT",
        "Serve the admission webhook (the cluster guard) over HTTPS on this port, apart "
        "from the API port and without user authentication. The sandbox makes its "
        "certificate at start and has the emulator consult it (0: any free port).",
        default=None,
        parse=parse_port,
        metavar="PORT",
        shown="none (off)",
    )
    webhook_tls_cert: str | None = setting(
        "--webhook-tls-cert",
        "BFF_WEBHOOK_TLS_CERT",
        "The webhook's serving certificate (PEM), reloaded when the file changes.",
        default=None,
        parse=parse_file,
        commands=_CLUSTER,
        metavar="FILE",
    )
    webhook_tls_key: str | None = setting(
        "--webhook-tls-key",
        "BFF_WEBHOOK_TLS_KEY",
        "Private key for --webhook-tls-cert (PEM), reloaded with it.",
        default=None,
        parse=parse_file,
        commands=_CLUSTER,
        metavar="FILE",
    )
    webhook_max_connections: int = setting(
        "--webhook-max-connections",
        "BFF_WEBHOOK_MAX_CONNECTIONS",
        "Most connections open at once on the webhook port, TLS handshakes included; "
        "beyond it the oldest handshakes, then the longest-idle connections, are closed. "
        "Counted apart from --max-connections so neither port can take the other's "
        "file descriptors. 0: a quarter of what the open-file limit allows.",
        default=0,
        parse=_non_negative_int,
        commands=_CLUSTER,
        metavar="N",
    )
    tls_handshake_timeout: float = setting(
        "--tls-handshake-timeout",
        "BFF_TLS_HANDSHAKE_TIMEOUT",
        "Seconds a new TLS connection (the webhook's, and the API's with --tls-cert) has "
        "to finish its handshake before it is closed.",
        default=3.0,
        parse=_positive_float,
        commands=_CLUSTER,
        metavar="SECONDS",
    )
    trusted_writers: tuple[str, ...] = setting(
        "--trusted-writer",
        "BFF_TRUSTED_WRITER",
        "A user (NAME or user:NAME) or group (group:NAME) whose writes the webhook passes "
        "untouched on every guarded resource, besides each resource's owners; repeat the "
        "flag for more (the variable takes a comma-separated list).",
        default=(),
        parse=_trusted_writers,
        metavar="WRITER",
        repeatable=True,
        shown="none (only each resource's owners)",
    )
    guard_resources: tuple[str, ...] = setting(
        "--guard-resource",
        "BFF_GUARD_RESOURCES",
        "Change the webhook's guard table: RESOURCE.GROUP/VERSION;owner=USER[;owner=USER]"
        "[;keep=status|finalizers|ownerReferences][;mode=repair|deny] adds a resource or "
        "replaces its row, -RESOURCE.GROUP removes one, -* removes all (write "
        "--guard-resource=-RESOURCE.GROUP); repeat the flag "
        "(the variable takes a comma-separated list), applied in order to the default "
        "table (" + GuardTable().describe() + "; owners in docs/guard.md).",
        default=(),
        parse=_guard_resources,
        metavar="ENTRY",
        repeatable=True,
        shown="the default table",
    )
    webhook_cert_source: CertSource = setting(
        "--webhook-cert-source",
        "BFF_WEBHOOK_CERT_SOURCE",
        "Where the webhook's certificate comes from. files: --webhook-tls-cert and "
        "--webhook-tls-key (cert-manager or another issuer writes them). self: the BFF "
        "makes a CA and a serving certificate, keeps them in --webhook-cert-secret, "
        "renews the certificate before it expires and keeps the caBundle of "
        "--webhook-configuration equal to the CA.",
        default=CertSource.FILES,
        parse=_choice(CertSource),
        commands=_CLUSTER,
        metavar="{files,self}",
    )
    webhook_cert_secret: str | None = setting(
        "--webhook-cert-secret",
        "BFF_WEBHOOK_CERT_SECRET",
        "Self mode: the kubernetes.io/tls Secret holding the webhook's serving pair "
        "(tls.crt, tls.key) and its CA (ca.crt, and ca.key to renew the pair); created "
        "when missing, shared by replicas.",
        default=None,
        parse=_object_ref,
        commands=_CLUSTER,
        metavar="NAMESPACE/NAME",
    )
    webhook_service: str | None = setting(
        "--webhook-service",
        "BFF_WEBHOOK_SERVICE",
        "Self mode: the Service the API server calls the webhook through; the serving "
        "certificate names NAME, NAME.NAMESPACE, NAME.NAMESPACE.svc and "
        "NAME.NAMESPACE.svc.cluster.local.",
        default=None,
        parse=_object_ref,
        commands=_CLUSTER,
        metavar="NAMESPACE/NAME",
    )
    webhook_configuration: str | None = setting(
        "--webhook-configuration",
        "BFF_WEBHOOK_CONFIGURATION",
        "Self mode: the MutatingWebhookConfiguration whose every webhook's "
        "clientConfig.caBundle the BFF keeps equal to the Secret's ca.crt.",
        default=None,
        parse=_subdomain,
        commands=_CLUSTER,
        metavar="NAME",
    )
    webhook_cert_check_interval: float = setting(
        "--webhook-cert-check-interval",
        "BFF_WEBHOOK_CERT_CHECK_INTERVAL",
        "Self mode: seconds between two looks at the Secret (renewal, replacement by "
        "another replica) and at the configuration's caBundle (repaired when it drifted).",
        default=60.0,
        parse=_positive_float,
        commands=_CLUSTER,
        metavar="SECONDS",
    )


#: A settings class: :class:`Settings` or one that extends it.
Kind = TypeVar("Kind", bound=Settings)


def options(command: Command | None = None, kind: type[Settings] = Settings) -> dict[str, Option]:
    """The table of ``kind`` (field name -> row), or the rows of one command."""
    rows = {f.name: f.metadata["option"] for f in fields(kind)}
    return {k: v for k, v in rows.items() if command is None or command in v.commands}


def add_arguments(
    parser: argparse.ArgumentParser, command: Command, kind: type[Settings] = Settings
) -> None:
    """Add the command's flags to ``parser``; each help names its variable and default."""
    defaults = kind()
    for name, opt in options(command, kind).items():
        default = getattr(defaults, name)
        shown = ",".join(default) if isinstance(default, tuple) else default
        shown = "none" if shown in ("", None) else shown
        shown = opt.shown or shown
        if opt.switch:
            shown = f"{opt.env}=1 turns it on"
            parser.add_argument(opt.flag, dest=name, action="store_const", const="1",
                                default=None, help=f"{opt.help} [env: {shown}]")  # fmt: skip
            continue
        parser.add_argument(
            opt.flag,
            dest=name,
            metavar=opt.metavar,
            default=None,
            action="append" if opt.repeatable else "store",
            help=f"{opt.help} [env: {opt.env}; default: {shown}]",
        )


@overload
def from_sources(
    args: argparse.Namespace | Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
    *,
    command: Command = Command.SERVE,
    kind: type[Kind],
    **overrides: Any,
) -> Kind: ...


@overload
def from_sources(
    args: argparse.Namespace | Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
    *,
    command: Command = Command.SERVE,
    **overrides: Any,
) -> Settings: ...


def from_sources(
    args: argparse.Namespace | Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
    *,
    command: Command = Command.SERVE,
    kind: type[Settings] = Settings,
    **overrides: Any,
) -> Settings:
    """Build settings: flag, else environment variable, else default. Raise SettingsError.

    Only the command's own rows of ``kind`` are read, so a variable meant for
    another command never stops this one.
    """
    environ = os.environ if environ is None else environ
    given = vars(args) if isinstance(args, argparse.Namespace) else dict(args)
    values: dict[str, Any] = {}
    for name, opt in options(command, kind).items():
        raw = given.get(name)
        if raw is None:
            raw = environ.get(opt.env)
        for env in opt.fallback_env:
            if raw is None:
                raw = environ.get(env) or None
        if raw is None:
            continue
        if opt.repeatable and isinstance(raw, list):
            raw = ",".join(raw)
        try:
            values[name] = opt.parse(raw) if isinstance(raw, str) else raw
        except ValueError as exc:
            raise SettingsError(f"invalid {opt.flag} / {opt.env} value {raw!r}: {exc}") from None
    values.update(overrides)
    settings = kind(**values)
    if bool(settings.tls_cert) != bool(settings.tls_key):
        raise SettingsError("--tls-cert and --tls-key (BFF_TLS_CERT, BFF_TLS_KEY) go together")
    if bool(settings.webhook_tls_cert) != bool(settings.webhook_tls_key):
        raise SettingsError(
            "--webhook-tls-cert and --webhook-tls-key (BFF_WEBHOOK_TLS_CERT, "
            "BFF_WEBHOOK_TLS_KEY) go together"
        )
    if settings.webhook_tls_cert and settings.webhook_tls_key:
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
                settings.webhook_tls_cert, settings.webhook_tls_key
            )
        except (OSError, ssl.SSLError) as exc:
            raise SettingsError(
                "--webhook-tls-cert / --webhook-tls-key (BFF_WEBHOOK_TLS_CERT, BFF_WEBHOOK_TLS_KEY)"
                f": not a PEM certificate and its key ({exc.__class__.__name__})"
            ) from None
    if settings.webhook_port is not None and settings.webhook_port == settings.port != 0:
        raise SettingsError(
            "--webhook-port / BFF_WEBHOOK_PORT must differ from --port: the webhook never "
            "shares the API's port"
        )
    if settings.token_review_ttl > 10:
        raise SettingsError("invalid --token-review-ttl / BFF_TOKEN_REVIEW_TTL: at most 10 seconds")
    _check_rancher(
        settings, given_default="default_cluster" in values, given_cache="read_cache" in values
    )
    _check_cert_source(settings, "webhook_cert_check_interval" in values)
    if (
        settings.metrics_port is not None
        and settings.metrics_port in (settings.port, settings.webhook_port)
        and settings.metrics_port != 0
    ):
        raise SettingsError(
            "--metrics-port / BFF_METRICS_PORT must differ from --port and --webhook-port"
        )
    if settings.rancher_url is not None and "read_cache" not in values:
        settings = replace(settings, read_cache=False)  # on by default, but not here
    return settings


def _check_rancher(settings: Settings, *, given_default: bool, given_cache: bool) -> None:
    """The Rancher mode's rules across settings (one line each)."""
    if settings.rancher_url is None:
        if settings.rancher_ca_bundle:
            raise SettingsError(
                "--rancher-ca-bundle / BFF_RANCHER_CA_BUNDLE needs --rancher-url / BFF_RANCHER_URL"
            )
        if given_default:
            raise SettingsError(
                "--default-cluster / BFF_DEFAULT_CLUSTER needs --rancher-url / BFF_RANCHER_URL: "
                "without Rancher every path reaches the kubeconfig's one cluster"
            )
        return
    if settings.clusters and settings.default_cluster not in settings.clusters:
        raise SettingsError(
            f"--default-cluster / BFF_DEFAULT_CLUSTER {settings.default_cluster!r} is not one of "
            f"--cluster / BFF_CLUSTERS ({', '.join(settings.clusters)})"
        )
    if settings.auth_mode is AuthMode.IMPERSONATE:
        raise SettingsError(
            "--auth-mode impersonate does not go with --rancher-url / BFF_RANCHER_URL: Rancher "
            "checks the caller's token and impersonates the user itself"
        )
    if settings.read_cache and given_cache:
        raise SettingsError(
            "--read-cache on does not go with --rancher-url / BFF_RANCHER_URL: the cache watches "
            "the kubeconfig's cluster as the BFF, not the clusters Rancher serves to each caller"
        )


def served_clusters(settings: Settings) -> frozenset[str] | None:
    """The cluster ids ``/k8s/clusters/<id>`` may name; None: any (no Rancher, no --cluster)."""
    if settings.clusters:
        return frozenset(settings.clusters)
    if settings.rancher_url is not None:
        return frozenset({settings.default_cluster})
    return None
