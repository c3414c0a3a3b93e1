"""Which proxy, if any, carries requests to the API server: decided once, at startup.

The HTTP client runs with ``trust_env=False``: left to itself, aiohttp would
scan the whole environment (``getproxies_environment``) and read ``~/.netrc``
on *every* request, and in a pod the environment holds every Service's
variables. Proxy support is kept by resolving it here, once, for the one
upstream host:

* a kubeconfig ``proxy-url`` wins (as with kubectl);
* otherwise ``HTTPS_PROXY`` for an ``https://`` server, ``HTTP_PROXY`` for an
  ``http://`` one (either case; the lower-case name wins when both are set);
* ``NO_PROXY`` bypasses it: ``*``, a host name (which also matches its
  sub-domains; a leading dot is allowed), an IP address, or a CIDR range, each
  optionally with ``:port``.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit


def _env(environ: Mapping[str, str], name: str) -> str:
    return (environ.get(name.lower()) or environ.get(name.upper()) or "").strip()


def bypassed(host: str, port: int | None, no_proxy: str) -> bool:
    """Whether ``NO_PROXY`` exempts ``host[:port]``."""
    host = host.lower().strip("[]").rstrip(".")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for raw in no_proxy.split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        entry_port: int | None = None
        if entry.startswith("["):  # [v6]:port
            inside, _, rest = entry[1:].partition("]")
            entry = inside
            if rest.startswith(":") and rest[1:].isdigit():
                entry_port = int(rest[1:])
        elif entry.count(":") == 1:
            name, _, maybe_port = entry.partition(":")
            if maybe_port.isdigit():
                entry, entry_port = name, int(maybe_port)
        if entry_port is not None and entry_port != port:
            continue
        if address is not None:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        entry = entry.lstrip(".").rstrip(".")
        if entry and (host == entry or host.endswith("." + entry)):
            return True
    return False


def for_server(server: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The proxy URL for requests to ``server``, from the environment; None for a direct one."""
    environ = os.environ if environ is None else environ
    parts = urlsplit(server)
    scheme = parts.scheme.lower()
    proxy = _env(environ, "https_proxy" if scheme == "https" else "http_proxy")
    if not proxy or not parts.hostname:
        return None
    port = parts.port or (443 if scheme == "https" else 80)
    if bypassed(parts.hostname, port, _env(environ, "no_proxy")):
        return None
    if "://" not in proxy:
        proxy = "http://" + proxy
    return proxy


def redacted(proxy: str) -> str:
    """A proxy URL fit for a log line: any user name and password removed."""
    parts = urlsplit(proxy)
    netloc = parts.hostname or ""
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
