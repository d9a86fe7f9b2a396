"""Self-test of deploy/tests/validate_deploy.py: every validator accepts the project's deployment files and
rejects a deliberately broken copy of them, for the reason it should.

Run through `scripts/validate-deploy.sh --self-test`, which installs the tools and exports their paths
(FLOWMETER_DEPLOY_KUBECTL, FLOWMETER_DEPLOY_DOCKER_COMPOSE). Each test works on a copy of the deployment
files in a temporary folder. Where the Grafana/Prometheus files of the monitoring work are not in the
repository (yet), minimal stand-ins from fixtures/monitoring-placeholders/ take their place in the copy only;
the repository's own validation (scripts/validate-deploy.sh without --self-test) still requires the real ones.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest
import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
VALIDATOR = HERE / "validate_deploy.py"
PLACEHOLDERS = HERE / "fixtures" / "monitoring-placeholders"

# What the validator reads, relative to the repository.
TREE = [
    "Dockerfile",
    ".dockerignore",
    ".env.example",
    "docker-compose.yml",
    "README.md",
    "analyzers",
    "deploy",
    "scripts/sync-deploy-copies.sh",
    "Sources/FlowmeterApp/Run/Runner.swift",
]


def tool(env: str) -> str:
    path = os.environ.get(env)
    if not path or not os.access(path, os.X_OK):
        pytest.fail(f"{env} is not set to an executable: run the self-test as scripts/validate-deploy.sh --self-test, "
                    "which installs the tools and sets it")
    return path


@pytest.fixture(scope="session")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pristine")
    for rel in TREE:
        src = REPO / rel
        dst = root / rel
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("tests", "__pycache__"))
        elif src.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    used = []
    for src in PLACEHOLDERS.rglob("*"):
        rel = src.relative_to(PLACEHOLDERS)
        if src.is_file() and rel.parts[0] == "deploy" and not (root / rel).exists():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, root / rel)
            used.append(str(rel))
    if used:
        print(f"\nnote: stand-ins for files not in the repository: {', '.join(sorted(used))}")
        # The copies in deploy/k8s/base/generated/ must then follow the stand-ins.
        r = subprocess.run(["bash", str(root / "scripts/sync-deploy-copies.sh")], env={**os.environ, "ROOT": str(root)},
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    return root


@pytest.fixture
def tree(pristine: Path, tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    shutil.copytree(pristine, root, symlinks=True)
    return root


def validate(root: Path, *checks: str, wrapper: list[str] | None = None) -> tuple[int, str]:
    cmd = (wrapper or []) + [sys.executable, str(VALIDATOR), "--root", str(root),
                             "--kubectl", tool("FLOWMETER_DEPLOY_KUBECTL"),
                             "--docker-compose", tool("FLOWMETER_DEPLOY_DOCKER_COMPOSE")]
    if checks:
        cmd += ["--only", ",".join(checks)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    return r.returncode, r.stdout + r.stderr


def edit(root: Path, rel: str, old: str, new: str, count: int = 1) -> None:
    p = root / rel
    text = p.read_text()
    assert old in text, f"{rel} does not contain {old!r}: the test needs updating"
    p.write_text(text.replace(old, new, count))


def append(root: Path, rel: str, text: str) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "a") as f:
        f.write(text)


def cut(root: Path, rel: str, start: str, end: str | None = None) -> None:
    """Removes the text from `start` up to `end` (not included), or to the end of the file."""
    p = root / rel
    text = p.read_text()
    assert start in text, f"{rel} does not contain {start!r}: the test needs updating"
    i = text.index(start)
    j = len(text) if end is None else text.index(end, i)
    p.write_text(text[:i] + text[j:])


# ---------------------------------------------------------------------------------------------------------


def test_the_deployment_files_pass_every_check(pristine: Path) -> None:
    rc, out = validate(pristine)
    assert rc == 0, out
    assert re.search(r"validate-deploy: \d+ passed, 0 failed", out), out


def test_validation_needs_no_network(pristine: Path) -> None:
    """Everything runs offline: the whole validation inside a network namespace with no interfaces."""
    unshare = shutil.which("unshare")
    if not unshare or subprocess.run([unshare, "--net", "true"], capture_output=True).returncode != 0:
        pytest.fail("`unshare --net` is not available (it needs root): cannot prove that validation is offline")
    rc, out = validate(pristine, wrapper=[unshare, "--net"])
    assert rc == 0, out


BROKEN: list[tuple[str, str, Callable[[Path], None], str]] = [
    # (id, check, break the copy, expected message)
    # -- compose
    ("compose-v1-schema", "compose",
     lambda t: edit(t, "docker-compose.yml", "services:\n", "name: flowmeter\nservices:\n"),
     "config -q failed"),
    ("compose-bad-key", "compose",
     lambda t: edit(t, "docker-compose.yml", "    restart: unless-stopped\n", "    restart_policy: always\n"),
     "config -q failed"),
    ("compose-not-read-only", "compose",
     lambda t: edit(t, "docker-compose.yml", "  read_only: true\n", "  read_only: false\n"),
     "read_only is not true"),
    ("compose-root-user", "compose",
     lambda t: edit(t, "docker-compose.yml", '  user: "10001:10001"\n', '  user: "0:0"\n'),
     "set a non-root user explicitly"),
    ("compose-secret-in-file", "compose",
     lambda t: edit(t, "docker-compose.yml", "      FLOWMETER_LOG_LEVEL: \"info\"\n",
                    "      FLOWMETER_LOG_LEVEL: \"info\"\n      GF_SECURITY_ADMIN_PASSWORD: hunter2\n"),
     "a password/secret value in the compose file"),
    ("compose-unknown-env", "compose",
     lambda t: append(t, "deploy/compose/flowmeter.env", "FLOWMETER_METRICS_PORT=9464\n"),
     "FLOWMETER_METRICS_PORT is not a Flowmeter option"),
    ("compose-port-mismatch", "compose",
     lambda t: edit(t, "deploy/compose/flowmeter.env", "FLOWMETER_HTTP_ADDR=0.0.0.0:9464", "FLOWMETER_HTTP_ADDR=0.0.0.0:9999"),
     "does not listen on 9464"),
    ("compose-published-port-mismatch", "compose",
     lambda t: edit(t, "docker-compose.yml", ':-9464}:9464"', ':-9464}:9465"'),
     "does not publish container port 9464"),
    ("compose-unknown-flag", "compose",
     lambda t: edit(t, "docker-compose.yml", "      - --failure-rate\n", "      - --failure-ratio\n"),
     "has no option --failure-ratio"),
    ("compose-topic-missing", "compose",
     lambda t: edit(t, "docker-compose.yml", "        exercise.graded.dlq.frontend:1\n", ""),
     "TOPICS lacks exercise.graded.dlq.frontend"),
    ("compose-start-order", "compose",
     lambda t: edit(t, "docker-compose.yml", "      kafka-init:\n        condition: service_completed_successfully\n"
                    "      flowmeter-migrate:", "      kafka-init:\n        condition: service_started\n      flowmeter-migrate:"),
     "wait for service_healthy or service_completed_successfully"),
    ("compose-postgres-password", "compose",
     lambda t: edit(t, "deploy/compose/postgres.env", "POSTGRES_PASSWORD=", "POSTGRES_PASSWORD=other-"),
     "password differs"),
    ("compose-short-grace", "compose",
     lambda t: edit(t, "docker-compose.yml", "stop_grace_period: 40s", "stop_grace_period: 10s"),
     "not longer than the daemon's drain bound"),
    ("compose-knob-undocumented", "compose",
     lambda t: edit(t, "docker-compose.yml", "${STACK_GRAFANA_PORT:-3000}", "${GRAFANA_HOST_PORT:-3000}"),
     "GRAFANA_HOST_PORT is not documented in .env.example"),
    ("compose-rules-not-mounted", "compose",
     lambda t: edit(t, "docker-compose.yml", "      - ./deploy/prometheus/rules:/etc/prometheus/rules:ro\n", ""),
     "rule_files"),
    # -- Dockerfile
    ("dockerfile-port", "dockerfile",
     lambda t: edit(t, "Dockerfile", "EXPOSE 9464", "EXPOSE 9000"),
     "EXPOSE [9000]"),
    ("dockerfile-healthcheck", "dockerfile",
     lambda t: edit(t, "Dockerfile", "EXPOSE 9464", "EXPOSE 9464\nHEALTHCHECK CMD curl -f http://localhost:9464/healthz"),
     "has a HEALTHCHECK"),
    ("dockerfile-extra-package", "dockerfile",
     lambda t: edit(t, "Dockerfile", "librdkafka1 libpq5 ca-certificates", "librdkafka1 libpq5 ca-certificates curl"),
     "extra: ['curl']"),
    ("dockerfile-root", "dockerfile",
     lambda t: edit(t, "Dockerfile", "USER 10001:10001", "USER root"),
     "numeric non-root uid"),
    ("dockerfile-env-name", "dockerfile",
     lambda t: edit(t, "Dockerfile", "ENV FLOWMETER_HTTP_ADDR=0.0.0.0:9464", "ENV FLOWMETER_LISTEN=0.0.0.0:9464"),
     "FLOWMETER_LISTEN is not a Flowmeter option"),
    # -- copies
    ("stale-analyzer-copy", "copies",
     lambda t: append(t, "analyzers/learnflow.yaml", "# changed\n"),
     "generated/analyzers/learnflow.yaml differs from its source"),
    ("stale-dashboard-copy", "copies",
     lambda t: append(t, "deploy/grafana/dashboards/learnflow-overview.json", "\n"),
     "generated/dashboards/learnflow-overview.json differs from its source"),
    # -- kustomize
    ("kustomize-missing-resource", "kustomize",
     lambda t: edit(t, "deploy/k8s/base/kustomization.yaml", "  - pdb.yaml\n", "  - pdb.yaml\n  - missing.yaml\n"),
     "kubectl kustomize deploy/k8s/base (kustomize v2.0.3) failed"),
    ("kustomize-file-outside-folder", "kustomize",
     lambda t: edit(t, "deploy/k8s/base/kustomization.yaml", "      - generated/analyzers/learnflow.yaml",
                    "      - ../../../analyzers/learnflow.yaml"),
     "kubectl kustomize deploy/k8s/base (kustomize v2.0.3) failed"),
    ("kustomize-v3-syntax", "kustomize",
     lambda t: edit(t, "deploy/k8s/overlays/dev/kustomization.yaml", "patchesStrategicMerge:\n  - flowmeter-deployment.yaml",
                    "patches:\n  - path: flowmeter-deployment.yaml"),
     "kubectl kustomize deploy/k8s/overlays/dev (kustomize v2.0.3) failed"),
    # -- Kubernetes schemas
    ("k8s-invalid-type", "k8s-schemas",
     lambda t: edit(t, "deploy/k8s/base/deployment.yaml", "  revisionHistoryLimit: 5\n", "  revisionHistoryLimit: five\n"),
     "spec.revisionHistoryLimit: 'five' is not of type 'integer'"),
    ("k8s-unknown-field", "k8s-schemas",
     lambda t: edit(t, "deploy/k8s/base/service.yaml", "  type: ClusterIP\n", "  type: ClusterIP\n  clusterIPs_: []\n"),
     "Service flowmeter/flowmeter: spec"),
    ("k8s-hpa-v2-invalid", "k8s-schemas",
     lambda t: edit(t, "deploy/k8s/platform/hpa.yaml", "          averageUtilization: 70\n", "          averageUtilisation: 70\n", 2),
     "HorizontalPodAutoscaler learnflow/course-agent"),
    ("dapr-subscription-no-routes", "k8s-schemas",
     lambda t: edit(t, "deploy/dapr/subscriptions.yaml", "  routes:\n    default: /events/learning-requested\n", ""),
     "'routes' is a required property"),
    ("dapr-unknown-field", "k8s-schemas",
     lambda t: edit(t, "deploy/dapr/subscriptions.yaml", "  deadLetterTopic: learning.requested.dlq.course-agent",
                    "  deadLetterTopics: learning.requested.dlq.course-agent"),
     "Additional properties are not allowed ('deadLetterTopics' was unexpected)"),
    ("dapr-resiliency-type", "k8s-schemas",
     lambda t: edit(t, "deploy/dapr/resiliency.yaml", "        maxRetries: 6\n", "        maxRetries: six\n"),
     "maxRetries: 'six' is not of type 'integer'"),
    ("dapr-unserved-version", "k8s-schemas",
     lambda t: edit(t, "deploy/dapr/resiliency.yaml", "apiVersion: dapr.io/v1alpha1", "apiVersion: dapr.io/v2"),
     "Dapr serves no such version of Resiliency"),
    ("unknown-kind", "k8s-schemas",
     lambda t: (append(t, "deploy/k8s/platform/widget.yaml",
                       "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n  namespace: learnflow\nspec: {}\n"),
                edit(t, "deploy/k8s/platform/kustomization.yaml", "  - hpa.yaml\n", "  - hpa.yaml\n  - widget.yaml\n")),
     "unknown kind Widget (example.com/v1)"),
    ("extra-kind-kafkatopic", "k8s-schemas",
     lambda t: edit(t, "deploy/k8s/platform/kafka-topics.yaml", "  partitions: 6\n", "  partitions: 0\n"),
     "spec.partitions: 0 is less than the minimum of 1"),
    ("extra-kind-kafkatopic-cluster-label", "k8s-schemas",
     lambda t: edit(t, "deploy/k8s/platform/kafka-topics.yaml", "    strimzi.io/cluster: learnflow\n", ""),
     "'strimzi.io/cluster' is a required property"),
    ("extra-kind-servicemonitor", "k8s-schemas",
     lambda t: edit(t, "deploy/k8s/base/servicemonitor.yaml", "    - port: metrics\n", "    - portName: metrics\n"),
     "ServiceMonitor flowmeter/flowmeter"),
    ("extra-kind-argocd", "k8s-schemas",
     lambda t: edit(t, "deploy/argocd/flowmeter-dev.yaml", "  project: default\n", "  projekt: default\n"),
     "Application argocd/flowmeter-dev"),
    # -- Flowmeter's objects
    ("k8s-port-mismatch", "k8s-flowmeter",
     lambda t: edit(t, "deploy/k8s/base/deployment.yaml", "containerPort: 9464", "containerPort: 9465"),
     "container ports [9465]"),
    ("k8s-http-addr-mismatch", "k8s-flowmeter",
     lambda t: edit(t, "deploy/k8s/base/deployment.yaml", "value: 0.0.0.0:9464", "value: 0.0.0.0:8080"),
     "does not listen on 9464"),
    ("k8s-unknown-env", "k8s-flowmeter",
     lambda t: edit(t, "deploy/k8s/base/deployment.yaml", "- name: FLOWMETER_GROUP", "- name: FLOWMETER_CONSUMER_GROUP"),
     "FLOWMETER_CONSUMER_GROUP is not a Flowmeter option"),
    ("k8s-readiness-path", "k8s-flowmeter",
     lambda t: edit(t, "deploy/k8s/base/deployment.yaml", "path: /readyz", "path: /healthz"),
     "readinessProbe asks /healthz, expected /readyz"),
    ("k8s-short-grace", "k8s-flowmeter",
     lambda t: edit(t, "deploy/k8s/base/deployment.yaml", "terminationGracePeriodSeconds: 45", "terminationGracePeriodSeconds: 30"),
     "terminationGracePeriodSeconds 30 is not longer than the daemon's drain bound"),
    ("k8s-writable-root", "k8s-flowmeter",
     lambda t: edit(t, "deploy/k8s/base/deployment.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false"),
     "readOnlyRootFilesystem is not true"),
    ("k8s-literal-postgres-url", "k8s-flowmeter",
     lambda t: edit(t, "deploy/k8s/base/deployment.yaml",
                    "            - name: FLOWMETER_POSTGRES_URL\n              valueFrom:\n                secretKeyRef:\n"
                    "                  name: flowmeter-postgres\n                  key: url\n",
                    "            - name: FLOWMETER_POSTGRES_URL\n              value: postgres://u:p@db/flowmeter\n"),
     "must come from a Secret"),
    ("k8s-servicemonitor-port", "k8s-flowmeter",
     lambda t: edit(t, "deploy/k8s/base/servicemonitor.yaml", "    - port: metrics\n", "    - port: http\n"),
     "scrapes port http"),
    ("k8s-networkpolicy-open-egress", "k8s-flowmeter",
     lambda t: edit(t, "deploy/k8s/base/networkpolicy.yaml", "  egress:\n", "  egress:\n    - {}\n"),
     "an egress rule allows every destination"),
    ("k8s-networkpolicy-ingress", "k8s-flowmeter",
     lambda t: edit(t, "deploy/k8s/base/networkpolicy.yaml", "              app.kubernetes.io/name: prometheus\n",
                    "              app.kubernetes.io/name: grafana\n"),
     "only Prometheus"),
    # -- platform
    ("resiliency-unbounded", "platform",
     lambda t: edit(t, "deploy/dapr/resiliency.yaml", "        maxRetries: 6\n", ""),
     "unbounded retries stall the partition"),
    ("subscription-dlq-mismatch", "platform",
     lambda t: edit(t, "deploy/dapr/subscriptions.yaml", "deadLetterTopic: exercise.graded.dlq.frontend",
                    "deadLetterTopic: exercise.graded.dlq"),
     "does not list for that subscriber and topic"),
    ("kafkatopic-missing", "platform",
     lambda t: edit(t, "deploy/k8s/platform/kafka-topics.yaml", "  topicName: progress.updated.dlq.frontend\n",
                    "  topicName: progress.updated.dlq.front\n"),
     "KafkaTopic progress.updated.dlq.front is not in analyzers/learnflow.yaml"),
    ("tracing-off", "platform",
     lambda t: edit(t, "deploy/dapr/configuration.yaml", 'samplingRate: "1"', 'samplingRate: "0"'),
     "leaves traceparent empty on Kafka"),
    ("hpa-metric-not-served", "platform",
     lambda t: edit(t, "deploy/k8s/platform/hpa.yaml", "name: learnflow_consumergroup_lag_seconds_max",
                    "name: flowmeter_consumergroup_lag_seconds"),
     "is not served by the Prometheus adapter rules"),
    ("repartition-kafkatopic-missing", "platform",
     lambda t: cut(t, "deploy/k8s/platform/kafka-topics.yaml", "---\n# Flowmeter's internal flow repartition topic"),
     "no KafkaTopic for Flowmeter's flow repartition topic flowmeter.flow-repartition"),
    ("repartition-kafkatopic-other-group", "platform",
     lambda t: edit(t, "deploy/k8s/platform/kafka-topics.yaml", "  topicName: flowmeter.flow-repartition\n",
                    "  topicName: analytics.flow-repartition\n"),
     "KafkaTopic analytics.flow-repartition is the flow repartition topic of another consumer group"),
    ("repartition-group-renamed", "platform",
     lambda t: edit(t, "deploy/k8s/base/deployment.yaml", "- name: FLOWMETER_GROUP\n              value: flowmeter\n",
                    "- name: FLOWMETER_GROUP\n              value: flow meter/v2\n"),
     "no KafkaTopic for Flowmeter's flow repartition topic flow_meter_v2.flow-repartition"),
    ("repartition-too-few-partitions", "platform",
     lambda t: edit(t, "deploy/k8s/platform/kafka-topics.yaml", "  partitions: 12\n", "  partitions: 1\n"),
     "KafkaTopic flowmeter.flow-repartition has 1 partition(s), fewer than the replicas of Deployment flowmeter/flowmeter"),
    ("hpa-beyond-partitions", "platform",
     lambda t: edit(t, "deploy/k8s/platform/hpa.yaml", "  maxReplicas: 6\n", "  maxReplicas: 12\n"),
     "exceeds the partitions"),
    # -- Helm values
    ("helm-missing-dashboard", "helm-values",
     lambda t: edit(t, "deploy/monitoring/grafana-values.yaml", "Flowmeter/learnflow-overview.json", "Flowmeter/missing.json"),
     "no dashboard missing.json"),
    ("helm-folder-differs-from-compose", "helm-values",
     lambda t: edit(t, "deploy/grafana/provisioning/dashboards/flowmeter.yaml", "folder: Flowmeter", "folder: Other"),
     "differs from the compose provisioning's ['Other']"),
    ("helm-sidecar-label", "helm-values",
     lambda t: edit(t, "deploy/monitoring/grafana-values.yaml", "    label: grafana_dashboard\n", "    label: grafana-dashboard\n"),
     "the sidecar loads label grafana-dashboard"),
    ("helm-datasource-url", "helm-values",
     lambda t: edit(t, "deploy/monitoring/grafana-values.yaml", "kube-prometheus-stack-prometheus.monitoring.svc:9090",
                    "prometheus.monitoring.svc:9090"),
     "is not kube-prometheus-stack's Prometheus"),
    ("helm-dapr-port", "helm-values",
     lambda t: (edit(t, "deploy/monitoring/kube-prometheus-stack-values.yaml", '"${1}:9090"', '"${1}:9091"'),
                edit(t, "deploy/monitoring/kube-prometheus-stack-values.yaml", "regex: dapr-metrics", "regex: metrics")),
     "does not scrape the sidecars' metrics port 9090"),
    ("helm-rules-not-selected", "helm-values",
     lambda t: edit(t, "deploy/monitoring/kube-prometheus-stack-values.yaml", "    ruleSelector: {}\n",
                    "    ruleSelector:\n      matchLabels:\n        team: other\n"),
     "Prometheus does not select PrometheusRule"),
    # -- Argo CD
    ("argocd-wrong-path", "argocd",
     lambda t: edit(t, "deploy/argocd/flowmeter-prod.yaml", "path: deploy/k8s/overlays/prod", "path: deploy/k8s/overlay/prod"),
     "no Argo CD Application for overlay deploy/k8s/overlays/prod"),
]


@pytest.mark.parametrize("check,breakage,expected", [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_a_broken_copy_is_rejected(tree: Path, check: str, breakage: Callable[[Path], None], expected: str) -> None:
    # The unbroken copy passes every check (test_the_deployment_files_pass_every_check), so the failure below
    # is the breakage's, and the expected message says it is the right one.
    breakage(tree)
    rc, out = validate(tree, check)
    assert rc == 1, f"check {check} accepted the broken copy:\n{out}"
    assert f"FAIL {check}" in out, out
    assert expected in out, f"expected {expected!r} in:\n{out}"


def test_missing_tool_fails_instead_of_skipping(pristine: Path) -> None:
    cmd = [sys.executable, str(VALIDATOR), "--root", str(pristine), "--kubectl", "/nonexistent/kubectl",
           "--docker-compose", "/nonexistent/docker-compose", "--only", "compose,kustomize"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 1, r.stdout
    assert "tool missing: docker-compose" in r.stdout and "tool missing: Debian's kubectl 1.20" in r.stdout, r.stdout


def test_missing_monitoring_files_are_named(tree: Path) -> None:
    (tree / "deploy/prometheus/rules/flowmeter.rules.yaml").unlink()
    shutil.rmtree(tree / "deploy/grafana/dashboards")
    rc, out = validate(tree, "monitoring-files", "copies")
    assert rc == 1
    assert "deploy/prometheus/rules/flowmeter.rules.yaml is missing" in out, out
    assert "deploy/grafana/dashboards/consumer-lag.json is missing" in out, out
    assert "source missing: deploy/prometheus/rules/flowmeter.rules.yaml" in out, out


def test_every_check_is_exercised() -> None:
    names = subprocess.run([sys.executable, str(VALIDATOR), "--list"], capture_output=True, text=True).stdout.split()
    broken = {b[1] for b in BROKEN} | {"monitoring-files"}
    assert set(names) - broken <= {"env-names"}, f"checks without a broken-copy test: {set(names) - broken}"


def test_env_names_follow_the_readme(tree: Path) -> None:
    edit(tree, "README.md", "| `--group` | `FLOWMETER_GROUP` |", "| `--group` | `FLOWMETER_CONSUMER_GROUP` |")
    rc, out = validate(tree, "env-names")
    assert rc == 1 and "FLOWMETER_CONSUMER_GROUP, unknown to validate_deploy.py" in out, out


def test_copies_are_yaml(pristine: Path) -> None:
    # The PrometheusRule copy parses and carries the rules file's groups.
    pr = yaml.safe_load((pristine / "deploy/k8s/base/generated/prometheusrule.yaml").read_text())
    rules = yaml.safe_load((pristine / "deploy/prometheus/rules/flowmeter.rules.yaml").read_text())
    assert pr["kind"] == "PrometheusRule" and pr["spec"]["groups"] == rules["groups"]
