"""bff.kube.config: where the clusters are. A kubeconfig (the flag, else KUBECONFIG) or
the in-cluster account and nothing else, each failure one sentence; the proxy
decided once; the callers' copy without any credential; Rancher's clusters."""

from __future__ import annotations

from pathlib import Path

import pytest

from bff.kube import config
from bff.sandbox.kubeconfig import write_kubeconfig


def _kubeconfig(tmp_path: Path, url: str = "https://127.0.0.1:6443") -> Path:
    return write_kubeconfig(tmp_path / "kubeconfig", url, token="sandbox-bff")


@pytest.fixture(autouse=True)
def _no_ambient_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    # The machine's own settings must not decide these tests.
    for name in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT",
                 "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY",
                 "no_proxy"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)


async def test_the_flag_names_the_kubeconfig(tmp_path: Path) -> None:
    path = _kubeconfig(tmp_path)
    loaded = await config.load_configuration(config.UpstreamOptions(kubeconfig=str(path)))
    assert loaded.host == "https://127.0.0.1:6443"
    assert loaded.connection_pool_maxsize == 32
    assert (await loaded.auth_settings())["BearerToken"]["value"] == "Bearer sandbox-bff"
    assert loaded.proxy in (None, "")


async def test_kubeconfig_from_the_environment_when_no_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(_kubeconfig(tmp_path, "https://127.0.0.2:6443")))
    loaded = await config.load_configuration(config.UpstreamOptions(pool_size=5))
    assert loaded.host == "https://127.0.0.2:6443"
    assert loaded.connection_pool_maxsize == 5


async def test_neither_is_one_sentence_about_the_service_account() -> None:
    with pytest.raises(config.ClusterConfigNotFound) as missing:
        await config.load_configuration(config.UpstreamOptions())
    message = str(missing.value)
    assert message.startswith("cannot load cluster configuration from in-cluster service account:")
    assert "\n" not in message


async def test_a_file_that_is_not_yaml_says_where(tmp_path: Path) -> None:
    bad = tmp_path / "kubeconfig"
    bad.write_text("apiVersion: v1\nclusters: [\n")
    with pytest.raises(config.ClusterConfigNotFound) as refused:
        await config.load_configuration(config.UpstreamOptions(kubeconfig=str(bad)))
    assert str(refused.value).startswith(
        f"cannot load cluster configuration from kubeconfig {str(bad)!r}: "
        "it is not a valid kubeconfig file (line "
    )


async def test_the_proxy_is_decided_once_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    path = _kubeconfig(tmp_path)
    loaded = await config.load_configuration(config.UpstreamOptions(kubeconfig=str(path)))
    assert loaded.proxy == "http://127.0.0.1:3128"
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    bypassing = await config.load_configuration(config.UpstreamOptions(kubeconfig=str(path)))
    assert not bypassing.proxy


async def test_the_callers_copy_has_no_credential_and_the_original_keeps_its_own(
    tmp_path: Path,
) -> None:
    path = _kubeconfig(tmp_path)
    own = await config.load_configuration(config.UpstreamOptions(kubeconfig=str(path)))
    anon = config.anonymous_copy(own)
    assert await anon.auth_settings() == {}
    assert await own.auth_settings()  # the BFF's own token is still there
    assert (anon.host, anon.ssl_ca_cert, anon.verify_ssl) == (
        own.host,
        own.ssl_ca_cert,
        own.verify_ssl,
    )


def test_a_rancher_cluster_is_its_url_verified_and_credential_less() -> None:
    rancher = config.RancherUpstream("https://rancher.example.com", "/ca.pem", ("local",))
    made = config.rancher_configuration(rancher, "/k8s/clusters/local", pool_size=4)
    assert made.host == "https://rancher.example.com/k8s/clusters/local"
    assert made.ssl_ca_cert == "/ca.pem"
    assert made.verify_ssl is True
    assert made.api_key == {}
    assert made.connection_pool_maxsize == 4
