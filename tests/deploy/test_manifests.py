"""Policy over the rendered Kubernetes manifests (k8s/, every overlay).

Each overlay is rendered with ``kubectl kustomize``, validated with
``kubernetes-validate --strict`` against a pinned Kubernetes version, and parsed; the
tests below are the rules a cluster depends on.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.prestop import MARGIN
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
OVERLAYS = ("dev", "prod")
KUBERNETES_VERSION = "1.31.0"
"""The Kubernetes version manifests are validated against (oldest one supported)."""
CUSTOM_KINDS = {"HTTPRoute", "ScaledObject", "ServiceMonitor"}
"""Kinds from CRDs, which kubernetes-validate has no schema for; checked below instead."""
WORKLOADS = {"Deployment", "DaemonSet", "StatefulSet"}

Manifest = dict[str, Any]


def render(kubectl: str, overlay: str) -> str:
    result = subprocess.run(
        [kubectl, "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


_rendered: dict[str, str] = {}


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest, kubectl: str) -> tuple[str, str]:
    """(name, rendered YAML) of each overlay, rendered once per run."""
    name = request.param
    if name not in _rendered:
        _rendered[name] = render(kubectl, name)
    return name, _rendered[name]


@pytest.fixture
def docs(overlay: tuple[str, str]) -> list[Manifest]:
    return [d for d in yaml.safe_load_all(overlay[1]) if d]


def of_kind(docs: list[Manifest], *kinds: str) -> list[Manifest]:
    return [d for d in docs if d["kind"] in kinds]


def named(docs: list[Manifest], kind: str, name: str) -> Manifest:
    found = [d for d in of_kind(docs, kind) if d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def gateway(docs: list[Manifest]) -> Manifest:
    return named(docs, "Deployment", "relaycast-gateway")


def containers(workload: Manifest) -> list[Manifest]:
    return list(workload["spec"]["template"]["spec"]["containers"])


def config(docs: list[Manifest]) -> dict[str, str]:
    (configmap,) = [
        d for d in of_kind(docs, "ConfigMap") if d["metadata"]["name"].startswith("relaycast-")
    ]
    return dict(configmap["data"])


def selects(selector: Manifest, labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels/matchExpressions, or a plain map) matches."""
    plain = {k: v for k, v in selector.items() if k not in ("matchLabels", "matchExpressions")}
    wanted = {**plain, **selector.get("matchLabels", {})}
    if any(labels.get(k) != v for k, v in wanted.items()):
        return False
    for expr in selector.get("matchExpressions", []):
        value, op = labels.get(expr["key"]), expr["operator"]
        if (op == "In" and value not in expr["values"]) or (
            op == "NotIn" and value in expr["values"]
        ):
            return False
        if (op == "Exists" and value is None) or (op == "DoesNotExist" and value is not None):
            return False
    return bool(wanted or selector.get("matchExpressions"))


def pod_labels(docs: list[Manifest]) -> list[dict[str, str]]:
    return [w["spec"]["template"]["metadata"]["labels"] for w in of_kind(docs, *WORKLOADS)]


# --- schema ----------------------------------------------------------------------------


def test_overlay_is_valid_for_the_pinned_kubernetes_version(overlay, tmp_path):
    name, text = overlay
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    cli = Path(sys.executable).with_name("kubernetes-validate")
    result = subprocess.run(
        [str(cli), "--strict", "-k", KUBERNETES_VERSION, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ERROR" not in result.stdout
    unvalidated = set(re.findall(r"schema for kind (\w+)", result.stdout))
    assert unvalidated <= CUSTOM_KINDS, unvalidated


def test_custom_resources_point_at_what_exists(docs):
    services = {s["metadata"]["name"]: s for s in of_kind(docs, "Service")}
    for route in of_kind(docs, "HTTPRoute"):
        assert route["spec"]["parentRefs"]
        for rule in route["spec"]["rules"]:
            for ref in rule["backendRefs"]:
                ports = [p["port"] for p in services[ref["name"]]["spec"]["ports"]]
                assert ref["port"] in ports
            # WebSockets and SSE are long requests: no request timeout.
            assert rule["timeouts"] == {"request": "0s", "backendRequest": "0s"}
    for scaled in of_kind(docs, "ScaledObject"):
        target = scaled["spec"]["scaleTargetRef"]
        named(docs, target.get("kind", "Deployment"), target["name"])
        queries = [t["metadata"].get("query", "") for t in scaled["spec"]["triggers"]]
        assert any("relaycast_connections" in q for q in queries)
    for monitor in of_kind(docs, "ServiceMonitor"):
        matched = [
            s
            for s in services.values()
            if selects(monitor["spec"]["selector"], s["metadata"].get("labels", {}))
        ]
        assert matched, "ServiceMonitor selects no Service"
        port_names = {p.get("name") for s in matched for p in s["spec"]["ports"]}
        assert {e["port"] for e in monitor["spec"]["endpoints"]} <= port_names


# --- the gateway pod ---------------------------------------------------------------------


def test_gateway_has_probes_and_a_prestop_hook_that_drains(docs):
    (container,) = containers(gateway(docs))
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[:2] == ["relaycast", "drain"]


def test_every_container_has_resources(docs):
    for workload in of_kind(docs, *WORKLOADS):
        for container in containers(workload):
            resources = container.get("resources", {})
            where = f"{workload['metadata']['name']}/{container['name']}"
            assert {"cpu", "memory"} <= set(resources.get("requests", {})), where
            assert "memory" in resources.get("limits", {}), where


def test_grace_period_outlasts_prestop_and_drain(docs):
    drain = float(config(docs)["RELAYCAST_DRAIN_SECONDS"])
    spec = gateway(docs)["spec"]["template"]["spec"]
    # relaycast drain waits up to drain + MARGIN; then the gateway needs a moment to exit.
    assert spec["terminationGracePeriodSeconds"] >= drain + MARGIN + 5
    (container,) = containers(gateway(docs))
    liveness = container["livenessProbe"]
    # The listener is closed while draining: liveness must not kill the pod meanwhile.
    assert liveness["periodSeconds"] * liveness["failureThreshold"] > drain


def test_rolling_update_never_lowers_capacity(docs):
    strategy = gateway(docs)["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0


def test_every_pod_runs_unprivileged_on_a_read_only_root(docs):
    for workload in of_kind(docs, *WORKLOADS):
        spec = workload["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        for container in containers(workload):
            context = container["securityContext"]
            where = f"{workload['metadata']['name']}/{container['name']}"
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["readOnlyRootFilesystem"] is True, where
            assert context.get("privileged", False) is False, where
            assert context["capabilities"]["drop"] == ["ALL"], where


def test_gateways_spread_over_zones_and_hosts(docs):
    spec = gateway(docs)["spec"]["template"]["spec"]
    keys = {c["topologyKey"] for c in spec["topologySpreadConstraints"]}
    assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}


# --- selectors and ports -------------------------------------------------------------------


def test_every_selector_matches_pod_labels(docs):
    pods = pod_labels(docs)
    for workload in of_kind(docs, *WORKLOADS):
        template = workload["spec"]["template"]
        labels = template["metadata"]["labels"]
        assert selects(workload["spec"]["selector"], labels), workload["metadata"]["name"]
        for constraint in template["spec"].get("topologySpreadConstraints", []):
            assert selects(constraint["labelSelector"], labels)
    for service in of_kind(docs, "Service"):
        assert any(selects(service["spec"]["selector"], p) for p in pods), service
    for budget in of_kind(docs, "PodDisruptionBudget"):
        assert any(selects(budget["spec"]["selector"], p) for p in pods), budget
    for policy in of_kind(docs, "NetworkPolicy"):
        assert any(selects(policy["spec"]["podSelector"], p) for p in pods), policy
        for rule in policy["spec"].get("ingress", []):
            for peer in rule["from"]:
                assert any(selects(peer["podSelector"], p) for p in pods), peer
    for scaler in of_kind(docs, "HorizontalPodAutoscaler", "ScaledObject"):
        target = scaler["spec"]["scaleTargetRef"]
        named(docs, target.get("kind", "Deployment"), target["name"])


def test_only_relaycast_processes_reach_redis(docs):
    for policy in of_kind(docs, "NetworkPolicy"):
        allowed = [
            p
            for p in pod_labels(docs)
            for rule in policy["spec"]["ingress"]
            for peer in rule["from"]
            if selects(peer["podSelector"], p)
        ]
        assert {p["app.kubernetes.io/component"] for p in allowed} == {
            "gateway",
            "metrics",
            "alerts",
        }


def test_ports_agree_with_the_gateway_settings(docs):
    settings = config(docs)
    assert all(key.startswith("RELAYCAST_") for key in settings)
    fields = set(Settings.fields())
    assert {key.removeprefix("RELAYCAST_").lower() for key in settings} <= fields
    loaded = Settings.load(env=settings)  # every value is one the gateway accepts
    (container,) = containers(gateway(docs))
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["http"] == loaded.port
    assert loaded.host == "0.0.0.0"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] in ("http", loaded.port)
    service = named(docs, "Service", "relaycast-gateway")
    for port in service["spec"]["ports"]:
        assert port["targetPort"] in ("http", loaded.port)
    service_ports = {p["port"] for p in service["spec"]["ports"]}
    service_names = {p["name"] for p in service["spec"]["ports"]}
    for ingress in of_kind(docs, "Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                port = path["backend"]["service"]["port"]
                assert port.get("number") in service_ports or port.get("name") in service_names


def test_every_relaycast_environment_variable_is_a_setting(docs):
    fields = set(Settings.fields())
    for workload in of_kind(docs, *WORKLOADS):
        for container in containers(workload):
            for env in container.get("env", []):
                if env["name"].startswith("RELAYCAST_"):
                    assert env["name"].removeprefix("RELAYCAST_").lower() in fields, env


def test_metrics_publisher_runs_on_every_node_and_names_it(docs):
    (daemonset,) = of_kind(docs, "DaemonSet")
    (container,) = containers(daemonset)
    assert container["args"] == ["metrics"]
    env = {e["name"]: e for e in container["env"]}
    assert env["RELAYCAST_METRICS_HOST"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"


# --- images, secrets, autoscaling ----------------------------------------------------------


def test_no_image_is_latest_or_untagged(docs):
    for workload in of_kind(docs, *WORKLOADS):
        for container in containers(workload):
            image = container["image"]
            name, _, tag = image.rpartition(":")
            assert name and tag and tag != "latest" and "/" not in tag, image


def test_no_secret_value_is_committed(docs, overlay):
    for secret in of_kind(docs, "Secret"):
        assert not secret.get("data") and not secret.get("stringData"), secret["metadata"]
    for path in K8S.rglob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "Secret":
                assert not doc.get("data") and not doc.get("stringData"), path
            for generator in (doc or {}).get("secretGenerator", []):
                assert not generator.get("literals"), path
    if overlay[0] == "prod":
        # Production pods need the Secret (the Redis URL and keys): no silent default.
        for workload in of_kind(docs, *WORKLOADS):
            refs = [
                e["secretRef"]
                for c in containers(workload)
                for e in c["envFrom"]
                if "secretRef" in e
            ]
            assert refs and all(r["optional"] is False for r in refs)


def test_one_autoscaler_per_workload_and_no_fixed_replicas(docs):
    targets = [
        s["spec"]["scaleTargetRef"]["name"]
        for s in of_kind(docs, "HorizontalPodAutoscaler", "ScaledObject")
    ]
    assert targets.count("relaycast-gateway") == 1
    assert "replicas" not in gateway(docs)["spec"]  # an apply would undo the autoscaler


def test_scale_down_is_slow_and_one_pod_at_a_time(docs):
    behaviors = [h["spec"]["behavior"] for h in of_kind(docs, "HorizontalPodAutoscaler")]
    behaviors += [
        s["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
        for s in of_kind(docs, "ScaledObject")
    ]
    for behavior in behaviors:
        down = behavior["scaleDown"]
        assert down["stabilizationWindowSeconds"] >= 300
        assert all(p["type"] == "Pods" and p["value"] == 1 for p in down["policies"])


def test_publishers_have_probes_on_their_health_port(docs):
    for workload in of_kind(docs, "DaemonSet", "Deployment"):
        (container,) = containers(workload)
        if container["args"] not in (["metrics"], ["alerts"]):
            continue
        env = {e["name"]: e.get("value") for e in container["env"]}
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["health"] == int(env["RELAYCAST_HEALTH_PORT"])
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
