"""The command line: help for every flag, one-line errors, no silent sandbox.

These run the real entry point (``python -m bff``) in a subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bff.settings import OPTIONS, Settings, SettingsError, from_sources


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("BFF_") and k != "KUBECONFIG"}
    base.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bff", *args],
        capture_output=True,
        text=True,
        env=base,
        timeout=60,
        check=False,
    )


def test_serve_help_documents_every_flag_and_its_variable() -> None:
    result = run("serve", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for option in OPTIONS:
        assert option.flag in text
        assert option.env in text


def test_sandbox_help_documents_its_own_flags() -> None:
    result = run("sandbox", "--help")
    assert result.returncode == 0
    for flag in ("--port", "--kube-port", "--controller-interval", "BFF_KUBE_PORT"):
        assert flag in result.stdout


@pytest.mark.parametrize(
    ("args", "env", "needle"),
    [
        (["--port", "http"], {}, "--port / BFF_PORT"),
        ([], {"BFF_PORT": "99999"}, "--port / BFF_PORT"),
        (["--auth-mode", "trust-me"], {}, "--auth-mode / BFF_AUTH_MODE"),
        (["--allowed-origin", "*"], {}, "--allowed-origin / BFF_ALLOWED_ORIGIN"),
        (["--kubeconfig", "/nonexistent/kubeconfig"], {}, "--kubeconfig / BFF_KUBECONFIG"),
        (["--log-format", "xml"], {}, "--log-format / BFF_LOG_FORMAT"),
        (["--token-review-ttl", "60"], {}, "at most 10 seconds"),
        (["--tls-cert", __file__], {}, "--tls-cert and --tls-key"),
    ],
)
def test_bad_values_fail_at_startup_with_one_line(
    args: list[str], env: dict[str, str], needle: str
) -> None:
    result = run("serve", *args, env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert needle in lines[0]


def test_serve_without_cluster_config_exits_and_says_how_to_fix_it() -> None:
    result = run("serve", "--port", "0")
    assert result.returncode == 2
    assert "--kubeconfig" in result.stderr
    assert "sandbox" in result.stderr
    assert "Traceback" not in result.stderr


def test_flag_wins_over_environment() -> None:
    settings = from_sources({"port": "9000"}, {"BFF_PORT": "8000", "BFF_NAMESPACE": "other"})
    assert settings.port == 9000
    assert settings.namespace == "other"


def test_defaults_without_anything() -> None:
    assert from_sources({}, {}) == Settings()


def test_kubeconfig_variable_is_read() -> None:
    settings = from_sources({}, {"KUBECONFIG": __file__})
    assert settings.kubeconfig == __file__


def test_base_path_is_normalised() -> None:
    assert from_sources({"base_path": "/harvester-upgrade-bff/"}, {}).base_path == (
        "/harvester-upgrade-bff"
    )
    with pytest.raises(SettingsError):
        from_sources({"base_path": "no-slash"}, {})
