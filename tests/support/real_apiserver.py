"""A real kube-apiserver serving the Upgrade CRD, for tests: the emulator's referee.

It runs upstream ``kube-apiserver`` (``k8s.io/kubernetes`` at
:data:`KUBERNETES_VERSION`, built once with Go and cached per version under the
user cache directory) on a private etcd, both on free loopback ports, with a
throwaway PKI. At start it creates the ``harvester-system`` namespace, the
``upgrades.harvesterhci.io`` CRD, the service accounts and RBAC objects below,
and seeds the three fixture Upgrades; :meth:`RealApiServer.reset` puts the
seeds back between tests.

Who is who:

* the harness itself uses a client certificate in ``system:masters``
  (``harness-admin``);
* bearer tokens come from ``--token-auth-file`` (:data:`IDENTITIES`, the same
  tokens and users as the sandbox emulator);
* what they may do comes from real RBAC objects applied through the API, never
  from a table: :func:`harness_rbac` for the viewer and Harvester's upgrade
  controller, and the RBAC objects the chart renders
  (``deploy/manifests/none-impersonate.yaml``) for the BFF's service account,
  so every test that runs the BFF here runs it with exactly what the chart
  grants;
* service-account tokens work too (``--service-account-*`` flags):
  :meth:`RealApiServer.create_token` is a TokenRequest.

The admission chain is kube-apiserver's default, MutatingAdmissionWebhook
included: :meth:`RealApiServer.apply` applies a MutatingWebhookConfiguration,
:meth:`RealApiServer.issue_certificate` makes a serving certificate for a
loopback HTTPS hook and :attr:`RealApiServer.ca_bundle` is its ``caBundle``.

Everything here is synchronous (subprocesses plus ``urllib``) so it can run
from a session fixture regardless of the test's event loop.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

import yaml

from bff import captured
from tests.support import gotool
from tests.support.gotool import find_go

KUBERNETES_VERSION = "v1.36.3"
MODULE = "k8s.io/kubernetes"
PACKAGE = "k8s.io/kubernetes/cmd/kube-apiserver"
BINARY_NAME = "kube-apiserver"
# Where Go's own installer puts it, for machines that have not put it on PATH.

NAMESPACE = "harvester-system"
GROUP = "harvesterhci.io"
VERSION = "v1beta1"
PLURAL = "upgrades"
CRD_NAME = f"{PLURAL}.{GROUP}"

ADMIN_CN = "harness-admin"
MASTERS = "system:masters"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(str(captured.files()))  # the CRD and the seed Upgrades, as packaged
DEPLOY = REPO_ROOT / "deploy"
# The manifest whose RBAC the BFF's service account gets: the chart rendered
# with ui none and impersonate (the read cache's Role plus impersonation), the
# most the BFF is granted for callers' requests (tests/test_manifests.py holds
# it equal to the chart).
DEPLOY_RBAC_FROM = DEPLOY / "manifests" / "none-impersonate.yaml"

# Bounded waits, in seconds.
ETCD_TIMEOUT = 30.0
READY_TIMEOUT = 90.0
CRD_TIMEOUT = 30.0
RBAC_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
START_ATTEMPTS = 3

_KEPT_METADATA = ("name", "generateName", "namespace", "labels", "annotations", "finalizers")
RBAC_KINDS = ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")


class RealApiServerUnavailable(gotool.ToolUnavailable):
    """A prerequisite (Go, etcd) is missing: skip, don't fail."""


class RealApiServerError(RuntimeError):
    """The server was available but did not start or misbehaved."""


# --------------------------------------------------------------------------
# Identities (static tokens). Same tokens and users as bff.sandbox.users.


def service_account_user(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


BFF_SERVICE_ACCOUNT = ("harvester-system", "harvester-upgrade-bff")
# Harvester's chart runs its controllers as the ServiceAccount "harvester" in the
# release namespace (deploy/charts/harvester/templates/serviceaccount.yaml and the
# webhook's HARVESTER_CONTROLLER_USER_NAME default in deployment.yaml).
CONTROLLER_SERVICE_ACCOUNT = ("harvester-system", "harvester")


@dataclass(frozen=True)
class Identity:
    token: str
    username: str
    uid: str
    groups: tuple[str, ...]


def _sa_identity(token: str, account: tuple[str, str], uid: str) -> Identity:
    namespace, name = account
    return Identity(
        token,
        service_account_user(namespace, name),
        uid,
        ("system:serviceaccounts", f"system:serviceaccounts:{namespace}"),
    )


IDENTITIES: tuple[Identity, ...] = (
    Identity("sandbox-admin", "sandbox-admin", "", (MASTERS,)),
    Identity("sandbox-viewer", "sandbox-viewer", "", ()),
    _sa_identity("sandbox-bff", BFF_SERVICE_ACCOUNT, "5b0c4a8e-2a76-4d3b-9a62-6f1f3c1a0b01"),
    _sa_identity(
        "sandbox-controller", CONTROLLER_SERVICE_ACCOUNT, "8d1e3f7a-4b2c-4e9d-8f60-2c7b9e5d1a02"
    ),
    Identity("sandbox-nobody", "sandbox-nobody", "", ()),
)
TOKENS: dict[str, Identity] = {i.token: i for i in IDENTITIES}


def token_file_text(identities: Iterable[Identity] = IDENTITIES) -> str:
    """``--token-auth-file`` CSV: token,user,uid,"group1,group2"."""
    lines = []
    for i in identities:
        line = f"{i.token},{i.username},{i.uid}"
        if i.groups:
            line += ',"' + ",".join(i.groups) + '"'
        lines.append(line)
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# RBAC objects


def _meta(name: str, namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {"app.kubernetes.io/part-of": "test-harness"}}
    if namespace:
        meta["namespace"] = namespace
    return meta


def harness_rbac() -> list[dict[str, Any]]:
    """The viewer's and the upgrade controller's rights, as real RBAC objects."""
    ctl_ns, ctl_name = CONTROLLER_SERVICE_ACCOUNT
    rbac = "rbac.authorization.k8s.io/v1"
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(ctl_name, ctl_ns)},
        {
            "apiVersion": rbac,
            "kind": "ClusterRole",
            "metadata": _meta("harness:upgrade-viewer"),
            "rules": [{"apiGroups": [GROUP], "resources": [PLURAL],
                       "verbs": ["get", "list", "watch"]}],
        },
        {
            "apiVersion": rbac,
            "kind": "ClusterRoleBinding",
            "metadata": _meta("harness:upgrade-viewer"),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": "harness:upgrade-viewer"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                          "name": "sandbox-viewer"}],
        },
        {
            # What Harvester's controller does to Upgrades: reads, whole-object
            # updates (status included) and patches.
            "apiVersion": rbac,
            "kind": "ClusterRole",
            "metadata": _meta("harness:harvester-upgrade-controller"),
            "rules": [{"apiGroups": [GROUP], "resources": [PLURAL],
                       "verbs": ["get", "list", "watch", "update", "patch"]}],
        },
        {
            "apiVersion": rbac,
            "kind": "ClusterRoleBinding",
            "metadata": _meta("harness:harvester-upgrade-controller"),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": "harness:harvester-upgrade-controller"},
            "subjects": [{"kind": "ServiceAccount", "name": ctl_name, "namespace": ctl_ns}],
        },
    ]  # fmt: skip


def manifest_objects(path: Path) -> list[dict[str, Any]]:
    """Every object of a rendered manifest (deploy/manifests/<combination>.yaml)."""
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def deploy_rbac(path: Path = DEPLOY_RBAC_FROM) -> list[dict[str, Any]]:
    """The chart's ServiceAccount and RBAC objects, in an order the API accepts."""
    objects = manifest_objects(path)
    order = ("ServiceAccount", *RBAC_KINDS)
    return sorted(
        (o for o in objects if o.get("kind") in order), key=lambda o: order.index(o["kind"])
    )


# --------------------------------------------------------------------------
# Building kube-apiserver


def cache_dir(version: str = KUBERNETES_VERSION) -> Path:
    return gotool.cache_dir(BINARY_NAME, version)


def wrapper_go_mod(kubernetes_go_mod: str, version: str) -> str:
    """A go.mod that builds ``k8s.io/kubernetes@version`` from outside its repository.

    k8s.io/kubernetes replaces each of its staging modules (``k8s.io/api``,
    ``k8s.io/apiserver``, ...) with ``./staging/src/...``, which only resolves
    inside its own checkout, so ``go install ...@version`` refuses it. The
    wrapper requires it and replaces every staging module with its published
    ``v0.<minor>.<patch>`` release instead. The list comes from that go.mod.
    """
    staging = re.findall(
        r"^\s*(?:replace\s+)?(k8s\.io/\S+)\s+=>\s+\./staging/", kubernetes_go_mod, re.M
    )
    if not staging:
        raise RealApiServerError(f"{MODULE}@{version}'s go.mod has no ./staging replaces")
    go_line = re.search(r"^go\s+(\S+)", kubernetes_go_mod, re.M)
    if not version.startswith("v1."):
        raise RealApiServerError(f"unexpected Kubernetes version {version!r}")
    staging_version = "v0." + version.removeprefix("v1.")
    lines = [
        "module harvester-upgrade-bff/kube-apiserver-build",
        "",
        f"go {go_line.group(1) if go_line else '1.26'}",
        "",
        f"require {MODULE} {version}",
        "",
    ]
    lines += [f"replace {m} => {m} {staging_version}" for m in sorted(set(staging))]
    return "\n".join(lines) + "\n"


def _ldflags(version: str) -> str:
    major, minor = version.removeprefix("v").split(".")[:2]
    pkg = "k8s.io/component-base/version"
    return " ".join(
        [
            "-s",
            "-w",
            f"-X {pkg}.gitVersion={version}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
        ]
    )


def _build(build: gotool.Build, version: str) -> Path:
    """Build kube-apiserver ``version`` in ``build``'s scratch directory, from a wrapper module."""
    info = json.loads(
        build.run([build.go, "mod", "download", "-json", f"{MODULE}@{version}"], capture=True)
    )
    (build.scratch / "go.mod").write_text(wrapper_go_mod(Path(info["GoMod"]).read_text(), version))
    (build.scratch / "tools.go").write_text(
        f'//go:build tools\n\npackage tools\n\nimport _ "{PACKAGE}"\n'
    )
    build.run([build.go, "mod", "tidy"])
    output = build.scratch / BINARY_NAME
    build.run(
        [build.go, "build", "-trimpath", "-ldflags", _ldflags(version), "-o", str(output), PACKAGE]
    )
    return output


def ensure_binary(version: str = KUBERNETES_VERSION) -> Path:
    """The kube-apiserver binary, built on first use and cached per version."""
    if gotool.cached(BINARY_NAME, version) is None and find_go() is None:
        raise RealApiServerUnavailable(
            f"Go is not installed, so kube-apiserver {version} cannot be built"
        )
    return gotool.ensure(BINARY_NAME, version, lambda build: _build(build, version))


def ensure_etcd() -> Path:
    """The etcd binary; installs Debian's ``etcd-server`` when running as root."""
    found = shutil.which("etcd") or ("/usr/bin/etcd" if Path("/usr/bin/etcd").exists() else None)
    if found:
        return Path(found)
    apt = shutil.which("apt-get")
    if os.geteuid() != 0 or apt is None:
        raise RealApiServerUnavailable(
            "etcd is not installed (Debian: apt-get install etcd-server)"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}

    def install() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [apt, "install", "-y", "--no-install-recommends", "etcd-server"],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
            check=False,
        )

    result = install()
    if result.returncode != 0:
        subprocess.run([apt, "update"], capture_output=True, env=env, timeout=600, check=False)
        result = install()
    found = shutil.which("etcd") or ("/usr/bin/etcd" if Path("/usr/bin/etcd").exists() else None)
    if result.returncode != 0 or not found:
        last = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RealApiServerUnavailable(f"apt-get install etcd-server failed: {last[0]}")
    return Path(found)


def unavailable_reason(version: str = KUBERNETES_VERSION) -> str | None:
    """Why :class:`RealApiServer` cannot start here, without building anything.

    ``None`` means the prerequisites are present or can be obtained (a cached
    binary or Go; etcd, or root with apt-get). A cheap check, for skipping a
    whole test module with one line.
    """
    binary = cache_dir(version) / BINARY_NAME
    if not binary.is_file() and find_go() is None:
        return f"Go is not installed, so kube-apiserver {version} cannot be built"
    has_etcd = shutil.which("etcd") or Path("/usr/bin/etcd").exists()
    if not has_etcd and (os.geteuid() != 0 or shutil.which("apt-get") is None):
        return "etcd is not installed (Debian: apt-get install etcd-server)"
    return None


# --------------------------------------------------------------------------
# PKI


@dataclass(frozen=True)
class Pki:
    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    admin_cert: Path
    admin_key: Path
    sa_key: Path
    sa_pub: Path


_NOT_BEFORE = dt.timedelta(minutes=5)
_LIFETIME = dt.timedelta(days=2)


def _write_key(path: Path, key: Any) -> None:
    from cryptography.hazmat.primitives import serialization

    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _write_cert(path: Path, cert: Any) -> None:
    from cryptography.hazmat.primitives import serialization

    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def issue_certificate(
    ca_cert: Path,
    ca_key: Path,
    cert_path: Path,
    key_path: Path,
    *,
    common_name: str,
    organization: str | None = None,
    hosts: Iterable[str] = (),
    server: bool = True,
) -> tuple[Path, Path]:
    """A leaf certificate signed by the CA: for serving ``hosts``, or a client one."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca = x509.load_pem_x509_certificate(ca_cert.read_bytes())
    signer = serialization.load_pem_private_key(ca_key.read_bytes(), password=None)
    assert isinstance(signer, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    now = dt.datetime.now(dt.UTC)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(attrs))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _NOT_BEFORE)
        .not_valid_after(now + _LIFETIME)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), False
        )
    )
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    _write_key(key_path, key)
    _write_cert(cert_path, builder.sign(signer, hashes.SHA256()))
    return cert_path, key_path


def make_pki(directory: Path) -> Pki:
    """A CA, a serving cert, a system:masters client cert and a service-account key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True)
    pki = Pki(
        ca_cert=directory / "ca.crt",
        ca_key=directory / "ca.key",
        serving_cert=directory / "serving.crt",
        serving_key=directory / "serving.key",
        admin_cert=directory / "admin.crt",
        admin_key=directory / "admin.key",
        sa_key=directory / "sa.key",
        sa_pub=directory / "sa.pub",
    )
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "harness-ca")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _NOT_BEFORE)
        .not_valid_after(now + _LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(pki.ca_key, ca_key)
    _write_cert(pki.ca_cert, ca_cert)
    issue_certificate(
        pki.ca_cert,
        pki.ca_key,
        pki.serving_cert,
        pki.serving_key,
        common_name="kube-apiserver",
        # The first address of the service range is the "kubernetes" Service.
        hosts=(
            "localhost",
            "127.0.0.1",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            str(next(ipaddress.ip_network(SERVICE_CLUSTER_IP_RANGE).hosts())),
        ),
    )
    issue_certificate(
        pki.ca_cert,
        pki.ca_key,
        pki.admin_cert,
        pki.admin_key,
        common_name=ADMIN_CN,
        organization=MASTERS,
        server=False,
    )
    sa_key = ec.generate_private_key(ec.SECP256R1())
    _write_key(pki.sa_key, sa_key)
    pki.sa_pub.write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return pki


# --------------------------------------------------------------------------
# Processes and HTTP


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pdeathsig_preexec() -> Callable[[], None] | None:
    """A preexec_fn asking Linux to SIGTERM the child if the test process dies.

    libc is loaded here, in the parent: importing in the forked child could
    deadlock on an import lock held by another thread at fork time.
    """
    try:
        import ctypes

        prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def preexec() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM)

    return preexec


class _Process:
    """One child process with its output captured to a log file."""

    def __init__(self, name: str, argv: list[str], log: Path) -> None:
        self.name = name
        self.log = log
        self._out = open(log, "wb")  # noqa: SIM115 - closed in stop()
        # PR_SET_PDEATHSIG fires when the *thread* that forked exits, so only
        # use it from the main thread, whose exit means the process is gone.
        main = threading.current_thread() is threading.main_thread()
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            preexec_fn=_pdeathsig_preexec() if main else None,
        )

    def running(self) -> bool:
        return self.proc.poll() is None

    def rss_bytes(self) -> int | None:
        try:
            status = Path(f"/proc/{self.proc.pid}/status").read_text()
        except OSError:
            return None
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
        return int(match.group(1)) * 1024 if match else None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT)
        if not self._out.closed:
            self._out.close()


@dataclass(frozen=True)
class Response:
    status: int
    body: Any
    headers: Mapping[str, str]
    """Repeated headers (``Warning``) are joined with ", ", as HTTP allows."""


def _joined(headers: Message) -> dict[str, str]:
    return {k: ", ".join(headers.get_all(k) or ()) for k in dict.fromkeys(headers.keys())}


class RealApiServer:
    """etcd plus kube-apiserver, serving the Upgrade CRD with seeds and RBAC.

    Use as a context manager, or call :meth:`start` and :meth:`stop`.
    ``bff_rbac=False`` leaves the chart's objects out, for a test that
    applies them itself.
    """

    def __init__(
        self,
        *,
        fixtures: Path = FIXTURES,
        namespace: str = NAMESPACE,
        bff_rbac: bool = True,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.fixtures = fixtures
        self.namespace = namespace
        self.bff_rbac = bff_rbac
        self.extra_args = extra_args
        self._tmp: Path | None = None
        self._etcd_data: Path | None = None
        self._etcd: _Process | None = None
        self._apiserver: _Process | None = None
        self._pki: Pki | None = None
        self._ssl: ssl.SSLContext | None = None
        self._ssl_plain: ssl.SSLContext | None = None
        self._resources: dict[tuple[str, str], tuple[str, bool]] = {}
        # name -> (uid, resourceVersion) of each seed as created, so reset()
        # leaves untouched seeds alone.
        self._seeded: dict[str, tuple[str, str]] = {}
        self.url = ""
        self.etcd_url = ""
        #: Seconds from starting kube-apiserver to its /readyz answering 200.
        self.ready_seconds: float | None = None
        #: Seconds from start() to seeded and ready for tests (PKI, etcd, CRD, RBAC, seeds).
        self.startup_seconds: float | None = None

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self) -> RealApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> RealApiServer:
        """Start everything; raise RealApiServerUnavailable or RealApiServerError."""
        binary = ensure_binary()
        etcd = ensure_etcd()
        # Free ports are picked by binding and releasing them, so another
        # process can take one in between; that failure is retried.
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                self._start_once(binary, etcd)
            except RealApiServerError as exc:
                if "address already in use" not in str(exc) or attempt == START_ATTEMPTS:
                    raise
            else:
                return self
        raise AssertionError("unreachable")

    def _start_once(self, binary: Path, etcd: Path) -> None:
        began = time.monotonic()
        self._tmp = Path(tempfile.mkdtemp(prefix="real-apiserver-"))
        try:
            self._pki = make_pki(self._tmp / "pki")
            self._ssl = ssl.create_default_context(cafile=str(self._pki.ca_cert))
            self._ssl.load_cert_chain(str(self._pki.admin_cert), str(self._pki.admin_key))
            self._ssl_plain = ssl.create_default_context(cafile=str(self._pki.ca_cert))
            self._start_etcd(etcd)
            self._start_apiserver(binary)
            self._bootstrap()
            self.startup_seconds = time.monotonic() - began
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop both processes and remove the temp dirs. Idempotent."""
        for proc in (self._apiserver, self._etcd):
            if proc is not None:
                proc.stop()
        self._apiserver = self._etcd = None
        keep = os.environ.get("BFF_REAL_APISERVER_KEEP") == "1"
        if self._etcd_data is not None and not keep:
            shutil.rmtree(self._etcd_data, ignore_errors=True)
        self._etcd_data = None
        if self._tmp is not None:
            if keep:
                print(f"real apiserver: keeping {self._tmp}", file=sys.stderr)
            else:
                shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        self._resources.clear()
        self._seeded.clear()

    def _fail(self, message: str) -> RealApiServerError:
        parts = [message]
        for proc in (self._apiserver, self._etcd):
            if proc is not None:
                parts.append(f"--- {proc.log.name} (last lines) ---\n{gotool.tail(proc.log)}")
        return RealApiServerError("\n".join(parts))

    def _start_etcd(self, etcd: Path) -> None:
        assert self._tmp is not None
        # tmpfs makes etcd's fsyncs free; fall back to the temp dir.
        shm = Path("/dev/shm")
        base = shm if shm.is_dir() and os.access(shm, os.W_OK) else self._tmp
        data = Path(tempfile.mkdtemp(prefix="real-apiserver-etcd-", dir=base))
        self._etcd_data = data
        client, peer = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client}"
        self._etcd = _Process(
            "etcd",
            [
                str(etcd),
                "--name=harness",
                f"--data-dir={data}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=harness=http://127.0.0.1:{peer}",
                "--initial-cluster-state=new",
                "--logger=zap",
                "--log-outputs=stderr",
                "--log-level=warn",
            ],
            self._tmp / "etcd.log",
        )
        deadline = time.monotonic() + ETCD_TIMEOUT
        while time.monotonic() < deadline:
            if not self._etcd.running():
                raise self._fail(f"etcd exited with {self._etcd.proc.returncode}")
            if self._etcd_healthy():
                return
            time.sleep(0.1)
        raise self._fail(f"etcd was not healthy within {ETCD_TIMEOUT}s")

    def _etcd_healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.etcd_url}/health", timeout=2) as resp:  # noqa: S310
                return bool(json.load(resp).get("health") == "true")
        except (OSError, ValueError):
            return False

    def apiserver_argv(self, binary: Path, port: int) -> list[str]:
        assert self._tmp is not None
        assert self._pki is not None
        tokens = self._tmp / "tokens.csv"
        tokens.write_text(token_file_text())
        tokens.chmod(0o600)
        return [
            str(binary),
            f"--etcd-servers={self.etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={port}",
            f"--tls-cert-file={self._pki.serving_cert}",
            f"--tls-private-key-file={self._pki.serving_key}",
            f"--cert-dir={self._tmp / 'certs'}",
            f"--client-ca-file={self._pki.ca_cert}",
            f"--token-auth-file={tokens}",
            "--authorization-mode=RBAC",
            f"--service-account-key-file={self._pki.sa_pub}",
            f"--service-account-signing-key-file={self._pki.sa_key}",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            # Nothing registers as an endpoint of the "kubernetes" Service here.
            "--endpoint-reconciler-type=none",
            "--profiling=false",
            *self.extra_args,
        ]

    def _start_apiserver(self, binary: Path) -> None:
        assert self._tmp is not None
        port = free_port()
        self.url = f"https://127.0.0.1:{port}"
        began = time.monotonic()
        self._apiserver = _Process(
            "kube-apiserver", self.apiserver_argv(binary, port), self._tmp / "kube-apiserver.log"
        )
        deadline = began + READY_TIMEOUT
        last = "no answer"
        while time.monotonic() < deadline:
            if not self._apiserver.running():
                raise self._fail(f"kube-apiserver exited with {self._apiserver.proc.returncode}")
            try:
                r = self.request("GET", "/readyz", timeout=2)
            except OSError as exc:
                last = str(exc)
            else:
                if r.status == 200:
                    self.ready_seconds = time.monotonic() - began
                    return
                last = f"HTTP {r.status}: {str(r.body)[-300:]}"
            time.sleep(0.1)
        raise self._fail(f"kube-apiserver /readyz did not pass within {READY_TIMEOUT}s ({last})")

    def _bootstrap(self) -> None:
        self.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}})
        self._create_crd()
        self.apply(*harness_rbac())
        if self.bff_rbac:
            self.apply(*deploy_rbac())
        self.reset()

    def _create_crd(self) -> None:
        crd = yaml.safe_load((self.fixtures / f"{CRD_NAME}.crd.yaml").read_text())
        path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
        r = self.request("POST", path, crd)
        if r.status != 201:
            raise self._fail(f"creating the CRD answered {r.status}: {r.body}")
        deadline = time.monotonic() + CRD_TIMEOUT
        while time.monotonic() < deadline:
            r = self.request("GET", f"{path}/{CRD_NAME}")
            conditions = (r.body.get("status") or {}).get("conditions") or []
            if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                # Established means the handler is installed; discovery can
                # still lag by a moment.
                d = self.request("GET", f"/apis/{GROUP}/{VERSION}")
                if d.status == 200 and any(
                    res["name"] == PLURAL for res in d.body.get("resources", [])
                ):
                    return
            time.sleep(0.1)
        raise self._fail(f"CRD {CRD_NAME} not Established and served within {CRD_TIMEOUT}s")

    # -- HTTP as the masters admin ---------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
        token: str | None = None,
        anonymous: bool = False,
        timeout: float = 10,
    ) -> Response:
        """One request, by default as the system:masters admin certificate.

        With ``token`` the request carries that bearer token and *no* client
        certificate (the server would prefer the certificate); with
        ``anonymous`` it carries neither. Returns non-2xx answers instead of
        raising; JSON bodies are decoded.
        """
        assert self._ssl is not None, "server not started"
        assert self._ssl_plain is not None, "server not started"
        ctx = self._ssl_plain if token is not None or anonymous else self._ssl
        if body is None:
            data = None
        elif isinstance(body, (bytes, str)):
            data = body.encode() if isinstance(body, str) else body
        else:
            data = json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)  # noqa: S310
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", content_type)
        if token is not None:
            req.add_header("Authorization", f"Bearer {token}")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=timeout) as resp:  # noqa: S310
                status, raw, hdrs = resp.status, resp.read(), _joined(resp.headers)
        except urllib.error.HTTPError as err:
            with err:
                status, raw, hdrs = err.code, err.read(), _joined(err.headers)
        try:
            decoded: Any = json.loads(raw) if raw else None
        except ValueError:
            decoded = raw.decode(errors="replace")
        return Response(status, decoded, hdrs)

    def upgrades_path(self, name: str | None = None) -> str:
        base = f"/apis/{GROUP}/{VERSION}/namespaces/{self.namespace}/{PLURAL}"
        return base if name is None else f"{base}/{name}"

    # -- any object, as the admin ---------------------------------------------

    def _resource(self, api_version: str, kind: str) -> tuple[str, bool]:
        """(collection path prefix, namespaced) for a kind, from discovery."""
        key = (api_version, kind)
        if key not in self._resources:
            base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            r = self.request("GET", base)
            if r.status != 200:
                raise self._fail(f"discovery of {api_version} answered {r.status}: {r.body}")
            for res in r.body.get("resources", []):
                if "/" not in res["name"]:
                    self._resources[(api_version, res["kind"])] = (
                        f"{base}/{{ns}}{res['name']}",
                        bool(res["namespaced"]),
                    )
            if key not in self._resources:
                raise RealApiServerError(f"{api_version} serves no kind {kind}")
        return self._resources[key]

    def object_path(self, obj: Mapping[str, Any]) -> str:
        """The URL path of ``obj`` (``apiVersion``, ``kind``, ``metadata.name``/``namespace``)."""
        template, namespaced = self._resource(obj["apiVersion"], obj["kind"])
        meta = obj.get("metadata") or {}
        ns = f"namespaces/{meta.get('namespace') or self.namespace}/" if namespaced else ""
        return template.format(ns=ns) + f"/{meta['name']}"

    def apply(self, *objects: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Server-side apply each object as the admin (create or update); the results.

        For example a MutatingWebhookConfiguration whose ``clientConfig`` has a
        loopback ``url`` and ``caBundle`` :attr:`ca_bundle`. RBAC objects are
        waited on until the authorizer has them.
        """
        results = []
        for obj in objects:
            path = self.object_path(obj) + "?fieldManager=test-harness&force=true"
            r = self.request(
                "PATCH", path, json.dumps(obj), content_type="application/apply-patch+yaml"
            )
            if r.status not in (200, 201):
                what = f"{obj['kind']} {obj['metadata']['name']}"
                raise RealApiServerError(f"applying {what} answered {r.status}: {r.body}")
            results.append(r.body)
        if any(o["kind"] in RBAC_KINDS for o in objects):
            self.wait_for_rbac()
        return results

    def delete(self, *objects: Mapping[str, Any]) -> None:
        """Delete each object as the admin; a missing one is fine."""
        for obj in objects:
            r = self.request("DELETE", self.object_path(obj))
            if r.status not in (200, 202, 404):
                what = f"{obj['kind']} {obj['metadata']['name']}"
                raise RealApiServerError(f"deleting {what} answered {r.status}: {r.body}")
        if any(o["kind"] in RBAC_KINDS for o in objects):
            self.wait_for_rbac()

    def wait_for_rbac(self) -> None:
        """Wait until the RBAC authorizer's informers have every change made so far.

        A marker ClusterRole and binding are written after the changes, and a
        SubjectAccessReview is repeated until it sees the marker's new rule. The
        authorizer watches each RBAC kind separately, so this orders them only
        as far as its informers keep pace with each other (they are fed by the
        same etcd and catch up within milliseconds of one another).
        """
        marker = f"harness-rbac-marker-{time.monotonic_ns()}"
        name = "harness:rbac-marker"
        rbac = "rbac.authorization.k8s.io"
        role = {
            "apiVersion": f"{rbac}/v1",
            "kind": "ClusterRole",
            "metadata": _meta(name),
            "rules": [{"nonResourceURLs": [f"/{marker}"], "verbs": ["get"]}],
        }
        binding = {"apiVersion": f"{rbac}/v1", "kind": "ClusterRoleBinding",
                   "metadata": _meta(name),
                   "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": name},
                   "subjects": [{"apiGroup": rbac, "kind": "User", "name": name}]}  # fmt: skip
        for obj in (role, binding):
            path = self.object_path(obj) + "?fieldManager=test-harness&force=true"
            self.request(
                "PATCH", path, json.dumps(obj), content_type="application/apply-patch+yaml"
            )
        deadline = time.monotonic() + RBAC_TIMEOUT
        while not self.allowed(name, (), non_resource=(f"/{marker}", "get")):
            if time.monotonic() > deadline:
                raise self._fail(f"RBAC changes not in effect after {RBAC_TIMEOUT}s")
            time.sleep(0.02)

    def allowed(
        self,
        user: str,
        groups: Iterable[str],
        *,
        verb: str = "get",
        group: str = GROUP,
        resource: str = PLURAL,
        subresource: str = "",
        namespace: str | None = None,
        name: str = "",
        non_resource: tuple[str, str] | None = None,
    ) -> bool:
        """The server's SubjectAccessReview answer for ``user`` in ``groups``."""
        spec: dict[str, Any] = {"user": user, "groups": list(groups)}
        if non_resource is not None:
            spec["nonResourceAttributes"] = {"path": non_resource[0], "verb": non_resource[1]}
        else:
            spec["resourceAttributes"] = {
                "verb": verb,
                "group": group,
                "resource": resource,
                "subresource": subresource,
                "namespace": self.namespace if namespace is None else namespace,
                "name": name,
            }
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                  "spec": spec}  # fmt: skip
        r = self.request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", review)
        if r.status != 201:
            raise RealApiServerError(f"SubjectAccessReview answered {r.status}: {r.body}")
        return bool(r.body["status"].get("allowed"))

    def create_token(
        self,
        namespace: str,
        service_account: str,
        *,
        seconds: int = 3600,
        audiences: Iterable[str] = (),
    ) -> str:
        """A token for a ServiceAccount, from the TokenRequest API (as the admin)."""
        spec: dict[str, Any] = {"expirationSeconds": seconds}
        if audiences:
            spec["audiences"] = list(audiences)
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
        path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token"
        r = self.request("POST", path, body)
        if r.status != 201:
            raise RealApiServerError(
                f"TokenRequest for {namespace}/{service_account} answered {r.status}: {r.body}"
            )
        return str(r.body["status"]["token"])

    def review_token(self, token: str) -> dict[str, Any]:
        """The server's TokenReview ``status`` for ``token`` (asked as the admin)."""
        review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                  "spec": {"token": token}}  # fmt: skip
        r = self.request("POST", "/apis/authentication.k8s.io/v1/tokenreviews", review)
        if r.status != 201:
            raise RealApiServerError(f"TokenReview answered {r.status}: {r.body}")
        return dict(r.body["status"])

    # -- seeds -----------------------------------------------------------------

    def seed_objects(self) -> list[dict[str, Any]]:
        """The fixture objects, stripped of server-set metadata."""
        seeds = []
        for path in sorted((self.fixtures / "upgrades").glob("*.json")):
            obj = json.loads(path.read_text())
            meta = {k: v for k, v in obj["metadata"].items() if k in _KEPT_METADATA}
            meta["namespace"] = self.namespace
            seed = {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "metadata": meta}
            for key in ("spec", "status"):
                if key in obj:
                    seed[key] = obj[key]
            seeds.append(seed)
        return seeds

    def reset(self) -> None:
        """Make the namespace hold exactly the seed objects again, and no webhooks.

        Seeds nobody changed since they were created are kept as they are (same
        uid and resourceVersion); everything else is deleted and the missing
        seeds are created again.
        """
        for kind in ("mutatingwebhookconfigurations", "validatingwebhookconfigurations"):
            path = f"/apis/admissionregistration.k8s.io/v1/{kind}"
            r = self.request("GET", path)
            for item in (r.body or {}).get("items", []):
                self.request("DELETE", f"{path}/{item['metadata']['name']}")
        r = self.request("GET", self.upgrades_path())
        if r.status != 200:
            raise self._fail(f"listing upgrades answered {r.status}: {r.body}")
        kept = set()
        for item in r.body["items"]:
            meta = item["metadata"]
            name = meta["name"]
            if self._seeded.get(name) == (meta["uid"], meta["resourceVersion"]):
                kept.add(name)
                continue
            if meta.get("finalizers"):
                self.request(
                    "PATCH",
                    self.upgrades_path(name),
                    {"metadata": {"finalizers": None}},
                    content_type="application/merge-patch+json",
                )
            d = self.request("DELETE", self.upgrades_path(name))
            if d.status not in (200, 202, 404):
                raise self._fail(f"deleting {name} answered {d.status}: {d.body}")
        deadline = time.monotonic() + CRD_TIMEOUT
        for seed in self.seed_objects():
            name = seed["metadata"]["name"]
            if name in kept:
                continue
            while True:
                r = self.request("POST", self.upgrades_path(), seed)
                # A deletion can still be settling: wait for the name to be free.
                if r.status == 409 and r.body.get("reason") == "AlreadyExists":
                    if time.monotonic() > deadline:
                        raise self._fail(f"{name} still exists after {CRD_TIMEOUT}s")
                    time.sleep(0.05)
                    continue
                break
            if r.status != 201:
                raise self._fail(f"creating {name} answered {r.status}: {r.body}")
            meta = r.body["metadata"]
            self._seeded[name] = (meta["uid"], meta["resourceVersion"])

    # -- etcd ------------------------------------------------------------------

    def compact_etcd(self) -> int:
        """Compact etcd to its current revision (through its JSON gateway).

        Returns the revision compacted to. Watches from an older
        resourceVersion can then no longer be served from etcd.
        """
        key = base64.b64encode(b"/").decode()
        rev = int(self._etcd_post("/v3/kv/range", {"key": key, "limit": 1})["header"]["revision"])
        self._etcd_post("/v3/kv/compaction", {"revision": rev, "physical": True})
        return rev

    def _etcd_post(self, path: str, body: Any) -> Any:
        req = urllib.request.Request(  # noqa: S310
            self.etcd_url + path, data=json.dumps(body).encode(), method="POST"
        )
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            return json.load(resp)

    # -- certificates and client configuration -----------------------------------

    @property
    def ca_file(self) -> Path:
        assert self._pki is not None, "server not started"
        return self._pki.ca_cert

    @property
    def ca_bundle(self) -> str:
        """The harness CA, base64-encoded PEM: a webhook ``clientConfig.caBundle``."""
        return base64.b64encode(self.ca_file.read_bytes()).decode()

    def issue_certificate(
        self, directory: str | os.PathLike[str], *, name: str = "hook",
        hosts: Iterable[str] = ("127.0.0.1", "localhost"),
    ) -> tuple[Path, Path]:  # fmt: skip
        """A serving certificate for ``hosts`` signed by the harness CA: (cert, key) paths.

        kube-apiserver trusts it when the webhook's ``caBundle`` is :attr:`ca_bundle`.
        """
        assert self._pki is not None, "server not started"
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        return issue_certificate(
            self._pki.ca_cert, self._pki.ca_key, out / f"{name}.crt", out / f"{name}.key",
            common_name=name, hosts=hosts,
        )  # fmt: skip

    @property
    def admin_cert_file(self) -> Path:
        assert self._pki is not None, "server not started"
        return self._pki.admin_cert

    @property
    def admin_key_file(self) -> Path:
        assert self._pki is not None, "server not started"
        return self._pki.admin_key

    @property
    def log_dir(self) -> Path | None:
        return self._tmp

    @property
    def apiserver_log(self) -> Path | None:
        return None if self._apiserver is None else self._apiserver.log

    def rss_bytes(self) -> int | None:
        """kube-apiserver's resident set size now."""
        return None if self._apiserver is None else self._apiserver.rss_bytes()

    @property
    def pids(self) -> dict[str, int]:
        """The running processes by name (``kube-apiserver``, ``etcd``): the bench measures them."""
        return {p.name: p.proc.pid for p in (self._apiserver, self._etcd) if p is not None}

    def kubeconfig(
        self, path: str | os.PathLike[str], *, token: str | None = None, client_cert: bool = False
    ) -> Path:
        """Write a kubeconfig for this server with the token *or* the masters cert.

        With neither, the kubeconfig has no credentials (anonymous requests).
        Stock kubectl and kubernetes-asyncio both use it unchanged.
        """
        if token is not None and client_cert:
            raise ValueError("choose a token or the client certificate, not both")
        user: dict[str, str] = {}
        if token is not None:
            user["token"] = token
        elif client_cert:
            user["client-certificate"] = str(self.admin_cert_file)
            user["client-key"] = str(self.admin_key_file)
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "real-apiserver",
                    "cluster": {"server": self.url, "certificate-authority": str(self.ca_file)},
                }
            ],
            "users": [{"name": "harness", "user": user}],
            "contexts": [
                {
                    "name": "real-apiserver",
                    "context": {
                        "cluster": "real-apiserver",
                        "user": "harness",
                        "namespace": self.namespace,
                    },
                }
            ],
            "current-context": "real-apiserver",
        }
        out = Path(path)
        out.write_text(json.dumps(config, indent=2))
        out.chmod(0o600)
        return out


def main() -> int:
    """``python -m tests.support.real_apiserver``: build (or find) the cached binary."""
    from tests.support import gotool  # gotool imports this module

    return gotool.main("kube-apiserver", KUBERNETES_VERSION, ensure_binary)


if __name__ == "__main__":
    sys.exit(main())
