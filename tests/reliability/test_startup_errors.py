"""A bad start, as a new user meets it: one line on stderr, exit status 2, no traceback."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from bff.sandbox.kubeconfig import write_kubeconfig
from tests.support.certs import make_server_certificate
from tests.support.processes import one_line_exit_2, run


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Path:
    # Nothing listens there; serve starts without reaching the cluster.
    return write_kubeconfig(tmp_path / "kubeconfig", "http://127.0.0.1:9", token="t")


def _pem_pair(tmp_path: Path, name: str) -> tuple[Path, Path]:
    made = make_server_certificate(tmp_path / name)
    return made.cert_file, made.key_file


def test_port_in_use(busy_port: int, kubeconfig: Path) -> None:
    line = one_line_exit_2(run("serve", "--kubeconfig", str(kubeconfig), "--port", str(busy_port)))
    assert f"127.0.0.1:{busy_port}" in line
    assert "--port" in line
    assert "address already in use" in line.lower()


def test_junk_tls_files(tmp_path: Path, kubeconfig: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    line = one_line_exit_2(
        run(
            "serve",
            "--kubeconfig",
            str(kubeconfig),
            "--port",
            "0",
            "--tls-cert",
            str(junk),
            "--tls-key",
            str(junk),
        )
    )
    assert f"--tls-cert {junk} is not a PEM certificate" in line


def test_swapped_tls_files(tmp_path: Path, kubeconfig: Path) -> None:
    cert, key = _pem_pair(tmp_path, "bff")
    line = one_line_exit_2(
        run(
            "serve",
            "--kubeconfig",
            str(kubeconfig),
            "--port",
            "0",
            "--tls-cert",
            str(key),
            "--tls-key",
            str(cert),
        )
    )
    assert "swapped" in line


def test_a_key_for_another_certificate(tmp_path: Path, kubeconfig: Path) -> None:
    cert, _ = _pem_pair(tmp_path, "one")
    _, other_key = _pem_pair(tmp_path, "two")
    line = one_line_exit_2(
        run(
            "serve",
            "--kubeconfig",
            str(kubeconfig),
            "--port",
            "0",
            "--tls-cert",
            str(cert),
            "--tls-key",
            str(other_key),
        )
    )
    assert "does not match" in line


@pytest.mark.parametrize(
    "content",
    ["apiVersion: v1\nclusters: [\n", "\tkind: Config\n", "- just\n- a list\n", "::: ::"],
)
def test_kubeconfig_that_is_not_valid(tmp_path: Path, content: str) -> None:
    bad = tmp_path / "kubeconfig"
    bad.write_text(content)
    line = one_line_exit_2(run("serve", "--kubeconfig", str(bad), "--port", "0"))
    assert str(bad) in line


def test_no_cluster_at_all_one_sentence_ending() -> None:
    line = one_line_exit_2(run("serve", "--port", "0"))
    assert "in-cluster service account" in line
    assert ".." not in line
    assert "sandbox" in line


def test_sandbox_with_its_kube_port_busy(busy_port: int) -> None:
    line = one_line_exit_2(run("sandbox", "--port", "0", "--kube-port", str(busy_port)))
    assert "--kube-port" in line
    assert str(busy_port) in line


def test_sandbox_with_its_own_port_busy(busy_port: int) -> None:
    line = one_line_exit_2(run("sandbox", "--port", str(busy_port), "--kube-port", "0"))
    assert "--port" in line


@pytest.mark.parametrize(
    ("flag", "choices"),
    [("--auth-mode", "passthrough, impersonate"), ("--log-format", "text, json")],
)
def test_a_bad_choice_lists_the_choices(flag: str, choices: str) -> None:
    line = one_line_exit_2(run("serve", flag, "bogus"))
    assert f"must be one of {choices}" in line


def test_bench_errors_go_to_stderr() -> None:
    one_line_exit_2(run("bench", "--rounds", "1"))


def test_webhook_port_in_use(busy_port: int, kubeconfig: Path, tmp_path: Path) -> None:
    cert, key = _pem_pair(tmp_path, "hook")
    result = run("serve", "--kubeconfig", str(kubeconfig), "--port", "0",
                 "--webhook-port", str(busy_port), "--webhook-tls-cert", str(cert),
                 "--webhook-tls-key", str(key))  # fmt: skip
    line = one_line_exit_2(result)
    assert f"127.0.0.1:{busy_port} (--host, --webhook-port)" in line
    assert "address already in use" in line.lower()


def test_metrics_port_in_use(busy_port: int, kubeconfig: Path) -> None:
    result = run("serve", "--kubeconfig", str(kubeconfig), "--port", "0",
                 "--metrics-port", str(busy_port))  # fmt: skip
    line = one_line_exit_2(result)
    assert f"127.0.0.1:{busy_port} (--host, --metrics-port)" in line
    assert "address already in use" in line.lower()


SELF = ("--webhook-port", "0", "--webhook-cert-source", "self")
SELF_FLAGS = ("--webhook-cert-secret", "ns/tls", "--webhook-service", "ns/bff",
              "--webhook-configuration", "bff")  # fmt: skip


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(
            ("--webhook-cert-secret", "no-slash"),
            "invalid --webhook-cert-secret / BFF_WEBHOOK_CERT_SECRET value 'no-slash': "
            "must be NAMESPACE/NAME",
            id="malformed Secret",
        ),
        pytest.param(
            ("--webhook-cert-secret", "ns/Bad_Name"),
            "must be NAMESPACE/NAME",
            id="Secret name not a DNS label",
        ),
        pytest.param(
            ("--webhook-service", "a/b/c"), "must be NAMESPACE/NAME", id="malformed Service"
        ),
        pytest.param(
            ("--webhook-cert-source", "cert-manager"),
            "must be one of files, self",
            id="unknown source",
        ),
        pytest.param(
            SELF,
            "--webhook-cert-source self needs --webhook-cert-secret",
            id="self without its flags",
        ),
        pytest.param(
            (*SELF[2:], *SELF_FLAGS),
            "--webhook-cert-source self needs --webhook-port",
            id="self without a port",
        ),
        pytest.param(
            (*SELF, "--webhook-cert-secret", "ns/tls"),
            "needs --webhook-service / BFF_WEBHOOK_SERVICE, --webhook-configuration",
            id="self with only the Secret",
        ),
        pytest.param(
            ("--webhook-port", "0", *SELF_FLAGS),
            "--webhook-cert-secret / BFF_WEBHOOK_CERT_SECRET needs --webhook-cert-source self",
            id="files mode with self-only flags",
        ),
        pytest.param(
            ("--webhook-configuration", "bff"),
            "--webhook-configuration / BFF_WEBHOOK_CONFIGURATION needs --webhook-cert-source self",
            id="a self-only flag alone",
        ),
    ],
)
def test_bad_webhook_certificate_flags(
    kubeconfig: Path, args: tuple[str, ...], expected: str
) -> None:
    line = one_line_exit_2(run("serve", "--kubeconfig", str(kubeconfig), "--port", "0", *args))
    assert expected in line


def test_self_mode_with_tls_files(kubeconfig: Path, tmp_path: Path) -> None:
    cert, key = _pem_pair(tmp_path, "hook")
    result = run("serve", "--kubeconfig", str(kubeconfig), "--port", "0", *SELF, *SELF_FLAGS,
                 "--webhook-tls-cert", str(cert), "--webhook-tls-key", str(key))  # fmt: skip
    assert "do not go with --webhook-cert-source self" in one_line_exit_2(result)


def test_self_mode_cannot_reach_the_cluster(kubeconfig: Path) -> None:
    # Nothing listens at the kubeconfig's address: the Secret cannot be read.
    line = one_line_exit_2(
        run("serve", "--kubeconfig", str(kubeconfig), "--port", "0", *SELF, *SELF_FLAGS)
    )
    assert line.startswith("harvester-upgrade-bff: error: cannot get Secret ns/tls: ")
