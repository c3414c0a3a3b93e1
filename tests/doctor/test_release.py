"""bff.doctor.release: the Deployment's settings read as serve reads them."""

from __future__ import annotations

import pytest

from bff.doctor.release import container_args, read_cache, self_certificates
from bff.kube.permissions import SelfCertificates
from bff.settings import OFF_WORDS, ON_WORDS


@pytest.mark.parametrize("word", [*ON_WORDS, "YES", " On "])
def test_every_word_serve_takes_for_on_is_on(word: str) -> None:
    assert read_cache({"BFF_READ_CACHE": word}, rancher=True) is True


@pytest.mark.parametrize("word", [*OFF_WORDS, "No"])
def test_every_word_serve_takes_for_off_is_off(word: str) -> None:
    assert read_cache({"BFF_READ_CACHE": word}, rancher=False) is False


def test_unset_is_serves_default_per_mode() -> None:
    assert read_cache({}, rancher=False) is True
    assert read_cache({}, rancher=True) is False


CHART_ARGS = {
    "--webhook-cert-source": "self",
    "--webhook-cert-secret": "harvester-system/bff-webhook-tls",
    "--webhook-service": "harvester-system/bff",
    "--webhook-configuration": "bff",
}


def test_self_mode_is_read_from_the_arguments_or_the_variables() -> None:
    want = SelfCertificates("harvester-system", "bff-webhook-tls", "bff")
    assert self_certificates(CHART_ARGS, {}) == want
    env = {"BFF_WEBHOOK_CERT_SOURCE": "self", "BFF_WEBHOOK_CERT_SECRET":
           "harvester-system/bff-webhook-tls", "BFF_WEBHOOK_CONFIGURATION": "bff"}  # fmt: skip
    assert self_certificates({}, env) == want


def test_files_mode_and_an_incomplete_self_mode_need_nothing() -> None:
    assert self_certificates({}, {}) is None
    assert self_certificates({**CHART_ARGS, "--webhook-cert-source": "files"}, {}) is None
    assert self_certificates({"--webhook-cert-source": "self"}, {}) is None


def test_the_containers_arguments_by_flag() -> None:
    deployment = {"spec": {"template": {"spec": {"containers": [
        {"name": "bff", "args": [f"{k}={v}" for k, v in CHART_ARGS.items()] + ["--quiet"]},
    ]}}}}  # fmt: skip
    assert container_args(deployment) == CHART_ARGS
    assert container_args(None) == {}
