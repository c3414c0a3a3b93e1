"""bff.settings, bff.sandbox.settings, bff.bench.settings: each command's table of flags,
``serve``'s the product's and the others extending it, read one way."""

from __future__ import annotations

import argparse
from dataclasses import fields

import pytest

from bff.bench.settings import BenchSettings
from bff.cli import KINDS
from bff.doctor.settings import DoctorSettings
from bff.identities import AuthMode
from bff.logs import LogFormat
from bff.sandbox.settings import SandboxSettings
from bff.settings import (
    Command,
    Option,
    Settings,
    SettingsError,
    add_arguments,
    from_sources,
    options,
)

#: A value each row must refuse (a row whose parser accepts any text has none).
BAD = {
    "port": "http",
    "base_path": "no-slash",
    "namespace": "Not_A_Namespace",
    "auth_mode": "trust-me",
    "kubeconfig": "/nonexistent/kubeconfig",
    "allowed_origins": "*",
    "trusted_proxies": "not-a-cidr",
    "max_body_bytes": "-1",
    "upstream_connect_timeout": "0",
    "upstream_read_timeout": "soon",
    "upstream_pool_size": "0",
    "conflict_retries": "1.5",
    "token_review_ttl": "-1",
    "shutdown_timeout": "forever",
    "keepalive_timeout": "0",
    "header_timeout": "-1",
    "idle_timeout": "later",
    "max_connections": "-3",
    "webhook_max_connections": "-1",
    "tls_handshake_timeout": "0",
    "max_streams": "0",
    "max_streams_per_caller": "many",
    "stream_write_timeout": "-2",
    "stream_recheck_interval": "0",
    "log_format": "xml",
    "log_level": "loud",
    "tls_cert": "/nonexistent/cert.pem",
    "tls_key": "/nonexistent/key.pem",
    "webhook_port": "99999",
    "webhook_tls_cert": "/nonexistent/cert.pem",
    "webhook_tls_key": "/nonexistent/key.pem",
    "trusted_writers": "group:",
    "guard_resources": "widgets.example.com/v1",
    "kube_port": "65536",
    "controller_interval": "-0.5",
    "write_kubeconfig": "/nonexistent-dir/kubeconfig",
    "bench_duration": "0.5",
    "bench_quick": "maybe",
    "bench_real": "sometimes",
    "bench_rounds": "1",
    "bench_connections": "0",
    "bench_threads": "many",
    "bench_load_generator": "ab",
    "bench_kubeconfig": "/nonexistent/kubeconfig",
    "bench_namespace": "No",
    "read_cache": "maybe",
    "rancher_url": "http://rancher.example.com",
    "rancher_ca_bundle": "/nonexistent/ca.pem",
    "clusters": "Not_A_Cluster",
    "default_cluster": "-local",
    "rancher_port": "70000",
    "doctor_namespace": "Not_A_Namespace",
    "doctor_upgrades_namespace": "-x",
    "doctor_release": "Not_A_Release",
    "doctor_url": "ftp://harvester.example.com",
    "doctor_json": "maybe",
    "metrics_port": "-1",
    "webhook_cert_source": "cert-manager",
    "webhook_cert_secret": "no-slash",
    "webhook_service": "Ns/Name",
    "webhook_configuration": "Not A Name",
    "webhook_cert_check_interval": "0",
}
FREE_TEXT = {"host", "context", "bench_json"}
KIND_LIST = [Settings, SandboxSettings, BenchSettings, DoctorSettings]


def _all_rows() -> dict[str, Option]:
    return {name: row for kind in KIND_LIST for name, row in options(kind=kind).items()}


def test_every_field_is_a_row_of_the_table() -> None:
    for kind in KIND_LIST:
        assert set(options(kind=kind)) == {f.name for f in fields(kind)}
    rows = _all_rows()
    assert set(BAD) | FREE_TEXT == set(rows), "each row has a bad value to test with"
    envs = [o.env for o in rows.values()]
    assert len(set(envs)) == len(envs)
    assert all(env.startswith("BFF_") for env in envs)
    for command in Command:
        flags = [o.flag for o in options(command, KINDS[command]).values()]
        assert len(set(flags)) == len(flags), command
    assert set(KINDS.values()) == set(KIND_LIST)


def test_each_command_owns_its_rows() -> None:
    """serve's table is the product's: a sandbox or bench row lives in its own package."""
    assert all(Command.SERVE in row.commands for row in options().values())
    for kind, command in (
        (SandboxSettings, Command.SANDBOX),
        (BenchSettings, Command.BENCH),
        (DoctorSettings, Command.DOCTOR),
    ):
        own = set(options(kind=kind)) - set(options())
        assert own, kind
        assert all(options(kind=kind)[name].commands == {command} for name in own)


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_value_names_the_flag_and_the_variable(name: str) -> None:
    row = _all_rows()[name]
    (command,) = sorted(row.commands)[:1]
    for source in ({name: BAD[name]}, {}):
        environ = {} if source else {row.env: BAD[name]}
        with pytest.raises(SettingsError) as refused:
            from_sources(source, environ, command=command, kind=KINDS[command])
        message = str(refused.value)
        assert f"{row.flag} / {row.env}" in message
        assert "\n" not in message


def test_defaults_without_anything() -> None:
    for command in Command:
        assert from_sources({}, {}, command=command, kind=KINDS[command]) == KINDS[command]()


def test_flag_wins_over_environment() -> None:
    settings = from_sources({"port": "9000"}, {"BFF_PORT": "8000", "BFF_NAMESPACE": "other"})
    assert settings.port == 9000
    assert settings.namespace == "other"


def test_a_command_reads_only_its_own_variables() -> None:
    environ = {"BFF_BENCH_ROUNDS": "many", "BFF_KUBE_PORT": "x", "BFF_PORT": "9000"}
    settings = from_sources({}, environ, command=Command.SERVE)
    assert settings.port == 9000
    assert not hasattr(settings, "bench_rounds"), "serve's settings hold no bench row"
    with pytest.raises(SettingsError, match="BFF_BENCH_ROUNDS"):
        from_sources({}, environ, command=Command.BENCH, kind=BenchSettings)
    # The sandbox builds its own cluster: a kubeconfig for serve never reaches it.
    sandbox = from_sources({}, {"KUBECONFIG": __file__}, command=Command.SANDBOX,
                           kind=SandboxSettings)  # fmt: skip
    assert sandbox.kubeconfig is None


def test_values_are_parsed_to_their_types() -> None:
    settings = from_sources(
        {"auth_mode": "impersonate", "allowed_origins": "https://A.example.com, http://b:8080"},
        {
            "BFF_LOG_FORMAT": "json",
            "BFF_TRUSTED_PROXIES": "10.0.0.1/8",
            "BFF_UPSTREAM_READ_TIMEOUT": "2.5",
        },
    )
    assert settings.auth_mode is AuthMode.IMPERSONATE
    assert settings.log_format is LogFormat.JSON
    assert settings.allowed_origins == ("https://a.example.com", "http://b:8080")
    assert settings.trusted_proxies == ("10.0.0.0/8",)
    assert settings.upstream_read_timeout == 2.5
    bench = from_sources({}, {"BFF_BENCH_QUICK": "1", "BFF_BENCH_ROUNDS": "7"},
                         command=Command.BENCH, kind=BenchSettings)  # fmt: skip
    assert (bench.bench_quick, bench.bench_rounds) == (True, 7)


def test_kubeconfig_variable_is_read() -> None:
    settings = from_sources({}, {"KUBECONFIG": __file__})
    assert settings.kubeconfig == __file__
    assert from_sources({}, {"KUBECONFIG": ""}).kubeconfig is None


def test_base_path_is_normalised() -> None:
    assert from_sources({"base_path": "/harvester-upgrade-bff/"}, {}).base_path == (
        "/harvester-upgrade-bff"
    )
    assert from_sources({"base_path": "/"}, {}).base_path == ""


def test_cross_field_rules() -> None:
    with pytest.raises(SettingsError, match="--tls-cert and --tls-key"):
        from_sources({"tls_cert": __file__}, {})
    with pytest.raises(SettingsError, match="at most 10 seconds"):
        from_sources({"token_review_ttl": "11"}, {})


def test_a_switch_takes_no_value_and_its_variable_takes_one_or_zero() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser, Command.BENCH, BenchSettings)
    bench = BenchSettings
    assert from_sources(parser.parse_args(["--quick"]), {}, command=Command.BENCH,
                        kind=bench).bench_quick  # fmt: skip
    assert not from_sources(parser.parse_args([]), {"BFF_BENCH_QUICK": "0"},
                            command=Command.BENCH, kind=bench).bench_quick  # fmt: skip


def test_every_on_off_setting_takes_the_same_words() -> None:
    """``--read-cache`` and a bench switch's variable share one parser: the same words."""
    parser = argparse.ArgumentParser()
    add_arguments(parser, Command.BENCH, BenchSettings)
    args = parser.parse_args([])
    words = {"on": True, "ON": True, "true": True, "yes": True, "1": True, " on ": True,
             "off": False, "False": False, "no": False, "0": False}  # fmt: skip
    for word, meant in words.items():
        assert from_sources({"read_cache": word}, {}).read_cache is meant, word
        quick = from_sources(args, {"BFF_BENCH_QUICK": word}, command=Command.BENCH,
                             kind=BenchSettings).bench_quick  # fmt: skip
        assert quick is meant, word
    for word in ("", "maybe", "enabled", "2"):
        with pytest.raises(SettingsError, match="must be on or off"):
            from_sources({"read_cache": word}, {})
        with pytest.raises(SettingsError, match="must be on or off"):
            from_sources(args, {"BFF_BENCH_QUICK": word}, command=Command.BENCH, kind=BenchSettings)
