"""``harvester-upgrade-bff doctor`` against ``harvester-upgrade-bff sandbox``, and its bad starts.

The emulator answers reads, access reviews and dry-run writes (consulting the BFF's
webhook like a real API server), but serves no CRDs and no webhook configurations:
doctor says so (skipped), still proves the guard is called with its dry-run write,
and exits 0. Without the webhook the same dry-run comes back with status removed:
exit 1. Bad flags and a missing cluster configuration: exit 2, one line.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.processes import banner_urls, command, one_line_exit_2, run, started


def _doctor(kubeconfig: Path, *extra: str) -> tuple[int, dict[str, dict[str, str]]]:
    done = run("doctor", "--kubeconfig", str(kubeconfig), "--json", *extra)
    assert "Traceback" not in done.stderr, done.stderr
    document = json.loads(done.stdout)
    return done.returncode, {c["id"]: c for c in document["checks"]}


def _sandbox(kubeconfig: Path, *extra: str) -> list[str]:
    return command("sandbox", "--port", "0", "--kube-port", "0", "--write-kubeconfig",
                   str(kubeconfig), *extra)  # fmt: skip


def test_the_sandbox_with_its_guard_is_healthy(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "sandbox.kubeconfig"
    with started(_sandbox(kubeconfig, "--webhook-port", "0")) as child:
        bff_url, _ = banner_urls(child.banner())
        status, checks = _doctor(kubeconfig, "--url", bff_url)
    assert status == 0, checks
    assert {k: c["status"] for k, c in checks.items()} == {
        "crds": "skipped",
        "webhook.registered": "skipped",
        "webhook.ca-bundle": "skipped",
        "webhook.called": "ok",
        "route": "ok",
        "permissions": "ok",
        "upgrades": "ok",
    }
    assert "serves no CustomResourceDefinitions" in checks["crds"]["summary"]
    assert "serves no webhook configurations" in checks["webhook.registered"]["summary"]


def test_a_guard_in_deny_mode_is_called_too(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "sandbox.kubeconfig"
    deny = (
        "upgrades.harvesterhci.io/v1beta1;owner=system:serviceaccount:harvester-system:harvester;"
        "mode=deny"
    )
    with started(_sandbox(kubeconfig, "--webhook-port", "0", "--guard-resource", deny)) as child:
        child.banner()
        status, checks = _doctor(kubeconfig)
    called = checks["webhook.called"]
    assert called["status"] == "ok", called
    assert called["summary"].endswith("was refused by the guard (deny mode)")
    assert status == 0, checks


def test_the_sandbox_without_its_guard_shows_the_wipe(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "sandbox.kubeconfig"
    with started(_sandbox(kubeconfig)) as child:
        child.banner()
        status, checks = _doctor(kubeconfig)
    assert status == 1
    assert checks["webhook.called"]["summary"].startswith(
        "the API server did not call the guard: a dry-run PUT of Upgrade hvst-upgrade-7xn6v"
    )


def test_no_cluster_configuration_exits_2(tmp_path: Path) -> None:
    line = one_line_exit_2(run("doctor", env={"HOME": str(tmp_path)}))
    assert line.startswith("harvester-upgrade-bff: error: cannot load cluster configuration")
    assert "--kubeconfig FILE" in line


def test_bad_flags_exit_2(tmp_path: Path) -> None:
    line = one_line_exit_2(run("doctor", "--url", "ftp://example.com"))
    assert "invalid --url / BFF_DOCTOR_URL value" in line
    line = one_line_exit_2(run("doctor", "--release", "Not_A_Name"))
    assert "invalid --release / BFF_DOCTOR_RELEASE value" in line


def test_a_kubeconfig_whose_ca_is_not_a_certificate_exits_2(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("not a certificate\n")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:9', "
        f"certificate-authority: '{ca}'}}}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )
    line = one_line_exit_2(run("doctor", "--kubeconfig", str(kubeconfig)))
    assert line.startswith("harvester-upgrade-bff: error: cannot use the kubeconfig's TLS files")
