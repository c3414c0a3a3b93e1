"""The Helm chart, the one install path: every combination renders, lints and refuses.

Covered (helm from tests/support/helm.py; these tests skip with one line
without it, and fail instead with ``BFF_REQUIRE_HELM=1``, as CI sets):

- every ci/ combination (ui x guard x certificate source, impersonate, metrics)
  renders and passes ``helm lint --strict``;
- one-line refusals: an unset image, cert-manager's API missing with
  ``source: certManager`` (unless ``skipCertManagerCheck``), and what the BFF
  refuses at start;
- two releases collide nowhere (cluster-scoped names, names outside the release
  namespace, selectors);
- the read cache's Role is in the namespace the BFF reads;
- image registry, Rancher's global registry, the tag default;
- each certificate source's wiring: cert-manager's injection, the chart's CA
  signing its serving certificate into caBundle, and the BFF's own (the serve
  flags, an absent caBundle, the narrowest RBAC);
- metrics: the separate port, ServiceMonitor and PrometheusRule;
- values.schema.json against every ci/ file, the install guide's examples, and
  bad values; questions.yaml against values.yaml.
The real installs are in tests/realapi/test_chart_install.py.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from cryptography import x509

from tests.support import chart
from tests.support.helm import HelmUnavailable, ensure_helm

REQUIRED = os.environ.get("BFF_REQUIRE_HELM") == "1"
ROOT = Path(__file__).resolve().parents[1]
IMAGE = ("--set", "image.repository=registry.example.com/harvester-upgrade-bff")
SCHEMA = json.loads((chart.CHART / "values.schema.json").read_text(encoding="utf-8"))
VALUES = yaml.safe_load((chart.CHART / "values.yaml").read_text(encoding="utf-8"))
Obj = dict[str, Any]


@pytest.fixture(scope="module")
def helm() -> Path:
    try:
        return ensure_helm()
    except HelmUnavailable as exc:
        if REQUIRED:
            pytest.fail(f"BFF_REQUIRE_HELM=1 but {exc}")
        pytest.skip(str(exc))


def rendered(helm: Path, *args: str, **kwargs: Any) -> list[Obj]:
    done = chart.template(helm, *args, **kwargs)
    assert done.returncode == 0, done.stderr
    return chart.documents(done.stdout)


def refusal(helm: Path, *args: str, **kwargs: Any) -> str:
    """The one line helm prints for a refused render."""
    done = chart.template(helm, *args, **kwargs)
    assert done.returncode != 0, "rendered although it must be refused"
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, done.stderr
    # Besides it, only helm's own hint for template errors.
    rest = [ln for ln in done.stderr.splitlines() if ln.strip() and not ln.startswith("Error:")]
    assert rest in ([], ["Use --debug flag to render out invalid YAML"]), done.stderr
    return errors[0]


def kind(objects: list[Obj], kind_: str) -> list[Obj]:
    return [o for o in objects if o["kind"] == kind_]


def deployment(objects: list[Obj]) -> Obj:
    (found,) = kind(objects, "Deployment")
    return found


def bff_container(objects: list[Obj]) -> Obj:
    (found,) = deployment(objects)["spec"]["template"]["spec"]["containers"]
    return found  # type: ignore[no-any-return]


# --- every combination ------------------------------------------------------


def test_the_combinations_cover_ui_guard_and_certificate_source() -> None:
    names = set(chart.combinations())
    for ui in ("harvester", "rancher", "none"):
        for guard in ("noguard", "certmanager", "chart", "self"):
            assert f"{ui}-{guard}" in names
    assert {"none-impersonate", "metrics"} <= names


@pytest.mark.parametrize("name", chart.combinations())
def test_every_combination_renders_and_lints_strict(helm: Path, name: str) -> None:
    namespace = chart.namespace_of(name)
    objects = rendered(helm, "--values", str(chart.values_file(name)), namespace=namespace)
    assert kind(objects, "Deployment")
    # helm lint has no --api-versions: cert-manager's check is lifted with its value.
    done = subprocess.run(
        [str(helm), "lint", str(chart.CHART), "--strict", "--namespace", namespace,
         "--values", str(chart.values_file(name)),
         "--set", "webhook.certificates.skipCertManagerCheck=true"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


# --- one-line refusals --------------------------------------------------------


def test_an_unset_image_is_refused_in_one_line(helm: Path) -> None:
    line = refusal(helm)
    assert "image.repository is required" in line
    assert "registry.example.com/harvester-upgrade-bff" in line


def test_certmanager_source_needs_cert_managers_api(helm: Path) -> None:
    guard = ("--set", "webhook.enabled=true", *IMAGE)
    line = refusal(helm, *guard, capabilities=())
    assert "cert-manager.io/v1" in line
    assert "skipCertManagerCheck" in line
    # Served: it renders; not served but overridden: it renders too.
    assert kind(rendered(helm, *guard, capabilities=("cert-manager.io/v1",)), "Certificate")
    skipped = ("--set", "webhook.certificates.skipCertManagerCheck=true")
    assert kind(rendered(helm, *guard, *skipped, capabilities=()), "Certificate")
    # The other sources never ask for it.
    for source in ("chart", "self"):
        rendered(helm, *guard, "--set", f"webhook.certificates.source={source}", capabilities=())


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ("ui=harvester,authMode=impersonate", "needs authMode: passthrough"),
        ("ui=rancher,rancher.hostname=r.example.com", "needs rancher.clusters"),
        ("ui=rancher,rancher.clusters={c-m-1}", "needs rancher.hostname"),
        ("ui=harvester,rancher.defaultCluster=c-m-other", "one of rancher.clusters"),
        ("webhook.enabled=true,webhook.port=8080", "webhook.port must differ"),
        ("metrics.port=8080", "metrics.port must differ from the API port"),
        ("webhook.enabled=true,metrics.port=9443", "metrics.port must differ from webhook.port"),
    ],
)
def test_the_chart_refuses_what_the_bff_refuses(helm: Path, values: str, message: str) -> None:
    assert message in refusal(helm, *IMAGE, "--set", values)


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ("ui=other", "ui"),
        ("authMode=other", "authMode"),
        ("webhook.certificates.source=vault", "source"),
        ("logFormat=xml", "logFormat"),
        ("webhook.port=70000", "port"),
        ("replicas=0", "replicas"),
    ],
)
def test_helm_applies_the_schema(helm: Path, values: str, field: str) -> None:
    done = chart.template(helm, *IMAGE, "--set", values)
    assert done.returncode != 0
    assert "schema" in done.stderr, done.stderr
    assert field in done.stderr, done.stderr


# --- names ---------------------------------------------------------------------


def _outside_release_namespace(objects: list[Obj], namespace: str) -> set[tuple[str, str, str]]:
    return {
        (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"])
        for o in objects
        if o["metadata"].get("namespace", "") != namespace
    }


@pytest.mark.parametrize("name", ["harvester-self", "none-impersonate", "none-chart"])
def test_two_releases_collide_nowhere(helm: Path, name: str) -> None:
    values = ("--values", str(chart.values_file(name)))
    first = rendered(helm, *values, release="bff-a", namespace="harvester-system")
    second = rendered(helm, *values, release="bff-b", namespace="harvester-system")
    outside_a = _outside_release_namespace(first, "harvester-system")
    outside_b = _outside_release_namespace(second, "harvester-system")
    # Cluster-scoped, or in cattle-system / the Upgrades' namespace.
    assert outside_a
    assert outside_b
    assert not outside_a & outside_b
    ids_a = {(o["kind"], o["metadata"]["name"]) for o in first}
    ids_b = {(o["kind"], o["metadata"]["name"]) for o in second}
    assert not ids_a & ids_b  # in one namespace too
    selectors = [deployment(d)["spec"]["selector"]["matchLabels"] for d in (first, second)]
    assert selectors[0] != selectors[1]


def test_the_default_release_keeps_the_documented_names(helm: Path) -> None:
    objects = rendered(helm, *IMAGE)
    assert {o["metadata"]["name"] for o in objects} == {
        "harvester-upgrade-bff",
        "harvester-upgrade-bff-steve",
    }
    overridden = rendered(helm, *IMAGE, "--set", "fullnameOverride=guard", release="x")
    assert deployment(overridden)["metadata"]["name"] == "guard"


def test_the_read_caches_role_is_where_the_bff_reads(helm: Path) -> None:
    objects = rendered(
        helm, *IMAGE, "--set", "ui=none,upgradesNamespace=upgrades-here", namespace="tools"
    )
    (role,) = kind(objects, "Role")
    (binding,) = kind(objects, "RoleBinding")
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == "upgrades-here"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "harvester-upgrade-bff", "namespace": "tools"}
    ]
    env = {e["name"]: e["value"] for e in bff_container(objects)["env"]}
    assert env["BFF_NAMESPACE"] == "upgrades-here"


# --- image and pod settings -------------------------------------------------------


def test_image_registry_global_registry_and_tag(helm: Path) -> None:
    def image(*args: str) -> str:
        return str(bff_container(rendered(helm, *IMAGE, *args))["image"])

    assert image() == "registry.example.com/harvester-upgrade-bff:0.1.0"
    assert image("--set", "image.tag=1.2.3") == "registry.example.com/harvester-upgrade-bff:1.2.3"
    rancher = ("--set", "global.cattle.systemDefaultRegistry=mirror.local:5000")
    assert image(*rancher).startswith("mirror.local:5000/registry.example.com/")
    own = ("--set", "image.registry=own.local")
    assert image(*rancher, *own).startswith("own.local/registry.example.com/")


def test_pod_settings_reach_the_pod(helm: Path, tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(
        yaml.safe_dump({
            "imagePullSecrets": [{"name": "pull"}],
            "podAnnotations": {"a.example.com/x": "1"},
            "podLabels": {"team": "ops", "app.kubernetes.io/instance": "stolen"},
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}],
            "priorityClassName": "high",
            "resources": {"requests": {"cpu": "10m"}},
        })
    )  # fmt: skip
    objects = rendered(helm, *IMAGE, "--values", str(values))
    pod = deployment(objects)["spec"]["template"]
    assert pod["spec"]["imagePullSecrets"] == [{"name": "pull"}]
    assert pod["metadata"]["annotations"] == {"a.example.com/x": "1"}
    assert pod["metadata"]["labels"]["team"] == "ops"
    # The selector's labels win: the pods stay selected.
    assert pod["metadata"]["labels"]["app.kubernetes.io/instance"] == "harvester-upgrade-bff"
    assert pod["spec"]["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["spec"]["tolerations"][0]["key"] == "k"
    assert pod["spec"]["priorityClassName"] == "high"
    assert bff_container(objects)["resources"]["requests"]["cpu"] == "10m"
    # The preferred anti-affinity is the default, and affinity replaces it.
    default = deployment(rendered(helm, *IMAGE))["spec"]["template"]["spec"]["affinity"]
    assert "preferredDuringSchedulingIgnoredDuringExecution" in default["podAntiAffinity"]
    replaced = rendered(helm, *IMAGE, "--set", "affinity.nodeAffinity.x=1")
    assert deployment(replaced)["spec"]["template"]["spec"]["affinity"] == {
        "nodeAffinity": {"x": 1}
    }


def test_the_guard_runs_system_cluster_critical_by_default(helm: Path) -> None:
    objects = rendered(helm, "--values", str(chart.values_file("harvester-self")))
    assert deployment(objects)["spec"]["template"]["spec"]["priorityClassName"] == (
        "system-cluster-critical"
    )
    assert "priorityClassName" not in deployment(rendered(helm, *IMAGE))["spec"]["template"]["spec"]


# --- the certificate sources ----------------------------------------------------------


def _configuration(objects: list[Obj]) -> Obj:
    (configuration,) = kind(objects, "MutatingWebhookConfiguration")
    return configuration


def test_the_sources_differ_only_in_how_the_certificate_comes(helm: Path) -> None:
    hooks = {}
    for source in ("certmanager", "chart", "self"):
        (hook,) = _configuration(chart.render(helm, f"harvester-{source}"))["webhooks"]
        hook["clientConfig"].pop("caBundle", None)
        hooks[source] = hook
    assert hooks["certmanager"] == hooks["chart"] == hooks["self"]


def test_chart_source_signs_its_certificate_and_fills_ca_bundle(helm: Path) -> None:
    objects = chart.render(helm, "none-chart")
    (secret,) = kind(objects, "Secret")
    data = {k: base64.b64decode(v) for k, v in secret["data"].items()}
    ca = x509.load_pem_x509_certificate(data["ca.crt"])
    cert = x509.load_pem_x509_certificate(data["tls.crt"])
    cert.verify_directly_issued_by(ca)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "harvester-upgrade-bff.harvester-system.svc" in names.get_values_for_type(x509.DNSName)
    (hook,) = _configuration(objects)["webhooks"]
    assert base64.b64decode(hook["clientConfig"]["caBundle"]) == data["ca.crt"]
    assert "annotations" not in _configuration(objects)["metadata"]
    volumes = deployment(objects)["spec"]["template"]["spec"]["volumes"]
    assert {"name": "webhook-tls", "secret": {"secretName": secret["metadata"]["name"],
            "defaultMode": 0o440}} in volumes  # fmt: skip


def test_self_source_renders_the_bffs_interface_and_the_narrowest_rbac(helm: Path) -> None:
    objects = chart.render(helm, "none-self")
    args = bff_container(objects)["args"]
    assert args == [
        "--webhook-cert-source=self",
        "--webhook-cert-secret=harvester-system/harvester-upgrade-bff-webhook-tls",
        "--webhook-service=harvester-system/harvester-upgrade-bff",
        "--webhook-configuration=harvester-upgrade-bff",
    ]
    env = {e["name"] for e in bff_container(objects)["env"]}
    assert not env & {"BFF_WEBHOOK_TLS_CERT", "BFF_WEBHOOK_TLS_KEY"}
    volumes = deployment(objects)["spec"]["template"]["spec"]["volumes"]
    assert "webhook-tls" not in {v["name"] for v in volumes}
    (hook,) = _configuration(objects)["webhooks"]
    assert "caBundle" not in hook["clientConfig"]  # the BFF fills it; helm upgrade leaves it
    assert not kind(objects, "Secret")
    assert not kind(objects, "Certificate")
    (role,) = (r for r in kind(objects, "Role") if r["metadata"]["name"].endswith("-webhook-cert"))
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"],
         "resourceNames": ["harvester-upgrade-bff-webhook-tls"],
         "verbs": ["get", "update", "patch"]},
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
    ]  # fmt: skip
    (cluster_role,) = kind(objects, "ClusterRole")
    assert cluster_role["rules"] == [
        {"apiGroups": ["admissionregistration.k8s.io"],
         "resources": ["mutatingwebhookconfigurations"],
         "resourceNames": ["harvester-upgrade-bff"], "verbs": ["get", "patch"]},
    ]  # fmt: skip
    for binding in (*kind(objects, "RoleBinding"), *kind(objects, "ClusterRoleBinding")):
        if not binding["metadata"]["name"].endswith("-webhook-cert"):
            continue
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "harvester-upgrade-bff",
             "namespace": "harvester-system"}
        ]  # fmt: skip


def test_a_changed_guard_table_renders_the_configuration_the_bff_builds(
    helm: Path, tmp_path: Path
) -> None:
    """webhook.guardedResources and trustedWriters render the same webhook as
    bff/admission/configuration.py builds from the BFF_GUARD_RESOURCES they render."""
    from bff.admission.configuration import configuration, service_client_config
    from bff.admission.guard import TrustedWriters
    from bff.admission.resources import table_from

    values = tmp_path / "values.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "image": {"repository": "registry.example.com/harvester-upgrade-bff"},
                "webhook": {
                    "enabled": True,
                    "trustedWriters": ["user:alice", "group:ops", "bob"],
                    "guardedResources": [
                        {"group": "example.com", "version": "v1", "resource": "widgets",
                         "owners": ["system:serviceaccount:tools:widget", "carol"],
                         "keep": ["status"], "mode": "deny"},
                        {"group": "harvesterhci.io", "version": "v1beta1",
                         "resource": "upgrades", "owners": ["carol"],
                         "keep": ["status", "finalizers", "ownerReferences"]},
                    ],
                },
            }
        )
    )  # fmt: skip
    documents = rendered(helm, "--values", str(values))
    shipped = _configuration(documents)
    env = {e["name"]: e.get("value") for e in bff_container(documents)["env"]}
    table = table_from(env["BFF_GUARD_RESOURCES"].split(","))
    widgets = table.find("example.com", "widgets")
    assert widgets is not None
    assert widgets.mode == "deny"
    assert len(table) == 2
    trusted = TrustedWriters.parse(env["BFF_TRUSTED_WRITER"].split(","))
    expected = configuration(table, trusted, service_client_config())
    assert shipped["webhooks"] == expected["webhooks"]


def test_rancher_clusters_generate_one_pair_of_paths_each(helm: Path) -> None:
    docs = rendered(
        helm, "--values", str(chart.values_file("rancher-noguard")),
        "--set", "rancher.clusters={c-m-aaaa1111,c-m-bbbb2222},rancher.defaultCluster=c-m-bbbb2222",
        namespace="cattle-system",
    )  # fmt: skip
    ingresses = kind(docs, "Ingress")
    assert [i["metadata"]["name"] for i in ingresses] == [
        "harvester-upgrade-bff",
        "harvester-upgrade-bff-steve",
    ]
    paths = [
        (p["path"], p["pathType"])
        for i in ingresses
        for p in i["spec"]["rules"][0]["http"]["paths"]
    ]
    for cluster in ("c-m-aaaa1111", "c-m-bbbb2222"):
        item = f"/k8s/clusters/{cluster}/v1/harvester/harvesterhci.io.upgrades/harvester-system"
        assert (item, "Prefix") in paths
        assert (item, "Exact") in paths
    env = {e["name"]: e["value"] for e in bff_container(docs)["env"]}
    assert env["BFF_CLUSTERS"] == "c-m-aaaa1111,c-m-bbbb2222"
    assert env["BFF_DEFAULT_CLUSTER"] == "c-m-bbbb2222"


# --- metrics ---------------------------------------------------------------------


def test_metrics_port_service_monitor_and_alerts(helm: Path) -> None:
    from bff.metrics import Metrics

    objects = chart.render(helm, "metrics")
    assert bff_container(objects)["args"] == ["--metrics-port=9090"]
    assert {"name": "metrics", "containerPort": 9090, "protocol": "TCP"} in bff_container(objects)[
        "ports"
    ]
    (service,) = kind(objects, "Service")
    assert {"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"} in service[
        "spec"
    ]["ports"]
    (monitor,) = kind(objects, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    assert all(service["metadata"]["labels"][k] == v
               for k, v in monitor["spec"]["selector"]["matchLabels"].items())  # fmt: skip
    (rule,) = kind(objects, "PrometheusRule")
    exprs = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    restores = exprs["HarvesterUpgradeBffStatusRestored"]["expr"]
    errors = exprs["HarvesterUpgradeBffUpstreamErrors"]
    assert re.fullmatch(r"increase\(bff_status_restores_total\{[^}]*\}\[10m\]\) > 0", restores)
    assert re.fullmatch(r"rate\(bff_upstream_errors_total\{[^}]*\}\[5m\]\) > 0", errors["expr"])
    assert errors["for"]  # sustained, not one blip
    # The metric names exist in the BFF's registry.
    from prometheus_client import generate_latest

    exposed = generate_latest(Metrics().registry).decode()
    for name in ("bff_status_restores", "bff_upstream_errors"):
        assert f"# TYPE {name}_total counter" in exposed or f"# TYPE {name} counter" in exposed
    # Prometheus may reach the metrics port through the NetworkPolicy.
    (policy,) = kind(objects, "NetworkPolicy")
    assert any(r["ports"] == [{"protocol": "TCP", "port": 9090}] for r in policy["spec"]["ingress"])
    # Without metrics.port, /metrics stays on the API port and no args are passed.
    plain = rendered(helm, *IMAGE, "--set", "metrics.serviceMonitor.enabled=true")
    assert "args" not in bff_container(plain)
    (monitor,) = kind(plain, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == "http"


# --- schema and Rancher's form -----------------------------------------------------------


@pytest.mark.parametrize("name", chart.combinations())
def test_the_schema_accepts_every_ci_values_file(name: str) -> None:
    values = yaml.safe_load(chart.values_file(name).read_text(encoding="utf-8"))
    merged = _merged(VALUES, values)
    jsonschema.Draft7Validator(SCHEMA).validate(merged)


def _merged(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        return {k: _merged(base.get(k), over[k]) if k in base else over[k] for k in over} | {
            k: v for k, v in base.items() if k not in over
        }
    return over


def test_the_schema_is_draft_07_and_accepts_the_defaults() -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator(SCHEMA).validate(VALUES)


BAD = [
    {"ui": "dashboard"},
    {"authMode": "token"},
    {"logFormat": "xml"},
    {"webhook": {"certificates": {"source": "vault"}}},
    {"webhook": {"port": 0}},
    {"webhook": {"port": 65536}},
    {"metrics": {"port": 70000}},
    {"replicas": 0},
    {"replicas": 1.5},
    {"webhook": {"certificates": {"validityDays": 0}}},
    {"webhook": {"guardedResources": []}},
    {"webhook": {"guardedResources": [{"group": "g", "version": "v1", "resource": "r",
                                       "owners": []}]}},
    {"webhook": {"guardedResources": [{"group": "g", "version": "v1", "resource": "r", "owners": [],
                                       "keep": ["spec"]}]}},
    {"webhook": {"guardedResources": [{"group": "g", "version": "v1", "resource": "r", "owners": [],
                                       "keep": ["status"], "mode": "ignore"}]}},
    {"webhook": {"guardedResources": [{"group": "g", "version": "1", "resource": "r", "owners": [],
                                       "keep": ["status"]}]}},
    {"webhook": {"guardedResources": [{"group": "g", "version": "v1", "resource": "r",
                                       "owners": ["a;b"], "keep": ["status"]}]}},
    {"webhook": {"trustedWriters": ["a,b"]}},
    {"image": {"repository": "r.example/bff:1.0"}},
    {"image": {"pullPolicy": "Sometimes"}},
    {"rancher": {"url": "http://rancher"}},
    {"image": {"tag": None, "repository": None}},
]  # fmt: skip


@pytest.mark.parametrize("bad", BAD, ids=[json.dumps(b)[:60] for b in BAD])
def test_the_schema_refuses_bad_values(bad: Obj) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(SCHEMA).validate(_merged(VALUES, bad))


def test_the_schema_requires_the_image_repository() -> None:
    values = copy.deepcopy(VALUES)
    del values["image"]["repository"]
    with pytest.raises(jsonschema.ValidationError, match="repository"):
        jsonschema.Draft7Validator(SCHEMA).validate(values)


def test_the_install_guides_values_examples_are_valid() -> None:
    text = (ROOT / "docs" / "install.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.DOTALL)
    assert blocks
    for block in blocks:
        jsonschema.Draft7Validator(SCHEMA).validate(_merged(VALUES, yaml.safe_load(block)))


def _value(path: str) -> Any:
    node: Any = VALUES
    for part in path.split("."):
        assert isinstance(node, dict), path
        assert part in node, f"{path} is not in values.yaml"
        node = node[part]
    return node


QUESTION_TYPES = {"string": str, "boolean": bool, "int": int, "enum": str}


def _questions() -> list[Obj]:
    document = yaml.safe_load((chart.CHART / "questions.yaml").read_text(encoding="utf-8"))
    out = []
    for question in document["questions"]:
        out.append(question)
        out.extend(question.get("subquestions", []))
    return out


def test_every_question_is_a_value_of_the_same_type() -> None:
    questions = _questions()
    asked = {q["variable"] for q in questions}
    assert {"ui", "webhook.enabled", "webhook.guardedResources",
            "webhook.certificates.source", "image.repository"} <= asked  # fmt: skip
    for question in questions:
        value = _value(question["variable"])
        kind_ = question["type"]
        if kind_.startswith("array"):
            assert isinstance(value, list), question["variable"]
        else:
            assert isinstance(value, QUESTION_TYPES[kind_]), question["variable"]
        if "default" in question:
            assert question["default"] == value, question["variable"]
        if kind_ == "enum":
            enum = _schema_at(question["variable"])["enum"]
            assert sorted(question["options"]) == sorted(enum), question["variable"]


def _schema_at(path: str) -> Obj:
    node: Obj = SCHEMA
    for part in path.split("."):
        node = node["properties"][part]
    return node


def test_rancher_catalog_annotations() -> None:
    meta = yaml.safe_load((chart.CHART / "Chart.yaml").read_text(encoding="utf-8"))
    annotations = meta["annotations"]
    assert annotations["catalog.cattle.io/release-name"] == "harvester-upgrade-bff"
    assert annotations["catalog.cattle.io/os"] == "linux"
    assert annotations["catalog.cattle.io/display-name"]
    assert re.fullmatch(r">= \S+ < \S+", annotations["catalog.cattle.io/rancher-version"])
    assert annotations["catalog.cattle.io/kube-version"].startswith(">=")
    assert "catalog.cattle.io/certified" not in annotations
    assert (chart.CHART / "app-readme.md").is_file()
