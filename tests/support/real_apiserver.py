"""A real Kubernetes API server serving the Upgrade CRD, for tests.

The sandbox emulator is our own model of the API server; this is its referee.
It runs upstream ``k8s.io/apiextensions-apiserver`` (built once with
``go install`` and cached) on a private etcd, both on loopback, creates the
``upgrades.harvesterhci.io`` CRD and seeds ``harvester-system`` with the three
fixture objects.

Who is who:

* a client certificate signed by the throwaway CA is checked by the server
  itself; the harness admin certificate has ``O=system:masters`` and may do
  anything, including impersonation;
* bearer tokens and all non-masters authorisation are delegated to
  :mod:`tests.support.authstub` through TokenReview and SubjectAccessReview,
  with the caches off, so tokens get real 401 and 403 answers.

The server has no core ``/api`` group: no namespaces, no RBAC objects, no
TokenReview endpoint of its own. Address the custom resource paths directly.

Everything here is synchronous (subprocesses plus ``urllib``) so it can run
from a session fixture regardless of the test's event loop.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import fcntl
import json
import os
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
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

import yaml

from tests.support.authstub import AuthStub

MODULE = "k8s.io/apiextensions-apiserver"
# v0.36.3 builds with Go 1.26 and runs with the flags below.
PINNED_VERSION = "v0.36.3"
BINARY_NAME = "apiextensions-apiserver"

NAMESPACE = "harvester-system"
GROUP = "harvesterhci.io"
VERSION = "v1beta1"
PLURAL = "upgrades"
CRD_NAME = f"{PLURAL}.{GROUP}"

ADMIN_CN = "harness-admin"
MASTERS = "system:masters"

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT / "tests" / "fixtures"

# Bounded waits, in seconds.
BUILD_TIMEOUT = 30 * 60
ETCD_TIMEOUT = 30.0
HEALTHZ_TIMEOUT = 60.0
CRD_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
START_ATTEMPTS = 3

# Admission plugins that need informers against the core API, which the stub
# does not serve. Names as registered by v0.36 (see ``--help``).
DISABLED_ADMISSION = (
    "NamespaceLifecycle",
    "MutatingAdmissionPolicy",
    "MutatingAdmissionWebhook",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionWebhook",
)

_KEPT_METADATA = ("name", "generateName", "namespace", "labels", "annotations", "finalizers")


class RealApiServerUnavailable(RuntimeError):
    """A prerequisite (Go, etcd) is missing: skip, don't fail."""


class RealApiServerError(RuntimeError):
    """The server was available but did not start or misbehaved."""


# --------------------------------------------------------------------------
# Prerequisites


def cache_dir(version: str = PINNED_VERSION) -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "harvester-upgrade-bff" / BINARY_NAME / version


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no {path.name})"
    return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive file lock, so parallel test workers build only once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_binary(version: str = PINNED_VERSION) -> Path:
    """The apiextensions-apiserver binary, built with ``go install`` on first use."""
    target_dir = cache_dir(version)
    binary = target_dir / BINARY_NAME
    if binary.is_file() and os.access(binary, os.X_OK):
        return binary
    go = shutil.which("go")
    if go is None:
        raise RealApiServerUnavailable(
            f"Go is not installed, so {MODULE}@{version} cannot be built"
        )
    with _locked(target_dir / ".lock"):
        if binary.is_file() and os.access(binary, os.X_OK):
            return binary
        # Build into a scratch GOBIN and rename, so an interrupted build never
        # leaves a half-written binary where the next run would trust it.
        scratch = Path(tempfile.mkdtemp(prefix=".gobin-", dir=target_dir))
        log = target_dir / "build.log"
        env = {**os.environ, "GOBIN": str(scratch)}
        try:
            with open(log, "w") as out:
                proc = subprocess.run(
                    [go, "install", f"{MODULE}@{version}"],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    timeout=BUILD_TIMEOUT,
                    check=False,
                    cwd=target_dir,
                )
            if proc.returncode != 0:
                raise RealApiServerError(
                    f"go install {MODULE}@{version} failed (exit {proc.returncode}):\n" + _tail(log)
                )
            os.replace(scratch / BINARY_NAME, binary)
        except subprocess.TimeoutExpired as exc:
            raise RealApiServerError(
                f"go install {MODULE}@{version} took over {BUILD_TIMEOUT}s:\n" + _tail(log)
            ) from exc
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return binary


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


def unavailable_reason(version: str = PINNED_VERSION) -> str | None:
    """Why :class:`RealApiServer` cannot start here, without building anything.

    ``None`` means the prerequisites are present or can be obtained (a cached
    binary or Go; etcd, or root with apt-get). A cheap check, for skipping a
    whole test module with one line.
    """
    binary = cache_dir(version) / BINARY_NAME
    if not binary.is_file() and shutil.which("go") is None:
        return f"Go is not installed, so {MODULE}@{version} cannot be built"
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


def make_pki(directory: Path) -> Pki:
    """A CA, a serving cert for 127.0.0.1/localhost and a system:masters client cert."""
    directory.mkdir(parents=True, exist_ok=True)
    pki = Pki(
        ca_cert=directory / "ca.crt",
        ca_key=directory / "ca.key",
        serving_cert=directory / "serving.crt",
        serving_key=directory / "serving.key",
        admin_cert=directory / "admin.crt",
        admin_key=directory / "admin.key",
    )
    try:
        import cryptography  # noqa: F401
    except ImportError:
        if shutil.which("openssl") is None:
            raise RealApiServerUnavailable(
                "neither the cryptography package nor openssl is available for test certificates"
            ) from None
        _make_pki_openssl(pki)
    else:
        _make_pki_cryptography(pki)
    return pki


def _make_pki_cryptography(pki: Pki) -> None:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    not_before = now - dt.timedelta(minutes=5)
    not_after = now + dt.timedelta(days=2)

    def key() -> ec.EllipticCurvePrivateKey:
        return ec.generate_private_key(ec.SECP256R1())

    def write_key(path: Path, k: ec.EllipticCurvePrivateKey) -> None:
        path.write_bytes(
            k.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        path.chmod(0o600)

    def write_cert(path: Path, cert: x509.Certificate) -> None:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    ca_key = key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "harness-ca")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
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
    write_key(pki.ca_key, ca_key)
    write_cert(pki.ca_cert, ca_cert)

    def leaf(
        subject: x509.Name, usage: x509.ObjectIdentifier, san: x509.SubjectAlternativeName | None
    ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        k = key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(k.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
            )
        )
        if san is not None:
            builder = builder.add_extension(san, critical=False)
        return k, builder.sign(ca_key, hashes.SHA256())

    serving_key, serving_cert = leaf(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]),
        ExtendedKeyUsageOID.SERVER_AUTH,
        x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        ),
    )
    write_key(pki.serving_key, serving_key)
    write_cert(pki.serving_cert, serving_cert)

    admin_key, admin_cert = leaf(
        x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, MASTERS),
                x509.NameAttribute(NameOID.COMMON_NAME, ADMIN_CN),
            ]
        ),
        ExtendedKeyUsageOID.CLIENT_AUTH,
        None,
    )
    write_key(pki.admin_key, admin_key)
    write_cert(pki.admin_cert, admin_cert)


def _make_pki_openssl(pki: Pki) -> None:
    d = pki.ca_cert.parent

    def run(*args: str) -> None:
        result = subprocess.run(
            ["openssl", *args], capture_output=True, text=True, timeout=60, check=False
        )
        if result.returncode != 0:
            raise RealApiServerError(f"openssl {args[0]} failed: {result.stderr.strip()}")

    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    run(
        "req", "-x509", *ec, "-keyout", str(pki.ca_key), "-out", str(pki.ca_cert),
        "-days", "2", "-subj", "/CN=harness-ca",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,digitalSignature,keyCertSign,cRLSign",
    )  # fmt: skip
    for name, subj, ext in (
        (
            "serving",
            "/CN=localhost",
            "basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n"
            "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
        ),
        (
            "admin",
            f"/O={MASTERS}/CN={ADMIN_CN}",
            "basicConstraints=critical,CA:FALSE\nextendedKeyUsage=clientAuth\n",
        ),
    ):
        key, csr, crt, extfile = (d / f"{name}.{s}" for s in ("key", "csr", "crt", "ext"))
        extfile.write_text(ext)
        run("req", "-new", *ec, "-keyout", str(key), "-out", str(csr), "-subj", subj)
        run(
            "x509", "-req", "-in", str(csr), "-CA", str(pki.ca_cert), "-CAkey", str(pki.ca_key),
            "-CAcreateserial", "-days", "2", "-sha256", "-extfile", str(extfile), "-out", str(crt),
        )  # fmt: skip
        key.chmod(0o600)


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
    """etcd plus apiextensions-apiserver, serving the Upgrade CRD with seeds.

    Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        *,
        fixtures: Path = FIXTURES,
        namespace: str = NAMESPACE,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.fixtures = fixtures
        self.namespace = namespace
        self.extra_args = extra_args
        self._tmp: Path | None = None
        self._etcd_data: Path | None = None
        self._etcd: _Process | None = None
        self._apiserver: _Process | None = None
        self._stub: AuthStub | None = None
        self._pki: Pki | None = None
        self._ssl: ssl.SSLContext | None = None
        self._ssl_plain: ssl.SSLContext | None = None
        self.url = ""
        self.etcd_url = ""
        self.authstub_url = ""
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
            self._stub = AuthStub(str(self._tmp / "authstub.log")).start()
            self.authstub_url = self._stub.url
            self._start_etcd(etcd)
            self._start_apiserver(binary)
            self._create_crd()
            self.startup_seconds = time.monotonic() - began
            self.reset()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Kill both processes and the stub, and remove the temp dir. Idempotent."""
        for proc in (self._apiserver, self._etcd):
            if proc is not None:
                proc.stop()
        self._apiserver = self._etcd = None
        if self._stub is not None:
            self._stub.stop()
            self._stub = None
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

    def _fail(self, message: str) -> RealApiServerError:
        parts = [message]
        for proc in (self._apiserver, self._etcd):
            if proc is not None:
                parts.append(f"--- {proc.log.name} (last lines) ---\n{_tail(proc.log)}")
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

    def _start_apiserver(self, binary: Path) -> None:
        assert self._tmp is not None
        assert self._pki is not None
        assert self._stub is not None
        core = self._tmp / "core.kubeconfig"
        core.write_text(self._stub.kubeconfig_text())
        port = free_port()
        self.url = f"https://127.0.0.1:{port}"
        argv = [
            str(binary),
            f"--etcd-servers={self.etcd_url}",
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            f"--tls-cert-file={self._pki.serving_cert}",
            f"--tls-private-key-file={self._pki.serving_key}",
            f"--cert-dir={self._tmp / 'certs'}",
            f"--client-ca-file={self._pki.ca_cert}",
            f"--kubeconfig={core}",
            f"--authentication-kubeconfig={core}",
            f"--authorization-kubeconfig={core}",
            "--authentication-skip-lookup",
            "--authentication-token-webhook-cache-ttl=0s",
            "--authorization-webhook-cache-authorized-ttl=0s",
            "--authorization-webhook-cache-unauthorized-ttl=0s",
            "--enable-priority-and-fairness=false",
            "--disable-admission-plugins=" + ",".join(DISABLED_ADMISSION),
            "--profiling=false",
            *self.extra_args,
        ]
        self._apiserver = _Process("apiserver", argv, self._tmp / "apiserver.log")
        deadline = time.monotonic() + HEALTHZ_TIMEOUT
        last = "no answer"
        while time.monotonic() < deadline:
            if not self._apiserver.running():
                raise self._fail(f"apiserver exited with {self._apiserver.proc.returncode}")
            try:
                r = self.request("GET", "/healthz", timeout=2)
            except OSError as exc:
                last = str(exc)
            else:
                if r.status == 200:
                    return
                last = f"HTTP {r.status}: {str(r.body)[:200]}"
            time.sleep(0.2)
        raise self._fail(f"apiserver /healthz did not pass within {HEALTHZ_TIMEOUT}s ({last})")

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
        """One request, by default as the system:masters admin.

        With ``token`` the request carries that bearer token and *no* client
        certificate (the server would prefer the certificate); with
        ``anonymous`` it carries neither. Returns non-2xx answers instead of
        raising; JSON bodies are decoded.
        """
        assert self._ssl is not None, "server not started"
        assert self._ssl_plain is not None, "server not started"
        ctx = self._ssl_plain if token is not None or anonymous else self._ssl
        data = None if body is None else json.dumps(body).encode()
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

    # -- seeds -----------------------------------------------------------------

    def seed_objects(self) -> list[dict[str, Any]]:
        """The fixture objects, stripped of server-set metadata."""
        seeds = []
        for path in sorted((self.fixtures / "objects").glob("*.json")):
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
        """Make the namespace hold exactly the seed objects again."""
        deadline = time.monotonic() + CRD_TIMEOUT
        while True:
            r = self.request("GET", self.upgrades_path())
            if r.status != 200:
                raise self._fail(f"listing upgrades answered {r.status}: {r.body}")
            items = r.body["items"]
            if not items:
                break
            if time.monotonic() > deadline:
                names = [i["metadata"]["name"] for i in items]
                raise self._fail(f"upgrades {names} still present after {CRD_TIMEOUT}s")
            for item in items:
                name = item["metadata"]["name"]
                if item["metadata"].get("finalizers"):
                    self.request(
                        "PATCH",
                        self.upgrades_path(name),
                        {"metadata": {"finalizers": None}},
                        content_type="application/merge-patch+json",
                    )
                d = self.request("DELETE", self.upgrades_path(name))
                if d.status not in (200, 202, 404):
                    raise self._fail(f"deleting {name} answered {d.status}: {d.body}")
        for seed in self.seed_objects():
            r = self.request("POST", self.upgrades_path(), seed)
            if r.status != 201:
                raise self._fail(
                    f"creating {seed['metadata']['name']} answered {r.status}: {r.body}"
                )

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

    # -- client configuration -------------------------------------------------

    @property
    def ca_file(self) -> Path:
        assert self._pki is not None, "server not started"
        return self._pki.ca_cert

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

    def kubeconfig(
        self, path: str | os.PathLike[str], *, token: str | None = None, client_cert: bool = False
    ) -> Path:
        """Write a kubeconfig for this server with the token *or* the masters cert.

        With neither, the kubeconfig has no credentials (anonymous requests).
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
