"""The command line: help for every flag, one-line errors, no silent sandbox.

These run the real entry point (``python -m bff``) in a subprocess.
"""

from __future__ import annotations

import pytest

from bff.cli import KINDS
from bff.settings import Command, options
from tests.support.processes import one_line_exit_2, run


@pytest.mark.parametrize("command", list(Command))
def test_help_documents_every_flag_of_the_command_and_its_variable(command: Command) -> None:
    result = run(command, "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    rows = options(command, KINDS[command])
    assert rows or command is Command.DEMO
    for option in rows.values():
        assert option.flag in text, option.flag
        assert option.env in text, option.env
    own = {option.flag for option in rows.values()}
    every = {o.flag: o for kind in set(KINDS.values()) for o in options(kind=kind).values()}
    for option in every.values():
        if option.flag not in own:
            assert f"{option.flag} " not in text, f"{option.flag} is not a {command} flag"


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
    assert needle in one_line_exit_2(run("serve", *args, env=env))


def test_serve_without_cluster_config_exits_and_says_how_to_fix_it() -> None:
    result = run("serve", "--port", "0")
    assert result.returncode == 2
    assert "--kubeconfig" in result.stderr
    assert "sandbox" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("command", "args", "env", "needle"),
    [
        ("sandbox", ["--kube-port", "x"], {}, "--kube-port / BFF_KUBE_PORT"),
        ("sandbox", [], {"BFF_CONTROLLER_INTERVAL": "-1"}, "--controller-interval / BFF_CONT"),
        ("bench", ["--rounds", "1"], {}, "--rounds / BFF_BENCH_ROUNDS"),
        ("bench", [], {"BFF_BENCH_CONNECTIONS": "many"}, "--connections / BFF_BENCH_CONNECTIONS"),
        ("bench", [], {"BFF_BENCH_QUICK": "maybe"}, "--quick / BFF_BENCH_QUICK"),
        ("demo", [], {"BFF_LOG_LEVEL": "loud"}, "--log-level / BFF_LOG_LEVEL"),
    ],
)
def test_every_command_fails_a_bad_value_the_same_way(
    command: str, args: list[str], env: dict[str, str], needle: str
) -> None:
    line = one_line_exit_2(run(command, *args, env=env))
    assert line.startswith("harvester-upgrade-bff: error: invalid ")
    assert needle in line
