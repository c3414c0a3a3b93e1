"""The Kubernetes objects the chart renders: what they grant, expose and protect.

Every combination is read from ``deploy/manifests/<combination>.yaml``, the
chart's rendering (tests/test_manifests.py fails when a file differs from what
``helm template`` makes of ``ci/<combination>-values.yaml``), so these checks
need no helm and run on exactly what the chart installs. The names below are
the layouts the checks were written for, each now a combination of the chart:

- ``base``: ui none, passthrough, the read cache (no Ingress);
- ``impersonate``: ui none, impersonate;
- ``webhook``: ui none plus the cluster guard with cert-manager's certificate;
- ``harvester``: the standalone Harvester UI (Rancher mode, host-less Ingresses);
- ``rancher``: the dashboard inside Rancher (Rancher mode, Rancher's host);
- ``harvester-guard``: the standalone Harvester UI with the guard, the
  combination none of the layouts above had;
- ``self``: ui none plus the guard with the BFF's own certificate.

Covered:
- RBAC: the base grants the BFF's account list and watch on upgrades only (the
  read cache's; tests/realapi/test_deploy_rbac.py shows on a real kube-apiserver
  that every grant is needed and enough); impersonate adds only TokenReview
  create and impersonation, and changes only BFF_AUTH_MODE.
- The Deployment's hardening, probes, replicas, resources and shutdown timing.
- Service, Ingress, PodDisruptionBudget and NetworkPolicy all line up with the
  pods and ports, and the Ingress exposes exactly the required prefixes.
- Every object, and every example in docs/install.md, validates against the
  Kubernetes JSON schemas, offline.
"""

from __future__ import annotations

import copy
import functools
import re
from pathlib import Path
from typing import Any

import jsonpatch
import kubernetes_validate
import pytest
import yaml

from tests.support import chart

Obj = dict[str, Any]

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
MANIFESTS = DEPLOY / "manifests"
INSTALL_DOC = ROOT / "docs" / "install.md"
BUILDS = {"base": "none-noguard", "impersonate": "none-impersonate"}
# The guard's and the Rancher-mode combinations add ports, mounts or objects of
# their own, so only the checks that hold for every pod run on them too.
ALL_BUILDS = {
    **BUILDS,
    "webhook": "none-certmanager",
    "harvester": "harvester-noguard",
    "rancher": "rancher-noguard",
    "harvester-guard": "harvester-certmanager",
    "self": "none-self",
}
#: Combinations whose BFF reaches Harvester through Rancher's cluster proxy.
RANCHER_MODE = ("harvester", "rancher")
#: Combinations with Ingresses (ui harvester or rancher): the routing tests' layouts.
ROUTED = {name: ALL_BUILDS[name] for name in ("harvester", "rancher", "harvester-guard")}

# The Kubernetes minor whose schemas every object is checked against;
# kubernetes-validate>=1.32 ships them, offline.
K8S_VERSION = "1.32.0"

NAMESPACE = "harvester-system"
#: The Ingress that keeps the Upgrades' namespace path (the dashboard's create) with Steve.
STEVE_INGRESS = "harvester-upgrade-bff-steve"
NAME = "harvester-upgrade-bff"
IMAGE = "registry.example.com/harvester-upgrade-bff:0.1.0"
APP_PORT = 8080

# Verbs that would let this account replace, create or remove objects.
FORBIDDEN_VERBS = {"update", "create", "delete", "deletecollection", "*"}

# Kinds the chart may render, and whether they are namespaced.
NAMESPACED = {
    "ServiceAccount": True,
    "Role": True,
    "RoleBinding": True,
    "Deployment": True,
    "Service": True,
    "Ingress": True,
    "PodDisruptionBudget": True,
    "NetworkPolicy": True,
    "Secret": True,
    "ClusterRole": False,
    "ClusterRoleBinding": False,
    "MutatingWebhookConfiguration": False,
    "Issuer": True,
    "Certificate": True,
}
# cert-manager's kinds: not in the Kubernetes schemas; checked field by field.
CERT_MANAGER_KINDS = {"Issuer", "Certificate"}

# ingress-nginx's own check for Exact and Prefix paths under
# strict-validate-path-type (the default since v1.12):
# internal/ingress/inspector/rules.go, validPathType.
INGRESS_NGINX_PLAIN_PATH = re.compile(r"^/[A-Za-z0-9._\-/]*$")


def load_documents(path: Path) -> list[Any]:
    with path.open(encoding="utf-8") as stream:
        return [doc for doc in yaml.safe_load_all(stream) if doc is not None]


def object_id(obj: Obj) -> tuple[str, str, str, str]:
    meta = obj["metadata"]
    return (obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"])


@functools.cache
def _built(name: str) -> list[Obj]:
    return chart.shipped(ALL_BUILDS[name])


def built(name: str) -> list[Obj]:
    """The objects of a combination, as the chart renders them (deploy/manifests)."""
    return copy.deepcopy(_built(name))


def only(objects: list[Obj], kind: str) -> Obj:
    found = [obj for obj in objects if obj["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def pod_labels(objects: list[Obj]) -> dict[str, str]:
    labels: dict[str, str] = only(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    return labels


def selects(match_labels: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(match_labels) and all(labels.get(k) == v for k, v in match_labels.items())


def container(objects: list[Obj]) -> Obj:
    (bff,) = only(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    result: Obj = bff
    return result


def env(objects: list[Obj]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container(objects)["env"]}


def rule_triples(role: Obj) -> set[tuple[str, str, str]]:
    """Every (apiGroup, resource, verb) a Role or ClusterRole grants."""
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule["verbs"]
    }


def cpu(quantity: str) -> float:
    return float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def memory(quantity: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return int(quantity[: -len(suffix)]) * factor
    return int(quantity)


def test_every_combination_here_is_shipped() -> None:
    assert set(ALL_BUILDS.values()) <= set(chart.manifest_combinations())


@pytest.mark.parametrize("name", ALL_BUILDS)
def test_every_object_validates_against_the_kubernetes_schema(name: str) -> None:
    errors = []
    for obj in built(name):
        if obj["kind"] in CERT_MANAGER_KINDS:
            continue
        try:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {error.message}")
    assert errors == []


@pytest.mark.parametrize("name", ALL_BUILDS)
def test_objects_live_in_harvester_system(name: str) -> None:
    for obj in built(name):
        assert obj["kind"] in NAMESPACED, f"unexpected kind {obj['kind']}"
        if name == "rancher":
            # On Rancher's local cluster, next to Rancher's Ingress, Service and CA.
            assert obj["metadata"].get("namespace") == "cattle-system", object_id(obj)
        elif (obj["kind"], obj["metadata"]["name"]) == ("Ingress", STEVE_INGRESS):
            # An Ingress names Services of its own namespace only: Rancher's.
            assert obj["metadata"].get("namespace") == "cattle-system", object_id(obj)
        elif NAMESPACED[obj["kind"]]:
            assert obj["metadata"].get("namespace") == NAMESPACE, object_id(obj)
        else:
            assert "namespace" not in obj["metadata"], object_id(obj)


# --- RBAC -------------------------------------------------------------------


def test_base_role_grants_only_the_read_caches_list_and_watch() -> None:
    role = only(built("base"), "Role")
    assert role["metadata"]["name"] == NAME
    assert len(role["rules"]) == 1
    (rule,) = role["rules"]
    assert rule["apiGroups"] == ["harvesterhci.io"]
    assert rule["resources"] == ["upgrades"]
    # get and patch are always the caller's (tests/realapi/test_deploy_rbac.py).
    assert sorted(rule["verbs"]) == ["list", "watch"]
    assert "resourceNames" not in rule
    assert "nonResourceURLs" not in rule


def test_base_role_is_bound_to_the_service_account() -> None:
    objects = built("base")
    binding = only(objects, "RoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": only(objects, "Role")["metadata"]["name"],
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}]


def test_nothing_in_base_grants_update_create_or_delete() -> None:
    objects = built("base")
    kinds = {obj["kind"] for obj in objects}
    # Passthrough mode needs nothing cluster-wide.
    assert not kinds & {"ClusterRole", "ClusterRoleBinding"}
    for role in (obj for obj in objects if obj["kind"] in {"Role", "ClusterRole"}):
        granted = {verb for rule in role["rules"] for verb in rule["verbs"]}
        assert not granted & FORBIDDEN_VERBS, role["metadata"]["name"]
        resources = {r for rule in role["rules"] for r in rule.get("resources", [])}
        assert "*" not in resources


def test_impersonate_overlay_adds_only_reviews_and_impersonation() -> None:
    base = {object_id(obj): obj for obj in built("base")}
    overlay = {object_id(obj): obj for obj in built("impersonate")}
    assert base.keys() <= overlay.keys()
    added = [overlay[key] for key in overlay.keys() - base.keys()]
    assert sorted(obj["kind"] for obj in added) == ["ClusterRole", "ClusterRoleBinding"]

    cluster_role = only(added, "ClusterRole")
    assert rule_triples(cluster_role) == {
        ("authentication.k8s.io", "tokenreviews", "create"),
        # The read cache asks whether the reviewed user may read (--read-cache on).
        ("authorization.k8s.io", "subjectaccessreviews", "create"),
        ("", "users", "impersonate"),
        ("", "groups", "impersonate"),
        ("", "serviceaccounts", "impersonate"),
        # uids and userextras/<every key>: RBAC has no "userextras/*" wildcard.
        ("authentication.k8s.io", "*", "impersonate"),
    }
    assert all("resourceNames" not in rule for rule in cluster_role["rules"])

    binding = only(added, "ClusterRoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": cluster_role["metadata"]["name"],
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}]


def test_impersonate_overlay_changes_only_the_auth_mode() -> None:
    base = {object_id(obj): obj for obj in built("base")}
    overlay = {object_id(obj): obj for obj in built("impersonate")}
    changed = {key for key in base if base[key] != overlay[key]}
    (deployment_id,) = changed
    assert deployment_id[1] == "Deployment"
    difference = jsonpatch.make_patch(base[deployment_id], overlay[deployment_id]).patch
    assert difference == [
        {
            "op": "replace",
            "path": "/spec/template/spec/containers/0/env/0/value",
            "value": "impersonate",
        }
    ]
    assert env(built("base"))["BFF_AUTH_MODE"] == "passthrough"
    assert env(built("impersonate"))["BFF_AUTH_MODE"] == "impersonate"


# --- the Deployment ---------------------------------------------------------


@pytest.mark.parametrize("name", ALL_BUILDS)
def test_service_account_token_is_mounted_only_where_needed(name: str) -> None:
    objects = built(name)
    account = only(objects, "ServiceAccount")
    pod = only(objects, "Deployment")["spec"]["template"]["spec"]
    assert account["automountServiceAccountToken"] is False
    assert pod["automountServiceAccountToken"] is True
    assert pod["serviceAccountName"] == account["metadata"]["name"] == NAME


@pytest.mark.parametrize("name", ALL_BUILDS)
def test_pod_runs_unprivileged(name: str) -> None:
    pod = only(built(name), "Deployment")["spec"]["template"]["spec"]
    pod_context = pod["securityContext"]
    assert pod_context["runAsNonRoot"] is True
    assert pod_context["runAsUser"] == 65532
    assert pod_context["seccompProfile"] == {"type": "RuntimeDefault"}
    for host_namespace in ("hostNetwork", "hostPID", "hostIPC"):
        assert not pod.get(host_namespace), host_namespace
    for each in pod["containers"] + pod.get("initContainers", []):
        context = each["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True
        assert context["capabilities"]["drop"] == ["ALL"]
        assert "add" not in context["capabilities"]
        assert context.get("privileged", False) is False
        assert context.get("runAsUser", 65532) != 0


@pytest.mark.parametrize("name", BUILDS)
def test_tmp_is_the_only_writable_path(name: str) -> None:
    pod = only(built(name), "Deployment")["spec"]["template"]["spec"]
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    mounts = container(built(name))["volumeMounts"]
    assert [mount["mountPath"] for mount in mounts] == ["/tmp"]
    assert "emptyDir" in volumes[mounts[0]["name"]]


@pytest.mark.parametrize("name", BUILDS)
def test_deployment_shape(name: str) -> None:
    objects = built(name)
    deployment = only(objects, "Deployment")
    bff = container(objects)
    assert deployment["spec"]["replicas"] == 2
    assert selects(deployment["spec"]["selector"]["matchLabels"], pod_labels(objects))
    assert bff["image"] == IMAGE
    assert bff["ports"] == [{"name": "http", "containerPort": APP_PORT, "protocol": "TCP"}]
    assert env(objects)["BFF_PORT"] == str(APP_PORT)


@pytest.mark.parametrize("name", ALL_BUILDS)
def test_probes_use_healthz_and_readyz(name: str) -> None:
    bff = container(built(name))
    assert bff["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert bff["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}


@pytest.mark.parametrize("name", ALL_BUILDS)
def test_resources_are_bounded(name: str) -> None:
    resources = container(built(name))["resources"]
    requests, limits = resources["requests"], resources["limits"]
    assert 0 < cpu(requests["cpu"]) <= cpu(limits["cpu"])
    assert 0 < memory(requests["memory"]) <= memory(limits["memory"])


@pytest.mark.parametrize("name", ALL_BUILDS)
def test_grace_period_outlasts_the_shutdown(name: str) -> None:
    objects = built(name)
    pod = only(objects, "Deployment")["spec"]["template"]["spec"]
    pre_stop = container(objects)["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    shutdown = int(env(objects)["BFF_SHUTDOWN_TIMEOUT"])
    assert shutdown == 20
    assert pod["terminationGracePeriodSeconds"] > shutdown + int(pre_stop[1])


@pytest.mark.parametrize("name", ALL_BUILDS)
def test_replicas_spread_across_nodes(name: str) -> None:
    objects = built(name)
    pod = only(objects, "Deployment")["spec"]["template"]["spec"]
    spread = [
        constraint
        for constraint in pod.get("topologySpreadConstraints", [])
        if constraint["topologyKey"] == "kubernetes.io/hostname"
        and selects(constraint["labelSelector"]["matchLabels"], pod_labels(objects))
    ]
    anti = pod.get("affinity", {}).get("podAntiAffinity", {})
    terms = anti.get("requiredDuringSchedulingIgnoredDuringExecution", []) + [
        weighted["podAffinityTerm"]
        for weighted in anti.get("preferredDuringSchedulingIgnoredDuringExecution", [])
    ]
    anti_affinity = [
        term
        for term in terms
        if term["topologyKey"] == "kubernetes.io/hostname"
        and selects(term["labelSelector"]["matchLabels"], pod_labels(objects))
    ]
    assert spread or anti_affinity


# --- Service, Ingress, PDB, NetworkPolicy -----------------------------------


def test_service_targets_the_http_port() -> None:
    objects = built("base")
    service = only(objects, "Service")
    assert service["spec"]["type"] == "ClusterIP"
    assert selects(service["spec"]["selector"], pod_labels(objects))
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
    ]


def bff_ingress(objects: list[Obj]) -> Obj:
    (ingress,) = (o for o in objects if o["kind"] == "Ingress" and o["metadata"]["name"] == NAME)
    return ingress


def steve_ingress(objects: list[Obj]) -> Obj:
    (ingress,) = (
        o for o in objects if o["kind"] == "Ingress" and o["metadata"]["name"] == STEVE_INGRESS
    )
    return ingress


def test_ui_none_makes_no_ingress() -> None:
    for name in ("base", "impersonate", "webhook", "self"):
        assert not [o for o in built(name) if o["kind"] == "Ingress"], name


def test_ingress_routes_exactly_the_required_prefixes() -> None:
    objects = built("harvester")
    assert sorted(o["metadata"]["name"] for o in objects if o["kind"] == "Ingress") == [
        NAME,
        STEVE_INGRESS,
    ]
    ingress = bff_ingress(objects)
    service = only(objects, "Service")
    assert ingress["apiVersion"] == "networking.k8s.io/v1"
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert "defaultBackend" not in ingress["spec"]
    paths = [path for rule in ingress["spec"]["rules"] for path in rule["http"]["paths"]]
    # Only the item paths under the namespace; the collection stays with Steve.
    assert sorted((path["path"], path["pathType"]) for path in paths) == [
        ("/api/v1.0.4", "Prefix"),
        ("/api/v1.0.5", "Prefix"),
        ("/v1/harvester/harvesterhci.io.upgrades/harvester-system", "Prefix"),
    ]
    (service_port,) = service["spec"]["ports"]
    for path in paths:
        backend = path["backend"]["service"]
        assert backend["name"] == service["metadata"]["name"]
        assert backend["port"] in ({"name": service_port["name"]}, {"number": service_port["port"]})


def test_steve_ingress_keeps_only_the_namespace_path_with_rancher() -> None:
    ingress = steve_ingress(built("harvester"))
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert "defaultBackend" not in ingress["spec"]
    assert [rule.get("host") for rule in ingress["spec"]["rules"]] == [None]
    assert ingress_paths(ingress) == [
        {
            "path": "/v1/harvester/harvesterhci.io.upgrades/harvester-system",
            "pathType": "Exact",
            "backend": {"service": {"name": "rancher", "port": {"number": 80}}},
        }
    ]


def ingress_paths(ingress: Obj) -> list[Obj]:
    return [path for rule in ingress["spec"]["rules"] for path in rule["http"]["paths"]]


@pytest.mark.parametrize("name", ALL_BUILDS)
def test_ingress_paths_pass_ingress_nginx_path_validation(name: str) -> None:
    for ingress in (obj for obj in built(name) if obj["kind"] == "Ingress"):
        for path in ingress_paths(ingress):
            assert path["pathType"] in {"Prefix", "Exact"}
            assert INGRESS_NGINX_PLAIN_PATH.match(path["path"]), path["path"]
        # use-regex and rewrite-target turn every path of the host into a regex,
        # on every Ingress, the dashboard's own included.
        annotations = ingress["metadata"].get("annotations", {})
        assert "nginx.ingress.kubernetes.io/use-regex" not in annotations
        assert "nginx.ingress.kubernetes.io/rewrite-target" not in annotations


def test_pdb_keeps_one_replica_and_selects_the_pods() -> None:
    objects = built("base")
    pdb = only(objects, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert "maxUnavailable" not in pdb["spec"]
    assert selects(pdb["spec"]["selector"]["matchLabels"], pod_labels(objects))
    # Otherwise the budget would forbid every eviction and block node drains.
    assert only(objects, "Deployment")["spec"]["replicas"] > pdb["spec"]["minAvailable"]


def test_networkpolicy_admits_only_the_ingress_controller_on_the_app_port() -> None:
    objects = built("base")
    policy = only(objects, "NetworkPolicy")["spec"]
    assert selects(policy["podSelector"]["matchLabels"], pod_labels(objects))
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]
    assert policy["ingress"], "an empty ingress list would still deny, but say so explicitly"
    peers = []
    for rule in policy["ingress"]:
        assert rule["ports"] == [{"protocol": "TCP", "port": APP_PORT}]
        assert rule.get("from"), "a rule without 'from' admits every source"
        peers.extend(rule["from"])
    for peer in peers:
        assert "ipBlock" not in peer
        # An empty namespaceSelector ({}) would match every namespace.
        assert peer["namespaceSelector"]["matchLabels"], peer
    upstream_controller = {"kubernetes.io/metadata.name": "ingress-nginx"}
    assert {"namespaceSelector": {"matchLabels": upstream_controller}} in peers


def test_networkpolicy_egress_is_api_server_and_dns_only() -> None:
    policy = only(built("base"), "NetworkPolicy")["spec"]
    allowed = set()
    for rule in policy["egress"]:
        ports = {(port["protocol"], port["port"]) for port in rule["ports"]}
        allowed |= ports
        if any(port == 53 for _, port in ports):
            # DNS only to the cluster DNS pods, in kube-system.
            assert ports == {("UDP", 53), ("TCP", 53)}
            for peer in rule["to"]:
                namespace = peer["namespaceSelector"]["matchLabels"]
                assert namespace == {"kubernetes.io/metadata.name": "kube-system"}
                assert peer["podSelector"]["matchLabels"]
        else:
            assert ports <= {("TCP", 443), ("TCP", 6443)}
            assert all("ipBlock" not in peer for peer in rule.get("to", []))
    assert allowed == {("TCP", 443), ("TCP", 6443), ("UDP", 53), ("TCP", 53)}


# --- Rancher mode (ui harvester, ui rancher) ---------------------------------

RANCHER_SERVICE_URL = "https://rancher.cattle-system.svc"
RANCHER_CA_SECRET = "tls-rancher-internal-ca"
RANCHER_CA_CONFIGMAP = "harvester-upgrade-bff-rancher-ca"
RANCHER_HOST = "rancher.example.com"
UPGRADES_NAMESPACE_PATH = "/v1/harvester/harvesterhci.io.upgrades/harvester-system"


def clusters(objects: list[Obj]) -> list[str]:
    return env(objects)["BFF_CLUSTERS"].split(",")


@pytest.mark.parametrize("name", RANCHER_MODE)
def test_rancher_mode_reaches_rancher_with_a_mounted_ca(name: str) -> None:
    objects = built(name)
    settings = env(objects)
    assert settings["BFF_AUTH_MODE"] == "passthrough"
    # The read cache watches the BFF's own cluster as the BFF: not with Rancher.
    assert settings["BFF_READ_CACHE"] == "off"
    assert settings["BFF_RANCHER_URL"] == RANCHER_SERVICE_URL
    assert settings["BFF_DEFAULT_CLUSTER"] in clusters(objects)
    ca = Path(settings["BFF_RANCHER_CA_BUNDLE"])
    (mount,) = (m for m in container(objects)["volumeMounts"] if m["mountPath"] == str(ca.parent))
    assert mount["readOnly"] is True
    pod = only(objects, "Deployment")["spec"]["template"]["spec"]
    (volume,) = (v for v in pod["volumes"] if v["name"] == mount["name"])
    source = volume.get("secret") or volume["configMap"]
    # Exactly the certificate: a CA Secret's private key never reaches the pod.
    (item,) = source["items"]
    assert item["path"] == ca.name
    if name == "rancher":
        assert volume["secret"] == {
            "secretName": RANCHER_CA_SECRET,
            "items": [{"key": "tls.crt", "path": "ca.crt"}],
        }
    else:
        # Harvester's BFF runs in harvester-system; the CA Secret is in cattle-system.
        assert volume["configMap"] == {
            "name": RANCHER_CA_CONFIGMAP,
            "items": [{"key": "ca.crt", "path": "ca.crt"}],
        }
    # Nothing else becomes writable.
    writable = [m["mountPath"] for m in container(objects)["volumeMounts"] if not m.get("readOnly")]
    assert writable == ["/tmp"]


@pytest.mark.parametrize("name", RANCHER_MODE)
def test_rancher_mode_grants_the_bff_nothing(name: str) -> None:
    """Readiness needs what every account may read; every other request is the caller's."""
    kinds = {obj["kind"] for obj in built(name)}
    assert not kinds & {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}


@pytest.mark.parametrize("name", RANCHER_MODE)
def test_rancher_mode_may_also_reach_rancher_pods_https_port(name: str) -> None:
    base = only(built("base"), "NetworkPolicy")["spec"]
    policy = only(built(name), "NetworkPolicy")["spec"]
    assert policy["ingress"] == base["ingress"]
    # Rancher's Service maps https-internal 443 to 444 on its pods; CNIs check
    # the policy after that translation.
    assert policy["egress"][0]["ports"] == [
        *base["egress"][0]["ports"],
        {"protocol": "TCP", "port": 444},
    ]
    assert policy["egress"][1:] == base["egress"][1:]


def test_harvester_overlay_is_the_base_in_rancher_mode() -> None:
    base = {k: v for k, v in _by_id("base").items() if k[1] not in {"Role", "RoleBinding"}}
    overlay = _by_id("harvester")
    # The standalone UI's two Ingresses are the only objects added.
    assert sorted(overlay.keys() - base.keys()) == [
        ("networking.k8s.io/v1", "Ingress", "cattle-system", STEVE_INGRESS),
        ("networking.k8s.io/v1", "Ingress", NAMESPACE, NAME),
    ]
    assert base.keys() <= overlay.keys()
    changed = {key: jsonpatch.make_patch(base[key], overlay[key]).patch for key in base}
    changed = {key: ops for key, ops in changed.items() if ops}
    assert sorted(key[1] for key in changed) == ["Deployment", "NetworkPolicy"]
    assert env(built("harvester")) == {
        **env(built("base")),
        "BFF_READ_CACHE": "off",
        "BFF_RANCHER_URL": RANCHER_SERVICE_URL,
        "BFF_RANCHER_CA_BUNDLE": "/etc/harvester-upgrade-bff/rancher-ca/ca.crt",
        # Harvester's own cluster, as its embedded Rancher names it; the
        # standalone UI's paths carry no cluster id.
        "BFF_CLUSTERS": "local",
        "BFF_DEFAULT_CLUSTER": "local",
    }


def test_rancher_overlay_moves_the_workload_next_to_rancher() -> None:
    workload = {
        (*object_id(o)[:2], o["metadata"]["name"]): o
        for o in built("base")
        if o["kind"] not in {"Role", "RoleBinding"}
    }
    overlay = {(*object_id(o)[:2], o["metadata"]["name"]): o for o in built("rancher")}
    added = sorted(key for key in overlay.keys() - workload.keys())
    assert added == [
        ("networking.k8s.io/v1", "Ingress", NAME),
        ("networking.k8s.io/v1", "Ingress", STEVE_INGRESS),
    ]
    for key, obj in workload.items():
        if key[1] in {"Deployment", "NetworkPolicy"}:
            continue
        moved = copy.deepcopy(obj)
        moved["metadata"]["namespace"] = "cattle-system"
        assert overlay[key] == moved, key


def test_rancher_overlay_routes_the_listed_clusters_on_rancher_host() -> None:
    objects = built("rancher")
    bff = {"service": {"name": NAME, "port": {"name": "http"}}}
    rancher = {"service": {"name": "rancher", "port": {"number": 80}}}
    expected_bff = [
        {"path": "/api/v1.0.4", "pathType": "Prefix", "backend": bff},
        {"path": "/api/v1.0.5", "pathType": "Prefix", "backend": bff},
    ]
    expected_steve = []
    for cluster in clusters(objects):
        path = f"/k8s/clusters/{cluster}{UPGRADES_NAMESPACE_PATH}"
        expected_bff.append({"path": path, "pathType": "Prefix", "backend": bff})
        expected_steve.append({"path": path, "pathType": "Exact", "backend": rancher})
    for ingress, expected in (
        (bff_ingress(objects), expected_bff),
        (steve_ingress(objects), expected_steve),
    ):
        spec = ingress["spec"]
        assert spec["ingressClassName"] == "nginx"
        assert "defaultBackend" not in spec
        # Rancher's chart: host .Values.hostname, TLS Secret tls-rancher-ingress.
        assert spec["tls"] == [{"hosts": [RANCHER_HOST], "secretName": "tls-rancher-ingress"}]
        assert [rule["host"] for rule in spec["rules"]] == [RANCHER_HOST]
        assert ingress_paths(ingress) == expected


# --- the cluster guard (ui none, cert-manager's certificate) ---------------

WEBHOOK_PORT = 9443


def _by_id(name: str) -> dict[tuple[str, str, str, str], Obj]:
    return {object_id(obj): obj for obj in built(name)}


def test_webhook_overlay_adds_the_guard_and_changes_only_its_wiring() -> None:
    base, overlay = _by_id("base"), _by_id("webhook")
    assert base.keys() <= overlay.keys()
    added = sorted(overlay[key]["kind"] for key in overlay.keys() - base.keys())
    assert added == ["Certificate", "Issuer", "MutatingWebhookConfiguration"]
    changed = {key: jsonpatch.make_patch(base[key], overlay[key]).patch for key in base}
    changed = {key[1]: ops for key, ops in changed.items() if ops}  # type: ignore[misc]
    assert sorted(changed) == ["Deployment", "NetworkPolicy", "Service"]  # type: ignore[comparison-overlap]
    # Only additions: nothing of the base is replaced or removed.
    for kind, ops in changed.items():
        assert {op["op"] for op in ops} == {"add"}, kind
    assert env(built("base")).items() <= env(built("webhook")).items()


def test_webhook_container_serves_the_guard_with_the_mounted_certificate() -> None:
    objects = built("webhook")
    bff = container(objects)
    settings = env(objects)
    assert settings["BFF_WEBHOOK_PORT"] == str(WEBHOOK_PORT)
    assert {"name": "webhook", "containerPort": WEBHOOK_PORT, "protocol": "TCP"} in bff["ports"]
    mounts = {m["name"]: m for m in bff["volumeMounts"]}
    tls = mounts["webhook-tls"]
    assert tls["readOnly"] is True
    assert settings["BFF_WEBHOOK_TLS_CERT"] == tls["mountPath"] + "/tls.crt"
    assert settings["BFF_WEBHOOK_TLS_KEY"] == tls["mountPath"] + "/tls.key"
    volumes = {
        v["name"]: v for v in only(objects, "Deployment")["spec"]["template"]["spec"]["volumes"]
    }
    secret = volumes["webhook-tls"]["secret"]
    assert secret["secretName"] == only(objects, "Certificate")["spec"]["secretName"]
    # Group-readable for the pod's fsGroup, nobody else: the key is in there.
    assert secret["defaultMode"] == 0o440
    # Everything else stays read-only: /tmp is still the only writable mount.
    writable = [m for m in bff["volumeMounts"] if not m.get("readOnly")]
    assert [m["mountPath"] for m in writable] == ["/tmp"]


def test_webhook_configuration_is_the_documented_guard() -> None:
    from bff.admission.configuration import configuration, service_client_config
    from bff.admission.guard import TrustedWriters
    from bff.admission.resources import table_from

    objects = built("webhook")
    shipped = only(objects, "MutatingWebhookConfiguration")
    (hook,) = shipped["webhooks"]
    # The BFF's table (its BFF_GUARD_RESOURCES) is the default, and the shipped
    # configuration is exactly the document the code builds for it.
    table = table_from(env(objects)["BFF_GUARD_RESOURCES"].split(","))
    assert table == table_from([])
    assert "BFF_TRUSTED_WRITER" not in env(objects)
    (expected,) = configuration(table, TrustedWriters(), service_client_config(NAMESPACE))[
        "webhooks"
    ]
    assert hook == expected
    assert hook["failurePolicy"] == "Fail"
    assert 1 <= hook["timeoutSeconds"] <= 5
    assert len(hook["rules"]) == 7
    assert all(r["operations"] == ["CREATE", "UPDATE"] for r in hook["rules"])
    assert hook["namespaceSelector"] == hook["objectSelector"] == {}
    # It reaches the BFF's webhook port through the Service, never the app port.
    service = only(objects, "Service")
    client = hook["clientConfig"]["service"]
    assert (client["name"], client["namespace"]) == (NAME, NAMESPACE)
    assert client["path"] == "/admission/guard/mutate"
    (port,) = (p for p in service["spec"]["ports"] if p["port"] == client["port"])
    assert port["targetPort"] == "webhook"
    assert "caBundle" not in hook["clientConfig"]  # injected by cert-manager
    # The standalone UI with the guard has the same configuration, and its
    # Ingress routes to the http port only.
    guarded_ui = built("harvester-guard")
    assert only(guarded_ui, "MutatingWebhookConfiguration") == shipped
    for path in ingress_paths(bff_ingress(guarded_ui)):
        assert (
            path["backend"]["service"]["port"] == {"name": "http"}
            or path["backend"]["service"]["port"].get("number") == 80
        )


def test_webhook_certificate_is_injected_and_names_the_service() -> None:
    objects = built("webhook")
    configuration = only(objects, "MutatingWebhookConfiguration")
    certificate = only(objects, "Certificate")
    issuer = only(objects, "Issuer")
    annotation = configuration["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
    assert annotation == f"{NAMESPACE}/{certificate['metadata']['name']}"
    assert certificate["apiVersion"] == issuer["apiVersion"] == "cert-manager.io/v1"
    spec = certificate["spec"]
    assert f"{NAME}.{NAMESPACE}.svc" in spec["dnsNames"]
    assert spec["issuerRef"] == {
        "name": issuer["metadata"]["name"],
        "kind": "Issuer",
        "group": "cert-manager.io",
    }
    assert "server auth" in spec["usages"]
    assert issuer["spec"] == {"selfSigned": {}}


def _cel(
    expression: str, username: str, groups: list[str], resource: str = "harvesterhci.io/upgrades"
) -> bool:
    import celpy
    import celpy.adapter

    env_ = celpy.Environment()
    program = env_.program(env_.compile(expression))
    group, name = resource.split("/")
    request = {
        "userInfo": {"username": username, "groups": groups},
        "resource": {"group": group, "version": "v1beta1", "resource": name},
    }
    return bool(program.evaluate(celpy.adapter.json_to_cel({"request": request})))  # type: ignore[arg-type]


def _called(hook: dict[str, Any], username: str, resource: str, groups: list[str]) -> bool:
    """Whether the API server calls the webhook: every matchCondition true."""
    return all(_cel(c["expression"], username, groups, resource) for c in hook["matchConditions"])


def test_match_conditions_leave_out_exactly_each_resources_owners() -> None:
    from bff.admission.resources import DEFAULT_TABLE

    objects = built("webhook")
    (hook,) = only(objects, "MutatingWebhookConfiguration")["webhooks"]
    assert len(hook["matchConditions"]) == 3  # one per owner
    sa_groups = ["system:serviceaccounts", "system:serviceaccounts:harvester-system"]
    owners = {o for row in DEFAULT_TABLE for o in row.owners}
    for row in DEFAULT_TABLE:
        resource = f"{row.group}/{row.resource}"
        for owner in owners:
            assert _called(hook, owner, resource, sa_groups) is (owner not in row.owners)
        assert _called(hook, "kubernetes-admin", resource, ["system:masters"])
        assert _called(hook, f"system:serviceaccount:{NAMESPACE}:{NAME}", resource, sa_groups)
        for owner in row.owners:
            # A differently spelt identity is somebody else.
            assert _called(hook, owner.upper(), resource, sa_groups)
            assert _called(hook, owner.replace(NAMESPACE, "elsewhere"), resource, [])
            assert _called(hook, owner + "x", resource, sa_groups)


def test_sandbox_holds_the_same_webhook_configuration() -> None:
    from bff.sandbox.admission import guard_configuration

    (ours,) = only(built("webhook"), "MutatingWebhookConfiguration")["webhooks"]
    (sandbox,) = guard_configuration("https://127.0.0.1:1", b"pem")["webhooks"]
    assert len(sandbox["rules"]) == 7
    assert {k: v for k, v in sandbox.items() if k != "clientConfig"} == {
        k: v for k, v in ours.items() if k != "clientConfig"
    }
    assert sandbox["clientConfig"]["url"].endswith(ours["clientConfig"]["service"]["path"])


def test_webhook_networkpolicy_opens_only_the_webhook_port_beyond_the_base() -> None:
    base = only(built("base"), "NetworkPolicy")["spec"]
    policy = only(built("webhook"), "NetworkPolicy")["spec"]
    assert policy["ingress"][: len(base["ingress"])] == base["ingress"]
    (extra,) = policy["ingress"][len(base["ingress"]) :]
    assert extra == {"ports": [{"protocol": "TCP", "port": WEBHOOK_PORT}]}
    assert policy["egress"] == base["egress"]


# --- each layout's settings, as the BFF itself reads them ---------------------


@pytest.mark.parametrize("name", ALL_BUILDS)
def test_the_bff_accepts_every_layouts_settings(name: str, tmp_path: Path) -> None:
    """Each BFF_* the Deployment sets is a serve setting, and together they start the BFF."""
    from bff.settings import Command, from_sources, options
    from tests.support.certs import make_server_certificate

    rows = options(Command.SERVE)
    known = {option.env for option in rows.values()}
    flags = {option.flag: field for field, option in rows.items()}
    args = container(built(name)).get("args", [])
    missing = sorted({a.split("=", 1)[0] for a in args} - set(flags))
    if missing:
        # The chart renders the interface of serve's flags that are being
        # added alongside it (--metrics-port, --webhook-cert-*); until they are
        # in this tree, only the other combinations can start the BFF here.
        pytest.skip(f"serve has no {', '.join(missing)} in this tree yet")
    settings_env = env(built(name))
    assert set(settings_env) <= known, sorted(set(settings_env) - known)
    # The files the pod mounts, made here: a certificate, its key, a CA bundle.
    files = make_server_certificate(tmp_path)
    mounted = {"_CERT": files.cert_file, "_KEY": files.key_file, "_CA_BUNDLE": files.ca_file}
    environ = dict(settings_env)
    for key, value in settings_env.items():
        if value.startswith("/etc/harvester-upgrade-bff/"):
            (suffix,) = (s for s in mounted if key.endswith(s))
            environ[key] = str(mounted[suffix])
    parsed = {flags[flag]: value for flag, value in (a.split("=", 1) for a in args)}
    settings = from_sources(parsed, environ, command=Command.SERVE)
    assert settings.auth_mode == settings_env["BFF_AUTH_MODE"]
    assert settings.read_cache is (settings_env["BFF_READ_CACHE"] == "on")
    if name in RANCHER_MODE:
        assert settings.rancher_url == RANCHER_SERVICE_URL
        assert settings.clusters == tuple(clusters(built(name)))
