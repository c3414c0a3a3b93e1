"""Configuration: one frozen dataclass, from flags and environment variables.

Every setting has a flag and an environment variable (flag wins). The table
below is the single source for both, and for ``--help``; a bad value fails at
startup with one line that names the flag and the variable.
"""

from __future__ import annotations

import argparse
import enum
import ipaddress
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import urlsplit

from bff.names import is_dns1123_label


class AuthMode(enum.StrEnum):
    PASSTHROUGH = "passthrough"
    IMPERSONATE = "impersonate"


class LogFormat(enum.StrEnum):
    TEXT = "text"
    JSON = "json"


class SettingsError(ValueError):
    """A configuration value is unusable; the message is one line for the operator."""


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    base_path: str = ""
    namespace: str = "harvester-system"
    auth_mode: AuthMode = AuthMode.PASSTHROUGH
    kubeconfig: str | None = None
    context: str | None = None
    allowed_origins: tuple[str, ...] = ()
    trusted_proxies: tuple[str, ...] = ()
    max_body_bytes: int = 64 * 1024
    upstream_connect_timeout: float = 5.0
    upstream_read_timeout: float = 15.0
    upstream_pool_size: int = 32
    conflict_retries: int = 5
    token_review_ttl: float = 10.0
    shutdown_timeout: float = 20.0
    log_format: LogFormat = LogFormat.TEXT
    log_level: str = "INFO"
    tls_cert: str | None = None
    tls_key: str | None = None


@dataclass(frozen=True)
class Option:
    name: str  # the Settings field
    flag: str
    env: str
    help: str
    parse: Callable[[str], Any] = str
    metavar: str | None = None


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError("must be a positive whole number")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise ValueError("must be a port number from 0 to 65535")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError("must be a positive number of seconds")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise ValueError("must be zero or more seconds")
    return value


def _base_path(text: str) -> str:
    text = text.strip()
    if text in ("", "/"):
        return ""
    if not re.fullmatch(r"(/[A-Za-z0-9._~-]+)+/?", text):
        raise ValueError("must look like /some/prefix (letters, digits, '.', '_', '~', '-')")
    return text.rstrip("/")


def _namespace(text: str) -> str:
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


def _file(text: str) -> str:
    if not os.path.isfile(text):
        raise ValueError(f"no such file: {text}")
    return text


OPTIONS: tuple[Option, ...] = (
    Option("host", "--host", "BFF_HOST", "Address to listen on.", metavar="ADDR"),
    Option("port", "--port", "BFF_PORT", "Port to listen on.", _port),
    Option(
        "base_path",
        "--base-path",
        "BFF_BASE_PATH",
        "Mount every route under this prefix, e.g. /harvester-upgrade-bff.",
        _base_path,
        "PATH",
    ),
    Option(
        "namespace",
        "--namespace",
        "BFF_NAMESPACE",
        "Namespace whose Upgrades the collection routes list.",
        _namespace,
    ),
    Option(
        "auth_mode",
        "--auth-mode",
        "BFF_AUTH_MODE",
        "passthrough: send the caller's token upstream, so the API server authenticates "
        "and authorises it. impersonate: check the token with a TokenReview, then act as "
        "the BFF with Impersonate-* headers for that user.",
        AuthMode,
        "{passthrough,impersonate}",
    ),
    Option(
        "kubeconfig",
        "--kubeconfig",
        "BFF_KUBECONFIG",
        "Kubeconfig file for the cluster (KUBECONFIG is also read). Without one, the "
        "in-cluster service account is used.",
        _file,
        "FILE",
    ),
    Option("context", "--context", "BFF_CONTEXT", "Kubeconfig context to use.", metavar="NAME"),
    Option(
        "allowed_origins",
        "--allowed-origin",
        "BFF_ALLOWED_ORIGIN",
        "Comma-separated browser origins allowed besides the BFF's own host "
        "(e.g. https://rancher.example.com). '*' is refused.",
        _origins,
        "ORIGINS",
    ),
    Option(
        "trusted_proxies",
        "--trusted-proxies",
        "BFF_TRUSTED_PROXIES",
        "Comma-separated CIDRs whose X-Forwarded-For is believed, for logs only.",
        _networks,
        "CIDRS",
    ),
    Option(
        "max_body_bytes",
        "--max-body-bytes",
        "BFF_MAX_BODY_BYTES",
        "Largest request body accepted (413 beyond).",
        _positive_int,
        "BYTES",
    ),
    Option(
        "upstream_connect_timeout",
        "--upstream-connect-timeout",
        "BFF_UPSTREAM_CONNECT_TIMEOUT",
        "Seconds to wait for a connection to the Kubernetes API.",
        _positive_float,
        "SECONDS",
    ),
    Option(
        "upstream_read_timeout",
        "--upstream-read-timeout",
        "BFF_UPSTREAM_READ_TIMEOUT",
        "Seconds to wait for the Kubernetes API to answer.",
        _positive_float,
        "SECONDS",
    ),
    Option(
        "upstream_pool_size",
        "--upstream-pool-size",
        "BFF_UPSTREAM_POOL_SIZE",
        "Most connections open to the Kubernetes API at once.",
        _positive_int,
        "N",
    ),
    Option(
        "conflict_retries",
        "--conflict-retries",
        "BFF_CONFLICT_RETRIES",
        "Attempts at the label patch when the object keeps changing (409 beyond).",
        _positive_int,
        "N",
    ),
    Option(
        "token_review_ttl",
        "--token-review-ttl",
        "BFF_TOKEN_REVIEW_TTL",
        "Impersonate mode: seconds a successful TokenReview is reused (at most 10).",
        _non_negative_float,
        "SECONDS",
    ),
    Option(
        "shutdown_timeout",
        "--shutdown-timeout",
        "BFF_SHUTDOWN_TIMEOUT",
        "Seconds in-flight requests get to finish after SIGTERM.",
        _non_negative_float,
        "SECONDS",
    ),
    Option("log_format", "--log-format", "BFF_LOG_FORMAT", "Log format.", LogFormat, "{text,json}"),
    Option(
        "log_level",
        "--log-level",
        "BFF_LOG_LEVEL",
        "Log level: DEBUG, INFO, WARNING, ERROR.",
        _log_level,
        "LEVEL",
    ),
    Option(
        "tls_cert",
        "--tls-cert",
        "BFF_TLS_CERT",
        "Serve HTTPS with this certificate (PEM); needs --tls-key.",
        _file,
        "FILE",
    ),
    Option(
        "tls_key", "--tls-key", "BFF_TLS_KEY", "Private key for --tls-cert (PEM).", _file, "FILE"
    ),
)


def add_arguments(parser: argparse.ArgumentParser, *, skip: Sequence[str] = ()) -> None:
    """Add every option to ``parser``; the help names each environment variable and default."""
    defaults = Settings()
    for opt in OPTIONS:
        if opt.name in skip:
            continue
        default = getattr(defaults, opt.name)
        shown = ",".join(default) if isinstance(default, tuple) else default
        shown = "none" if shown in ("", None) else shown
        parser.add_argument(
            opt.flag,
            dest=opt.name,
            metavar=opt.metavar,
            default=None,
            help=f"{opt.help} [env: {opt.env}; default: {shown}]",
        )


def from_sources(
    args: argparse.Namespace | Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build settings: flag, else environment variable, else default. Raise SettingsError."""
    environ = os.environ if environ is None else environ
    given = vars(args) if isinstance(args, argparse.Namespace) else dict(args)
    values: dict[str, Any] = {}
    for opt in OPTIONS:
        raw = given.get(opt.name)
        if raw is None:
            raw = environ.get(opt.env)
        if raw is None and opt.name == "kubeconfig":
            raw = environ.get("KUBECONFIG") or None
        if raw is None:
            continue
        try:
            values[opt.name] = opt.parse(raw) if isinstance(raw, str) else raw
        except ValueError as exc:
            raise SettingsError(f"invalid {opt.flag} / {opt.env} value {raw!r}: {exc}") from None
    values.update(overrides)
    known = {f.name for f in fields(Settings)}
    settings = Settings(**{k: v for k, v in values.items() if k in known})
    if bool(settings.tls_cert) != bool(settings.tls_key):
        raise SettingsError("--tls-cert and --tls-key (BFF_TLS_CERT, BFF_TLS_KEY) go together")
    if settings.token_review_ttl > 10:
        raise SettingsError("invalid --token-review-ttl / BFF_TOKEN_REVIEW_TTL: at most 10 seconds")
    return settings
