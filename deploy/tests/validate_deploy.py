#!/usr/bin/env python3
"""Offline validation of Flowmeter's deployment files.

Run through scripts/validate-deploy.sh, which installs the tools and the Python packages this needs
(docker-compose, Debian's kubectl 1.20 with kustomize v2.0.3, kubernetes-validate, PyYAML, jsonschema) and
passes their paths. Every check either passes or fails with messages that name the file and the object;
a missing tool is a failure, never a skip.

    validate_deploy.py --root DIR --kubectl PATH --docker-compose PATH [--modern-kubectl PATH]
                       [--only CHECK,CHECK] [--list]

Checks (in order):
  monitoring-files  the Grafana/Prometheus files this deployment refers to exist
  env-names         the FLOWMETER_* names below match the README's options table (and `flowmeter run --help`
                    when FLOWMETER_BIN names a built binary)
  dockerfile        multi-stage, bookworm-slim runtime with only librdkafka1/libpq5/ca-certificates, non-root,
                    no HEALTHCHECK, ENTRYPOINT ["flowmeter"], CMD ["run"], EXPOSE 9464, valid ENV names
  compose           `docker-compose -f docker-compose.yml config -q`, then: hardened non-root read-only
                    Flowmeter containers, valid commands/flags/env names, port 9464 everywhere, health-checked
                    start order, named volumes, no secrets in the file, topics = the analyzer file, the
                    PostgreSQL URL = the database's settings, Prometheus/Grafana mounts and references
  copies            deploy/k8s/base/generated/ is what scripts/sync-deploy-copies.sh writes from the sources
  kustomize         `kubectl kustomize` (kustomize v2.0.3) of every kustomization under deploy/; also compared
                    with a modern kustomize when one is on PATH
  k8s-schemas       every object of both overlays and every Argo CD Application: Kubernetes kinds against
                    kubernetes-validate's strict schemas, Dapr kinds against deploy/schemas/dapr/ (strict),
                    ServiceMonitor/PrometheusRule/Application/KafkaTopic against deploy/schemas/extra-kinds.yaml;
                    any other kind fails
  k8s-flowmeter     the Deployment, Service, ServiceMonitor, NetworkPolicy, PDB, Job, ConfigMaps and
                    PrometheusRule of each overlay agree with each other and with the daemon (ports, probes,
                    env names, security context, drain time, analyzer/dashboard/rule copies)
  platform          KafkaTopics, Dapr Subscriptions (dead-letter topics), Components, Resiliency (bounded
                    retries), Configuration and HPAs agree with analyzers/learnflow.yaml and the adapter rules;
                    the KafkaTopics are the analyzer topics plus Flowmeter's <FLOWMETER_GROUP>.flow-repartition,
                    with at least as many partitions as Flowmeter may have replicas
  helm-values       deploy/monitoring/*.yaml parsed and cross-checked against the manifests and the
                    dashboards, rules, ports and names they refer to
  argocd            one Application per overlay, each pointing at an existing overlay

Ends with a line `validate-deploy: N passed, N failed`.
"""

from __future__ import annotations

import argparse
import copy
import fnmatch
import functools
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.parse
from pathlib import Path
from typing import Any, Callable

import jsonschema
import yaml

# ---------------------------------------------------------------------------------------------------------
# The daemon's contract (DESIGN.md 3.1 and the README's "Options" table). Keep in step with the README: the
# env-names check fails when the two differ.

VALID_ENV = {
    "FLOWMETER_BROKERS",
    "FLOWMETER_POSTGRES_URL",
    "FLOWMETER_ANALYZERS",
    "FLOWMETER_HTTP_ADDR",
    "FLOWMETER_GROUP",
    "FLOWMETER_FROM",
    "FLOWMETER_FLUSH_INTERVAL",
    "FLOWMETER_LAG_INTERVAL",
    "FLOWMETER_RETENTION",
    "FLOWMETER_KAFKA_PROPERTIES",
    # Documented in the README's prose rather than the options table.
    "FLOWMETER_LOG_LEVEL",
    "FLOWMETER_MAX_UNFLUSHED_RECORDS",
    "FLOWMETER_LAG_SAMPLE_INTERVAL",
    "FLOWMETER_HTTP_IDLE_TIMEOUT",
    "FLOWMETER_PG_STATEMENT_TIMEOUT",
    "FLOWMETER_REPARTITION_PARTITIONS",
}
# Names in the README that belong to the test harness, not to the daemon.
TEST_ONLY_ENV = {
    "FLOWMETER_TEST_POSTGRES_URL",
    "FLOWMETER_BIN",
    "FLOWMETER_PROMTOOL",
    # benchmark scripts (scripts/bench-backfill.sh, scripts/bench-check.sh)
    "FLOWMETER_BASELINE_BIN",
    "FLOWMETER_BENCH_SCRATCH",
}

COMMON_FLAGS = {
    "--brokers", "--postgres", "--analyzers", "--http", "--group", "--from", "--flush-interval",
    "--lag-interval", "--retention", "--kafka-property",
}
SUBCOMMAND_FLAGS = {
    "run": COMMON_FLAGS,
    "migrate": COMMON_FLAGS,
    "backfill": COMMON_FLAGS | {"--until-end"},
    "check": COMMON_FLAGS | {"--format"},
    "query": COMMON_FLAGS | {"--since", "--until", "--topic", "--flow", "--group", "--format"},
    "simulate": {"--brokers", "--kafka-property", "--learners", "--rate", "--failure-rate", "--seed", "--duration",
                 "--slow-group", "--stall-group", "--report-interval"},
    "demo": COMMON_FLAGS | {"--learners", "--rate", "--failure-rate", "--seed", "--duration", "--slow-group",
                            "--stall-group", "--report-interval"},
    "dev-kafka": {"--broker-count", "--topic", "--exit-on-stdin-close"},
}

HTTP_PORT = 9464
# Flowmeter's flow repartition topic: <group>.flow-repartition, the group's characters outside [a-zA-Z0-9._-]
# replaced by _, at most 249 characters (Repartition.topicName in Sources/FlowmeterApp/Run/Repartition.swift).
DEFAULT_GROUP = "flowmeter"
REPARTITION_SUFFIX = ".flow-repartition"
TOPIC_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
DAPR_METRICS_PORT = 9090
MONITORING_NAMESPACE = "monitoring"
LAG_METRICS = {"flowmeter_consumergroup_lag_seconds", "flowmeter_consumergroup_lag_messages"}
RUNTIME_PACKAGES = {"librdkafka1", "libpq5", "ca-certificates"}
DASHBOARD_LABEL = ("grafana_dashboard", "1")
KUBERNETES_VERSION = "1.30.0"

# Files the monitoring work (Grafana dashboards and provisioning, Prometheus configuration and rules) adds.
MONITORING_FILES = [
    "deploy/grafana/dashboards/learnflow-overview.json",
    "deploy/grafana/dashboards/consumer-lag.json",
    "deploy/grafana/dashboards/flowmeter-self.json",
    "deploy/grafana/dashboards/dapr-pubsub.json",
    "deploy/grafana/provisioning/dashboards/flowmeter.yaml",
    "deploy/grafana/provisioning/datasources/prometheus.yaml",
    "deploy/prometheus/rules/flowmeter.rules.yaml",
    "deploy/prometheus/prometheus.yml",
]
RULES_FILE = "deploy/prometheus/rules/flowmeter.rules.yaml"
DASHBOARDS_DIR = "deploy/grafana/dashboards"
RUNNER_SWIFT = "Sources/FlowmeterApp/Run/Runner.swift"


class CheckFailed(Exception):
    """A prerequisite of a check is missing; the message says which."""


def load_yaml_all(path: Path) -> list[Any]:
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def load_yaml(path: Path) -> Any:
    with open(path) as f:
        return yaml.safe_load(f)


def obj_id(o: dict) -> str:
    md = o.get("metadata") or {}
    ns = md.get("namespace")
    return f"{o.get('kind')} {ns + '/' if ns else ''}{md.get('name')}"


def port_of(addr: str) -> int | None:
    m = re.search(r":(\d+)$", addr.strip())
    return int(m.group(1)) if m else None


def labels_match(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def strip_hash_suffix(name: str) -> str:
    return re.sub(r"-[a-z0-9]{10}$", "", name)


class Context:
    def __init__(self, args: argparse.Namespace):
        self.root = Path(args.root).resolve()
        absolute = lambda p: os.path.abspath(p) if p else p  # noqa: E731  (commands run with cwd = root)
        self.kubectl = absolute(args.kubectl)
        self.docker_compose = absolute(args.docker_compose)
        self.modern_kubectl = absolute(args.modern_kubectl)
        self.errors: list[str] = []
        self.notes: list[str] = []
        self._builds: dict[str, tuple[list[dict] | None, str]] = {}
        self._compose: dict | None = None
        self._compose_error: str | None = None

    # -- reporting
    def fail(self, msg: str) -> None:
        self.errors.append(msg)

    def note(self, msg: str) -> None:
        self.notes.append(msg)

    def rel(self, p: Path | str) -> str:
        try:
            return str(Path(p).resolve().relative_to(self.root))
        except ValueError:
            return str(p)

    def path(self, rel: str) -> Path:
        return self.root / rel

    def require(self, rel: str, what: str) -> Path:
        p = self.path(rel)
        if not p.exists():
            raise CheckFailed(f"{rel} is missing ({what})")
        return p

    # -- the analyzer file
    @functools.cached_property
    def analyzers(self) -> dict:
        p = self.require("analyzers/learnflow.yaml", "the LearnFlow analyzer definitions")
        d = load_yaml(p)
        topics = list(d.get("topics") or [])
        dlqs = [(x["topic"], x.get("source"), x.get("subscriber")) for x in (d.get("dead_letters") or {}).get("topics") or []]
        groups = {g["group"]: list(g.get("topics") or []) for g in d.get("groups") or []}
        return {"topics": topics, "dlqs": dlqs, "groups": groups}

    @property
    def all_topics(self) -> set[str]:
        a = self.analyzers
        return set(a["topics"]) | {t for t, _, _ in a["dlqs"]}

    # -- drain bound of the daemon
    @functools.cached_property
    def drain_seconds(self) -> int:
        p = self.require(RUNNER_SWIFT, "where the daemon sets its graceful-shutdown bounds")
        text = p.read_text()
        g = re.search(r"maximumGracefulShutdownDuration\s*=\s*\.seconds\((\d+)\)", text)
        c = re.search(r"maximumCancellationDuration\s*=\s*\.seconds\((\d+)\)", text)
        if not g or not c:
            raise CheckFailed(
                f"{RUNNER_SWIFT}: maximumGracefulShutdownDuration/maximumCancellationDuration = .seconds(N) not "
                "found; update deploy/tests/validate_deploy.py (drain_seconds) to where the drain bound is set")
        return int(g.group(1)) + int(c.group(1))

    # -- tools
    def run(self, cmd: list[str], cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, cwd=cwd or self.root, env=env, capture_output=True, text=True)

    def require_tool(self, path: str | None, name: str) -> str:
        if not path or not os.path.isfile(path) or not os.access(path, os.X_OK):
            raise CheckFailed(f"tool missing: {name} ({path or 'no path given'}); scripts/validate-deploy.sh installs it")
        return path

    # -- kustomize builds
    def kustomizations(self) -> list[Path]:
        found = sorted({p.parent for p in self.path("deploy").rglob("kustomization.yaml")})
        return [p for p in found if "tests" not in p.relative_to(self.root).parts]

    def overlays(self) -> list[Path]:
        d = self.path("deploy/k8s/overlays")
        return sorted(p for p in d.iterdir() if (p / "kustomization.yaml").exists()) if d.is_dir() else []

    def build(self, directory: Path) -> tuple[list[dict] | None, str]:
        key = str(directory)
        if key not in self._builds:
            kubectl = self.require_tool(self.kubectl, "Debian's kubectl 1.20 (kustomize v2.0.3)")
            r = self.run([kubectl, "kustomize", str(directory)])
            if r.returncode != 0:
                self._builds[key] = (None, (r.stderr or r.stdout).strip())
            else:
                try:
                    self._builds[key] = ([d for d in yaml.safe_load_all(r.stdout) if d], "")
                except yaml.YAMLError as e:
                    self._builds[key] = (None, f"output is not YAML: {e}")
        return self._builds[key]

    def overlay_objects(self, overlay: Path) -> list[dict]:
        objs, err = self.build(overlay)
        if objs is None:
            raise CheckFailed(f"cannot check {self.rel(overlay)}: its kustomize build fails (see the check kustomize)")
        return objs

    # -- docker-compose
    def compose(self) -> dict:
        if self._compose is None and self._compose_error is None:
            tool = self.require_tool(self.docker_compose, "docker-compose (Debian package docker-compose)")
            self.require("docker-compose.yml", "the compose file")
            env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")}
            r = self.run([tool, "-f", "docker-compose.yml", "config", "-q"], env=env)
            if r.returncode != 0:
                self._compose_error = f"docker-compose -f docker-compose.yml config -q failed: {(r.stderr or r.stdout).strip()}"
            else:
                r = self.run([tool, "-f", "docker-compose.yml", "config"], env=env)
                if r.returncode != 0:
                    self._compose_error = f"docker-compose config failed: {(r.stderr or r.stdout).strip()}"
                else:
                    self._compose = yaml.safe_load(r.stdout)
        if self._compose_error:
            raise CheckFailed(self._compose_error)
        return self._compose  # type: ignore[return-value]

    @functools.cached_property
    def dashboards(self) -> dict[str, bytes]:
        d = self.path(DASHBOARDS_DIR)
        return {p.name: p.read_bytes() for p in sorted(d.glob("*.json"))} if d.is_dir() else {}


# ---------------------------------------------------------------------------------------------------------
# Checks


def check_monitoring_files(ctx: Context) -> None:
    missing = [f for f in MONITORING_FILES if not ctx.path(f).exists()]
    for f in missing:
        ctx.fail(f"{f} is missing: it comes with the Grafana dashboards / Prometheus rules work "
                 "(deploy/grafana/, deploy/prometheus/); merge it, then run scripts/sync-deploy-copies.sh")
    for name, raw in ctx.dashboards.items():
        try:
            d = json.loads(raw)
        except json.JSONDecodeError as e:
            ctx.fail(f"{DASHBOARDS_DIR}/{name}: not JSON: {e}")
            continue
        if not isinstance(d, dict) or not d.get("uid") or not d.get("title"):
            ctx.fail(f"{DASHBOARDS_DIR}/{name}: a dashboard needs a uid and a title")


def env_names_in(text: str) -> set[str]:
    return set(re.findall(r"\bFLOWMETER_[A-Z0-9_]+\b", text))


def check_env_names(ctx: Context) -> None:
    readme = ctx.require("README.md", "the options table").read_text()
    for name in sorted(VALID_ENV - env_names_in(readme)):
        ctx.fail(f"README.md does not mention {name}, which validate_deploy.py accepts: remove it from VALID_ENV "
                 "or document it")
    # The options table: rows `| --flag | FLOWMETER_X | ...`.
    table = set(re.findall(r"^\|\s*`--[^|]*\|\s*`(FLOWMETER_[A-Z0-9_]+)`", readme, flags=re.M))
    if not table:
        ctx.fail("README.md: no options table (| `--flag` | `FLOWMETER_NAME` | ...) found")
    for name in sorted(table - VALID_ENV):
        ctx.fail(f"README.md options table has {name}, unknown to validate_deploy.py: add it to VALID_ENV")
    for name in sorted(env_names_in(readme) - VALID_ENV - TEST_ONLY_ENV):
        ctx.fail(f"README.md mentions {name}: add it to VALID_ENV (daemon option) or TEST_ONLY_ENV (test harness)")
    binary = os.environ.get("FLOWMETER_BIN")
    if binary and os.access(binary, os.X_OK):
        r = ctx.run([binary, "run", "--help"])
        helped = set(re.findall(r"Env:\s*(FLOWMETER_[A-Z0-9_]+)", r.stdout.replace("\n", " ")))
        for name in sorted(helped - VALID_ENV):
            ctx.fail(f"`{binary} run --help` names {name}, unknown to validate_deploy.py")
        ctx.note(f"`flowmeter run --help` of {binary}: {len(helped)} environment variables, all known")
    else:
        ctx.note("FLOWMETER_BIN not set: `flowmeter run --help` not compared (the README table was)")


def check_env_map(ctx: Context, where: str, env: dict[str, Any]) -> None:
    for name, value in env.items():
        if name.startswith("FLOWMETER_") and name not in VALID_ENV:
            ctx.fail(f"{where}: {name} is not a Flowmeter option (DESIGN.md 3.1 / README options table)")
        if name == "FLOWMETER_HTTP_ADDR" and isinstance(value, str):
            if port_of(value) != HTTP_PORT:
                ctx.fail(f"{where}: FLOWMETER_HTTP_ADDR={value} does not listen on {HTTP_PORT}, the port "
                         "the image exposes and Prometheus scrapes")


def check_command(ctx: Context, where: str, argv: list[str]) -> str | None:
    if not argv:
        ctx.fail(f"{where}: no subcommand (the image's default is run; say it)")
        return None
    sub = str(argv[0])
    if sub not in SUBCOMMAND_FLAGS:
        ctx.fail(f"{where}: `{sub}` is not a flowmeter subcommand ({', '.join(sorted(SUBCOMMAND_FLAGS))})")
        return sub
    for a in argv[1:]:
        a = str(a)
        if a.startswith("--"):
            flag = a.split("=", 1)[0]
            if flag not in SUBCOMMAND_FLAGS[sub]:
                ctx.fail(f"{where}: `flowmeter {sub}` has no option {flag}")
    return sub


# -- Dockerfile


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    lines, cur = [], ""
    for raw in text.splitlines():
        s = raw.strip()
        if not cur and (not s or s.startswith("#")):
            continue
        if cur and s.startswith("#"):
            continue
        if s.endswith("\\"):
            cur += s[:-1] + " "
            continue
        cur += s
        parts = cur.split(None, 1)
        lines.append((parts[0].upper(), parts[1] if len(parts) > 1 else ""))
        cur = ""
    return lines


def check_dockerfile(ctx: Context) -> None:
    text = ctx.require("Dockerfile", "the container image").read_text()
    ins = dockerfile_instructions(text)
    args: dict[str, str] = {}
    stages: list[list[tuple[str, str]]] = []
    bases: list[str] = []
    for op, rest in ins:
        if op == "ARG" and not stages:
            k, _, v = rest.partition("=")
            args[k.strip()] = v.strip().strip('"')
        elif op == "FROM":
            image = rest.split()[0]
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), image)
            bases.append(image)
            stages.append([])
        elif stages:
            stages[-1].append((op, rest))
    if len(stages) < 2:
        ctx.fail("Dockerfile: not multi-stage (a Swift builder stage and a runtime stage)")
        return
    if not bases[0].startswith("swift:"):
        ctx.fail(f"Dockerfile: the builder stage is {bases[0]}, not a swift: image")
    if not re.fullmatch(r"debian:bookworm-slim(@sha256:[0-9a-f]{64})?", bases[-1]):
        ctx.fail(f"Dockerfile: the runtime stage is {bases[-1]}, not debian:bookworm-slim")
    if any(op == "HEALTHCHECK" for op, _ in ins):
        ctx.fail("Dockerfile: has a HEALTHCHECK (Kubernetes probes and the compose file check health)")
    final = stages[-1]
    packages: set[str] = set()
    for op, rest in final:
        if op == "RUN":
            for m in re.finditer(r"apt-get\s+install\s+(.*?)(?:&&|;|$)", rest):
                packages |= {t for t in m.group(1).split() if not t.startswith("-")}
    if packages != RUNTIME_PACKAGES:
        extra, lacking = packages - RUNTIME_PACKAGES, RUNTIME_PACKAGES - packages
        ctx.fail(f"Dockerfile: the runtime stage installs {sorted(packages)}; expected exactly {sorted(RUNTIME_PACKAGES)}"
                 + (f" (extra: {sorted(extra)})" if extra else "") + (f" (missing: {sorted(lacking)})" if lacking else ""))
    users = [rest.strip() for op, rest in final if op == "USER"]
    if not users:
        ctx.fail("Dockerfile: the runtime stage sets no USER (runs as root)")
    else:
        uid = users[-1].split(":")[0]
        if uid in ("0", "root") or not uid.isdigit():
            ctx.fail(f"Dockerfile: USER {users[-1]}: use a numeric non-root uid (Kubernetes runAsNonRoot checks it)")

    def json_form(op: str) -> Any:
        vals = [rest for o, rest in final if o == op]
        if not vals:
            return None
        try:
            return json.loads(vals[-1])
        except json.JSONDecodeError:
            return vals[-1]

    if json_form("ENTRYPOINT") != ["flowmeter"]:
        ctx.fail(f"Dockerfile: ENTRYPOINT is {json_form('ENTRYPOINT')!r}, expected [\"flowmeter\"]")
    if json_form("CMD") != ["run"]:
        ctx.fail(f"Dockerfile: CMD is {json_form('CMD')!r}, expected [\"run\"]")
    exposed = {int(p.split("/")[0]) for op, rest in final if op == "EXPOSE" for p in rest.split()}
    if exposed != {HTTP_PORT}:
        ctx.fail(f"Dockerfile: EXPOSE {sorted(exposed)}; the daemon listens on {HTTP_PORT} only")
    env: dict[str, str] = {}
    for op, rest in final:
        if op == "ENV":
            for m in re.finditer(r"(\w+)=(\"[^\"]*\"|\S+)", rest):
                env[m.group(1)] = m.group(2).strip('"')
    check_env_map(ctx, "Dockerfile ENV", env)
    dockerignore = ctx.path(".dockerignore")
    if not dockerignore.exists():
        ctx.fail(".dockerignore is missing (the build context would include .build/ and .git/)")
    else:
        ignored = {line.strip() for line in dockerignore.read_text().splitlines()}
        for must in (".git", ".build"):
            if must not in ignored:
                ctx.fail(f".dockerignore does not exclude {must}")


# -- docker-compose


def compose_mounts(service: dict) -> list[tuple[str, str, str]]:
    """(type, source, target) of every volume of a service in `docker-compose config` output."""
    out = []
    for v in service.get("volumes") or []:
        if isinstance(v, dict):
            out.append((v.get("type", "volume"), str(v.get("source", "")), str(v.get("target", ""))))
        else:
            parts = str(v).split(":")
            if len(parts) >= 2:
                src, tgt = parts[0], parts[1]
                out.append(("bind" if src.startswith(("/", ".")) else "volume", src, tgt))
    return out


def host_path_for(service: dict, container_path: str) -> Path | None:
    best = None
    for typ, src, tgt in compose_mounts(service):
        if typ != "bind":
            continue
        if container_path == tgt or container_path.startswith(tgt.rstrip("/") + "/"):
            if best is None or len(tgt) > len(best[1]):
                best = (src, tgt)
    if best is None:
        return None
    return Path(best[0] + container_path[len(best[1]):])


def container_ports(service: dict) -> set[int]:
    ports = set()
    for p in service.get("ports") or []:
        if isinstance(p, dict):
            ports.add(int(p.get("target")))
        else:
            ports.add(int(str(p).split("/")[0].split(":")[-1]))
    return ports


def as_argv(cmd: Any) -> list[str]:
    if cmd is None:
        return []
    if isinstance(cmd, str):
        return cmd.split()
    return [str(c) for c in cmd]


def parse_duration_seconds(s: Any) -> float | None:
    if s is None:
        return None
    total, matched = 0.0, False
    for num, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", str(s)):
        matched = True
        total += float(num) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}[unit]
    return total if matched else None


SECRET_PATTERNS = [
    (re.compile(r"(?i)\b[A-Z0-9_]*(PASSWORD|SECRET|TOKEN|PASSPHRASE)[A-Z0-9_]*\s*[:=]\s*[^\s$#]"), "a password/secret value"),
    (re.compile(r"://[^/\s:@$]+:[^@\s$]+@"), "credentials in a URL"),
]


def check_compose(ctx: Context) -> None:
    raw = ctx.require("docker-compose.yml", "the compose file").read_text()
    for lineno, line in enumerate(raw.splitlines(), 1):
        code = line.split("#", 1)[0] if not line.lstrip().startswith("#") else ""
        for pattern, what in SECRET_PATTERNS:
            if pattern.search(code):
                ctx.fail(f"docker-compose.yml:{lineno}: {what} in the compose file; put it in an env file "
                         "(deploy/compose/*.env)")
    # Substitution variables: knobs of the stack, each with a default and documented in .env.example, and
    # never named like a daemon option.
    knobs = {m.group(1): m.group(2) for m in re.finditer(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)([^}]*)\}", raw)}
    example = ctx.path(".env.example")
    documented = set(re.findall(r"^([A-Za-z_][A-Za-z0-9_]*)=", example.read_text(), flags=re.M)) if example.exists() else set()
    for k, rest in sorted(knobs.items()):
        if k.startswith("FLOWMETER_"):
            ctx.fail(f"docker-compose.yml: substitution variable {k} looks like a Flowmeter option; name stack knobs otherwise")
        if not rest.startswith(":-"):
            ctx.fail(f"docker-compose.yml: ${{{k}}} has no default (${{{k}:-...}}): the file must work without .env")
        if k not in documented:
            ctx.fail(f"docker-compose.yml: substitution variable {k} is not documented in .env.example")
    for k in sorted(documented - set(knobs)):
        ctx.fail(f".env.example: {k} is not used by docker-compose.yml")
    cfg = ctx.compose()
    services: dict[str, dict] = cfg.get("services") or {}
    declared_volumes = set((cfg.get("volumes") or {}).keys())
    used_volumes = set()
    for name, svc in services.items():
        for typ, src, _ in compose_mounts(svc):
            if typ == "volume" and src:
                used_volumes.add(src)
    for v in sorted(declared_volumes - used_volumes):
        ctx.fail(f"docker-compose.yml: named volume {v} is declared but not used")
    for stateful in ("kafka", "postgres", "prometheus", "grafana"):
        svc = services.get(stateful)
        if svc is None:
            ctx.fail(f"docker-compose.yml: no service {stateful}")
            continue
        if not any(typ == "volume" for typ, _, _ in compose_mounts(svc)):
            ctx.fail(f"docker-compose.yml: service {stateful} keeps its data in no named volume")

    fm = {n: s for n, s in services.items()
          if isinstance(s.get("build"), dict) and Path(s["build"].get("context", "")).resolve() == ctx.root
          and s["build"].get("dockerfile", "Dockerfile") == "Dockerfile"}
    if not fm:
        ctx.fail("docker-compose.yml: no service built from the Dockerfile (Flowmeter)")
    subcommands: dict[str, str] = {}
    for name, svc in fm.items():
        where = f"docker-compose.yml service {name}"
        if svc.get("read_only") is not True:
            ctx.fail(f"{where}: read_only is not true")
        user = str(svc.get("user", ""))
        if not user or user.split(":")[0] in ("0", "root"):
            ctx.fail(f"{where}: user is {user or 'unset (the image default)'}; set a non-root user explicitly")
        if "no-new-privileges:true" not in (svc.get("security_opt") or []):
            ctx.fail(f"{where}: security_opt lacks no-new-privileges:true")
        if "ALL" not in (svc.get("cap_drop") or []):
            ctx.fail(f"{where}: cap_drop lacks ALL")
        env = svc.get("environment") or {}
        check_env_map(ctx, where, env)
        sub = check_command(ctx, where, as_argv(svc.get("entrypoint"))[1:] + as_argv(svc.get("command"))
                            if svc.get("entrypoint") else as_argv(svc.get("command")))
        if sub:
            subcommands[name] = sub
        if sub in ("run", "simulate", "backfill") and "FLOWMETER_BROKERS" not in env and "--brokers" not in as_argv(svc.get("command")):
            ctx.fail(f"{where}: `{sub}` needs FLOWMETER_BROKERS (the default localhost:9092 is the container itself)")
        if sub in ("run", "migrate", "backfill") and "FLOWMETER_POSTGRES_URL" not in env:
            ctx.fail(f"{where}: `{sub}` has no FLOWMETER_POSTGRES_URL")
        brokers = env.get("FLOWMETER_BROKERS")
        if brokers:
            for b in str(brokers).split(","):
                host, _, port = b.partition(":")
                kafka = services.get(host)
                if kafka is None:
                    ctx.fail(f"{where}: FLOWMETER_BROKERS {b}: no compose service {host}")
                elif f"//{host}:{port}" not in str((kafka.get("environment") or {}).get("KAFKA_ADVERTISED_LISTENERS", "")):
                    ctx.fail(f"{where}: FLOWMETER_BROKERS {b}: service {host} advertises no listener {host}:{port}")
        url = env.get("FLOWMETER_POSTGRES_URL")
        if url:
            check_compose_postgres(ctx, where, str(url), services)
    runs = [n for n, s in subcommands.items() if s == "run"]
    if len(runs) != 1:
        ctx.fail(f"docker-compose.yml: expected one service running `flowmeter run`, found {runs}")
    for needed in ("migrate", "simulate"):
        if needed not in subcommands.values():
            ctx.fail(f"docker-compose.yml: no service runs `flowmeter {needed}`")
    if runs:
        run_name = runs[0]
        svc = services[run_name]
        where = f"docker-compose.yml service {run_name}"
        if HTTP_PORT not in container_ports(svc):
            ctx.fail(f"{where}: does not publish container port {HTTP_PORT} (/metrics)")
        for p in container_ports(svc) - {HTTP_PORT}:
            ctx.fail(f"{where}: publishes container port {p}; the daemon listens on {HTTP_PORT}")
        hc = " ".join(as_argv((svc.get("healthcheck") or {}).get("test")))
        if not hc:
            ctx.fail(f"{where}: no healthcheck (the start order of Prometheus depends on it)")
        elif str(HTTP_PORT) not in hc or not re.search(r"/(healthz|readyz)", hc):
            ctx.fail(f"{where}: the healthcheck does not ask /healthz or /readyz on port {HTTP_PORT}: {hc}")
        grace = parse_duration_seconds(svc.get("stop_grace_period"))
        try:
            drain = ctx.drain_seconds
            if grace is None or grace <= drain:
                ctx.fail(f"{where}: stop_grace_period {svc.get('stop_grace_period')} is not longer than the "
                         f"daemon's drain bound ({drain} s, {RUNNER_SWIFT})")
        except CheckFailed as e:
            ctx.fail(str(e))
        deps = svc.get("depends_on") or {}
        migrate = [n for n, s in subcommands.items() if s == "migrate"]
        for m in migrate:
            if (deps.get(m) or {}).get("condition") != "service_completed_successfully":
                ctx.fail(f"{where}: does not wait for {m} (`flowmeter migrate`) to complete successfully")
    # Start order: every dependency has a condition that waits for health or completion.
    for name, svc in services.items():
        deps = svc.get("depends_on") or {}
        if isinstance(deps, list):
            ctx.fail(f"docker-compose.yml service {name}: depends_on without conditions (start order not health-checked)")
            continue
        for dep, spec in deps.items():
            cond = (spec or {}).get("condition")
            target = services.get(dep, {})
            if cond == "service_healthy" and not target.get("healthcheck"):
                ctx.fail(f"docker-compose.yml service {name}: waits for {dep} to be healthy, but {dep} has no healthcheck")
            elif cond not in ("service_healthy", "service_completed_successfully"):
                ctx.fail(f"docker-compose.yml service {name}: depends on {dep} with condition {cond}: "
                         "wait for service_healthy or service_completed_successfully")
    check_compose_topics(ctx, services)
    check_compose_prometheus(ctx, services, runs[0] if runs else None)
    check_compose_grafana(ctx, services)


def check_compose_postgres(ctx: Context, where: str, url: str, services: dict) -> None:
    u = urllib.parse.urlsplit(url)
    pg = services.get(u.hostname or "")
    if pg is None:
        ctx.fail(f"{where}: FLOWMETER_POSTGRES_URL names host {u.hostname}, not a compose service")
        return
    penv = pg.get("environment") or {}
    expected = {
        "user": penv.get("POSTGRES_USER", "postgres"),
        "password": penv.get("POSTGRES_PASSWORD"),
        "database": penv.get("POSTGRES_DB", penv.get("POSTGRES_USER", "postgres")),
        "port": 5432,
    }
    actual = {
        "user": urllib.parse.unquote(u.username or ""),
        "password": urllib.parse.unquote(u.password or ""),
        "database": u.path.lstrip("/"),
        "port": u.port or 5432,
    }
    for k in expected:
        if expected[k] != actual[k]:
            shown = "***" if k == "password" else f"{actual[k]!r} vs {expected[k]!r}"
            ctx.fail(f"{where}: FLOWMETER_POSTGRES_URL {k} differs from service {u.hostname}'s settings ({shown})")


def check_compose_topics(ctx: Context, services: dict) -> None:
    inits = {n: s for n, s in services.items() if "TOPICS" in (s.get("environment") or {})}
    if not inits:
        ctx.fail("docker-compose.yml: no topic-creating service (environment TOPICS)")
        return
    for name, svc in inits.items():
        listed = {t.split(":")[0] for t in str(svc["environment"]["TOPICS"]).split()}
        for t in sorted(ctx.all_topics - listed):
            ctx.fail(f"docker-compose.yml service {name}: TOPICS lacks {t} (analyzers/learnflow.yaml)")
        for t in sorted(listed - ctx.all_topics):
            ctx.fail(f"docker-compose.yml service {name}: TOPICS has {t}, which analyzers/learnflow.yaml does not list")


def find_service(services: dict, image_prefix: str) -> tuple[str, dict] | tuple[None, None]:
    for n, s in services.items():
        if str(s.get("image", "")).startswith(image_prefix):
            return n, s
    return None, None


def check_compose_prometheus(ctx: Context, services: dict, run_name: str | None) -> None:
    name, svc = find_service(services, "prom/prometheus")
    if svc is None:
        ctx.fail("docker-compose.yml: no Prometheus service (image prom/prometheus)")
        return
    where = f"docker-compose.yml service {name}"
    config = "/etc/prometheus/prometheus.yml"
    for a in as_argv(svc.get("command")):
        if a.startswith("--config.file="):
            config = a.split("=", 1)[1]
    host = host_path_for(svc, config)
    if host is None:
        ctx.fail(f"{where}: {config} is not mounted from the project")
        return
    if not host.exists():
        ctx.fail(f"{where}: mounts {ctx.rel(host)} as {config}, which does not exist")
        return
    if host.resolve() != ctx.path("deploy/prometheus/prometheus.yml").resolve():
        ctx.fail(f"{where}: mounts {ctx.rel(host)} as {config}, not deploy/prometheus/prometheus.yml")
    prom = load_yaml(host) or {}
    cdir = os.path.dirname(config)
    loaded: set[Path] = set()
    for pattern in prom.get("rule_files") or []:
        cpath = pattern if pattern.startswith("/") else os.path.join(cdir, pattern)
        hp = host_path_for(svc, cpath)
        if hp is None:
            ctx.fail(f"{where}: rule_files {pattern} ({cpath}) is not mounted")
            continue
        matches = [Path(p) for p in glob.glob(str(hp))]
        if not matches:
            ctx.fail(f"{where}: rule_files {pattern} matches no file ({ctx.rel(hp)})")
        loaded |= {m.resolve() for m in matches}
    if ctx.path(RULES_FILE).resolve() not in loaded:
        ctx.fail(f"{where}: Prometheus does not load {RULES_FILE} (rule_files of deploy/prometheus/prometheus.yml)")
    targets = set()
    for job in prom.get("scrape_configs") or []:
        for sc in job.get("static_configs") or []:
            targets |= set(sc.get("targets") or [])
    if run_name and f"{run_name}:{HTTP_PORT}" not in targets:
        ctx.fail(f"deploy/prometheus/prometheus.yml: no scrape target {run_name}:{HTTP_PORT} (the compose service "
                 f"running `flowmeter run`); targets: {sorted(targets)}")
    for t in targets:
        h, _, p = t.partition(":")
        if h in services and h == run_name and p and int(p) != HTTP_PORT:
            ctx.fail(f"deploy/prometheus/prometheus.yml: target {t}: Flowmeter listens on {HTTP_PORT}")


def grafana_datasource_uids(datasources_doc: Any) -> dict[str, dict]:
    out = {}
    for ds in (datasources_doc or {}).get("datasources") or []:
        out[str(ds.get("uid") or ds.get("name"))] = ds
    return out


def dashboard_datasource_uids(raw: bytes) -> set[str]:
    uids: set[str] = set()

    def walk(x: Any) -> None:
        if isinstance(x, dict):
            ds = x.get("datasource")
            if isinstance(ds, dict) and isinstance(ds.get("uid"), str) and not ds["uid"].startswith("$"):
                if ds.get("type", "prometheus") == "prometheus":
                    uids.add(ds["uid"])
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    try:
        walk(json.loads(raw))
    except json.JSONDecodeError:
        pass
    return uids


def check_compose_grafana(ctx: Context, services: dict) -> None:
    name, svc = find_service(services, "grafana/grafana")
    if svc is None:
        ctx.fail("docker-compose.yml: no Grafana service (image grafana/grafana)")
        return
    where = f"docker-compose.yml service {name}"
    prov = host_path_for(svc, "/etc/grafana/provisioning")
    if prov is None or not prov.is_dir():
        ctx.fail(f"{where}: /etc/grafana/provisioning is not mounted from an existing folder")
        return
    dash_files = sorted((prov / "dashboards").glob("*.y*ml"))
    ds_files = sorted((prov / "datasources").glob("*.y*ml"))
    if not dash_files:
        ctx.fail(f"{where}: {ctx.rel(prov)}/dashboards has no provider file")
    if not ds_files:
        ctx.fail(f"{where}: {ctx.rel(prov)}/datasources has no datasource file")
    for f in dash_files:
        for p in (load_yaml(f) or {}).get("providers") or []:
            cpath = ((p.get("options") or {}).get("path"))
            if not cpath:
                ctx.fail(f"{ctx.rel(f)}: provider {p.get('name')} has no options.path")
                continue
            hp = host_path_for(svc, cpath)
            if hp is None or not hp.is_dir():
                ctx.fail(f"{ctx.rel(f)}: provider {p.get('name')} reads {cpath}, which {where} does not mount "
                         "from a project folder")
                continue
            have = {x.name for x in hp.rglob("*.json")}
            for d in sorted(set(ctx.dashboards) - have):
                ctx.fail(f"{ctx.rel(f)}: provider path {cpath} ({ctx.rel(hp)}) lacks dashboard {d}")
    provisioned: dict[str, dict] = {}
    for f in ds_files:
        uids = grafana_datasource_uids(load_yaml(f))
        provisioned.update(uids)
        for uid, ds in uids.items():
            if ds.get("type") != "prometheus":
                continue
            u = urllib.parse.urlsplit(str(ds.get("url", "")))
            target = services.get(u.hostname or "")
            if target is None:
                ctx.fail(f"{ctx.rel(f)}: datasource {uid} url {ds.get('url')} names no compose service")
            elif not str(target.get("image", "")).startswith("prom/prometheus") or (u.port or 80) != 9090:
                ctx.fail(f"{ctx.rel(f)}: datasource {uid} url {ds.get('url')} is not Prometheus on port 9090")
    for dname, rawd in ctx.dashboards.items():
        for uid in sorted(dashboard_datasource_uids(rawd) - set(provisioned)):
            ctx.fail(f"{DASHBOARDS_DIR}/{dname}: datasource uid {uid} is not provisioned in {ctx.rel(prov)}/datasources")


# -- copies


def check_copies(ctx: Context) -> None:
    script = ctx.require("scripts/sync-deploy-copies.sh", "writes and checks the copies")
    r = ctx.run(["bash", str(script), "--check"], env={**os.environ, "ROOT": str(ctx.root)})
    if r.returncode != 0:
        for line in (r.stderr or r.stdout).strip().splitlines():
            ctx.fail(line.removeprefix("error: "))


# -- kustomize


def normalize_build(objs: list[dict]) -> dict:
    """Objects by identity, with what legitimately differs between kustomize versions made equal: the
    generated ConfigMap's hash suffix, and the order in which a strategic-merge patch adds env entries."""

    def walk(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: (sorted((walk(e) for e in v), key=lambda e: str(e.get("name")))
                        if k == "env" and isinstance(v, list) else walk(v)) for k, v in x.items()}
        if isinstance(x, list):
            return [walk(e) for e in x]
        return x

    text = json.dumps(walk(objs), sort_keys=True)
    text = re.sub(r"(flowmeter-analyzers)-[a-z0-9]{10}", r"\1", text)
    out = {}
    for o in json.loads(text):
        out[obj_id(o)] = o
    return out


def check_kustomize(ctx: Context) -> None:
    ctx.require_tool(ctx.kubectl, "Debian's kubectl 1.20 (kustomize v2.0.3)")
    dirs = ctx.kustomizations()
    if not dirs:
        ctx.fail("no kustomization.yaml under deploy/")
    for d in dirs:
        objs, err = ctx.build(d)
        if objs is None:
            ctx.fail(f"kubectl kustomize {ctx.rel(d)} (kustomize v2.0.3) failed: {err}")
    names = {p.name for p in ctx.overlays()}
    for needed in ("dev", "prod"):
        if needed not in names:
            ctx.fail(f"deploy/k8s/overlays/{needed} is missing")
    modern = ctx.modern_kubectl
    if modern:
        for o in ctx.overlays():
            old, _ = ctx.build(o)
            r = ctx.run([modern, "kustomize", str(o)])
            if r.returncode != 0:
                err = "\n".join(x for x in r.stderr.splitlines() if not x.startswith("# Warning"))
                ctx.fail(f"{modern} kustomize {ctx.rel(o)} (modern kustomize, as Argo CD runs it) failed: {err.strip()}")
                continue
            if old is None:
                continue
            a, b = normalize_build(old), normalize_build([d for d in yaml.safe_load_all(r.stdout) if d])
            for k in sorted(set(a) ^ set(b)):
                ctx.fail(f"{ctx.rel(o)}: {k} is built by only one of kustomize v2.0.3 and {modern}")
            for k in sorted(set(a) & set(b)):
                if a[k] != b[k]:
                    ctx.fail(f"{ctx.rel(o)}: {k} differs between kustomize v2.0.3 and {modern}")
        ctx.note(f"overlays also built with {modern} and compared")
    else:
        ctx.note("no modern kubectl given: overlays built with kustomize v2.0.3 only")


# -- schemas


def strict_crd_schema(s: Any) -> Any:
    """openAPIV3Schema -> JSON schema that rejects undeclared fields (kubectl --validate=strict)."""
    if isinstance(s, list):
        return [strict_crd_schema(x) for x in s]
    if not isinstance(s, dict):
        return s
    out = {k: strict_crd_schema(v) for k, v in s.items() if not k.startswith("x-kubernetes-") and k not in ("nullable", "format", "description")}
    if s.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    if s.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if s.get("type") == "object" and "properties" in s and "additionalProperties" not in s \
            and not s.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


class SchemaRegistry:
    def __init__(self, ctx: Context):
        self.ctx = ctx
        extra_path = ctx.require("deploy/schemas/extra-kinds.yaml", "schemas of ServiceMonitor, PrometheusRule, Application, KafkaTopic")
        extra = load_yaml(extra_path)
        self.defs = extra.get("$defs") or {}
        self.extra: dict[tuple[str, str], Any] = {}
        for k in extra.get("kinds") or []:
            self.extra[(k["apiVersion"], k["kind"])] = jsonschema.Draft202012Validator(
                {"$defs": self.defs, **k["schema"]})
        for v in self.extra.values():
            jsonschema.Draft202012Validator.check_schema(v.schema)
        self.crds: dict[tuple[str, str], Any] = {}
        crd_dir = ctx.path("deploy/schemas/dapr")
        files = sorted(crd_dir.glob("*.yaml")) if crd_dir.is_dir() else []
        if not files:
            raise CheckFailed("deploy/schemas/dapr/*.yaml (Dapr's CRDs) are missing")
        for f in files:
            for crd in load_yaml_all(f):
                if crd.get("kind") != "CustomResourceDefinition":
                    continue
                group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
                for ver in crd["spec"]["versions"]:
                    if not ver.get("served", False):
                        continue
                    schema = strict_crd_schema(ver["schema"]["openAPIV3Schema"])
                    schema.setdefault("properties", {})["metadata"] = {"$ref": "#/$defs/objectMeta"}
                    schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata"})
                    self.crds[(f"{group}/{ver['name']}", kind)] = jsonschema.Draft202012Validator(
                        {"$defs": self.defs, **schema})
        import kubernetes_validate  # noqa: F401  (fails here, with the import error, if it is missing)
        from kubernetes_validate import utils as kv_utils
        self.kv_utils = kv_utils

    @functools.lru_cache(maxsize=None)
    def builtin(self, api_version: str, kind: str) -> Any:
        kv = self.kv_utils
        version = [v for v in kv.all_versions() if kv.major_minor(v) <= kv.major_minor(KUBERNETES_VERSION)][-1]
        api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
        sdir = f"v{version}-local-strict"
        try:
            schema = kv.schema_contents(f"kubernetes-json-schema/{sdir}/{kind.lower()}-{api}.json", KUBERNETES_VERSION)
        except FileNotFoundError:
            return None
        defs = kv.schema_contents(f"kubernetes-json-schema/{sdir}/_definitions.json", KUBERNETES_VERSION)
        from referencing import Registry, Resource
        registry = Resource.from_contents(defs) @ (Resource.from_contents(schema) @ Registry())
        return jsonschema.Draft202012Validator(schema, registry=registry)

    def validate(self, o: dict) -> tuple[str, list[str]]:
        api, kind = str(o.get("apiVersion", "")), str(o.get("kind", ""))
        if (api, kind) in self.crds:
            source, v = "Dapr CRD (deploy/schemas/dapr)", self.crds[(api, kind)]
        elif (api, kind) in self.extra:
            source, v = "deploy/schemas/extra-kinds.yaml", self.extra[(api, kind)]
        else:
            v = self.builtin(api, kind)
            source = f"Kubernetes {KUBERNETES_VERSION} (kubernetes-validate, strict)"
            if v is None:
                dapr_kinds = sorted({k for _, k in self.crds})
                if api.startswith("dapr.io/") and kind in dapr_kinds:
                    return "", [f"{kind} {api}: Dapr serves no such version of {kind}"]
                return "", [f"unknown kind {kind} ({api}): no Kubernetes schema, no Dapr CRD, and not in "
                            "deploy/schemas/extra-kinds.yaml; add a schema there before using it"]
        errors = []
        for e in sorted(v.iter_errors(o), key=lambda e: list(map(str, e.absolute_path))):
            path = ".".join(str(p) for p in e.absolute_path) or "(object)"
            errors.append(f"{path}: {e.message[:300]}")
        return source, errors


def check_k8s_schemas(ctx: Context) -> None:
    reg = SchemaRegistry(ctx)
    objects: list[tuple[str, dict]] = []
    overlays = ctx.overlays()
    if not overlays:
        ctx.fail("no overlay under deploy/k8s/overlays")
    for o in overlays:
        try:
            objects += [(ctx.rel(o), x) for x in ctx.overlay_objects(o)]
        except CheckFailed as e:
            ctx.fail(str(e))
    for f in sorted(ctx.path("deploy/argocd").glob("*.yaml")):
        objects += [(ctx.rel(f), x) for x in load_yaml_all(f)]
    counts: dict[str, int] = {}
    for where, o in objects:
        source, errors = reg.validate(o)
        for e in errors:
            ctx.fail(f"{where}: {obj_id(o)}: {e}" + (f" [{source}]" if source else ""))
        if source:
            counts[source] = counts.get(source, 0) + 1
    ctx.note("validated: " + ", ".join(f"{n} against {s}" for s, n in sorted(counts.items())))


# -- Flowmeter's Kubernetes objects


def find(objs: list[dict], kind: str, name: str | None = None, namespace: str | None = None) -> list[dict]:
    return [o for o in objs if o.get("kind") == kind
            and (name is None or o["metadata"].get("name") == name)
            and (namespace is None or o["metadata"].get("namespace") == namespace)]


def container_env(c: dict) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env") or []}


def resolve_port(c: dict, port: Any) -> int | None:
    if isinstance(port, int):
        return port
    for p in c.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    return None


def check_pod_security(ctx: Context, where: str, pod: dict, c: dict) -> None:
    psc = pod.get("securityContext") or {}
    csc = c.get("securityContext") or {}
    if not (psc.get("runAsNonRoot") or csc.get("runAsNonRoot")):
        ctx.fail(f"{where}: runAsNonRoot is not set")
    uid = csc.get("runAsUser", psc.get("runAsUser"))
    if uid in (None, 0):
        ctx.fail(f"{where}: runAsUser is {uid}; run as the image's non-root uid")
    if csc.get("readOnlyRootFilesystem") is not True:
        ctx.fail(f"{where}: readOnlyRootFilesystem is not true")
    if csc.get("allowPrivilegeEscalation") is not False:
        ctx.fail(f"{where}: allowPrivilegeEscalation is not false")
    if csc.get("privileged"):
        ctx.fail(f"{where}: privileged")
    if "ALL" not in ((csc.get("capabilities") or {}).get("drop") or []):
        ctx.fail(f"{where}: capabilities are not dropped (drop: [ALL])")
    res = c.get("resources") or {}
    for kind in ("requests", "limits"):
        for r in ("cpu", "memory") if kind == "requests" else ("memory",):
            if r not in (res.get(kind) or {}):
                ctx.fail(f"{where}: resources.{kind}.{r} is not set")
    env = container_env(c)
    check_env_map(ctx, where, env)
    pg = env.get("FLOWMETER_POSTGRES_URL")
    if pg is not None and not (isinstance(pg, dict) and "secretKeyRef" in pg):
        ctx.fail(f"{where}: FLOWMETER_POSTGRES_URL must come from a Secret (valueFrom.secretKeyRef), not a literal")


def check_k8s_flowmeter(ctx: Context) -> None:
    analyzer_text = ctx.require("analyzers/learnflow.yaml", "the analyzer file").read_text()
    rules = load_yaml(ctx.path(RULES_FILE)) if ctx.path(RULES_FILE).exists() else None
    drain = ctx.drain_seconds
    for ov in ctx.overlays():
        objs = ctx.overlay_objects(ov)
        w = ctx.rel(ov)
        deps = find(objs, "Deployment", "flowmeter")
        if len(deps) != 1:
            ctx.fail(f"{w}: expected one Deployment flowmeter, found {len(deps)}")
            continue
        dep = deps[0]
        ns = dep["metadata"].get("namespace")
        pod = dep["spec"]["template"]["spec"]
        pod_labels = dep["spec"]["template"]["metadata"].get("labels") or {}
        cs = [c for c in pod.get("containers") or [] if c.get("name") == "flowmeter"]
        if not cs:
            ctx.fail(f"{w}: Deployment flowmeter has no container flowmeter")
            continue
        c = cs[0]
        wd = f"{w}: Deployment {ns}/flowmeter"
        check_command(ctx, wd, as_argv(c.get("command"))[1:] + as_argv(c.get("args")) if c.get("command") else as_argv(c.get("args")))
        if as_argv(c.get("args"))[:1] != ["run"]:
            ctx.fail(f"{wd}: args do not start with run")
        check_pod_security(ctx, wd, pod, c)
        ports = {int(p["containerPort"]) for p in c.get("ports") or []}
        if ports != {HTTP_PORT}:
            ctx.fail(f"{wd}: container ports {sorted(ports)}; the daemon listens on {HTTP_PORT}")
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")):
            p = c.get(probe)
            if p is None:
                if probe != "startupProbe":
                    ctx.fail(f"{wd}: no {probe}")
                continue
            g = p.get("httpGet") or {}
            if g.get("path") != path:
                ctx.fail(f"{wd}: {probe} asks {g.get('path')}, expected {path}")
            if resolve_port(c, g.get("port")) != HTTP_PORT:
                ctx.fail(f"{wd}: {probe} port {g.get('port')} is not {HTTP_PORT}")
        tgp = pod.get("terminationGracePeriodSeconds", 30)
        if tgp <= drain:
            ctx.fail(f"{wd}: terminationGracePeriodSeconds {tgp} is not longer than the daemon's drain bound "
                     f"({drain} s, {RUNNER_SWIFT})")
        env = container_env(c)
        brokers = env.get("FLOWMETER_BROKERS")
        if not isinstance(brokers, str) or not brokers:
            ctx.fail(f"{wd}: FLOWMETER_BROKERS is not set")
        # Analyzer ConfigMap mounted where FLOWMETER_ANALYZERS points.
        apath = env.get("FLOWMETER_ANALYZERS")
        mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts") or []}
        vols = {v["name"]: v for v in pod.get("volumes") or []}
        if not isinstance(apath, str):
            ctx.fail(f"{wd}: FLOWMETER_ANALYZERS is not set (the image would use its built-in set, not the ConfigMap)")
        else:
            mount = apath if apath in mounts else os.path.dirname(apath)
            vol = vols.get(mounts.get(mount, ""), {})
            cm_name = (vol.get("configMap") or {}).get("name")
            if not cm_name:
                ctx.fail(f"{wd}: FLOWMETER_ANALYZERS {apath} is not a mounted ConfigMap")
            else:
                cms = find(objs, "ConfigMap", cm_name, ns)
                if not cms:
                    ctx.fail(f"{wd}: ConfigMap {cm_name} (analyzers) is not in the build")
                elif (cms[0].get("data") or {}).get("learnflow.yaml") != analyzer_text:
                    ctx.fail(f"{w}: ConfigMap {cm_name} learnflow.yaml differs from analyzers/learnflow.yaml "
                             "(run scripts/sync-deploy-copies.sh)")
        # Service and ServiceMonitor.
        svcs = [s for s in find(objs, "Service", namespace=ns) if labels_match(s["spec"].get("selector"), pod_labels)]
        if len(svcs) != 1:
            ctx.fail(f"{w}: expected one Service selecting Flowmeter's pods, found {len(svcs)}")
        else:
            svc = svcs[0]
            for sp in svc["spec"].get("ports") or []:
                tp = sp.get("targetPort", sp.get("port"))
                if resolve_port(c, tp) != HTTP_PORT:
                    ctx.fail(f"{w}: Service {svc['metadata']['name']} port {sp.get('name')} targets {tp}, not {HTTP_PORT}")
            port_names = {sp.get("name") for sp in svc["spec"].get("ports") or []}
            sms = find(objs, "ServiceMonitor", namespace=ns)
            if not sms:
                ctx.fail(f"{w}: no ServiceMonitor in namespace {ns}")
            for sm in sms:
                sel = (sm["spec"].get("selector") or {}).get("matchLabels") or {}
                if not labels_match(sel, svc["metadata"].get("labels") or {}):
                    ctx.fail(f"{w}: ServiceMonitor {sm['metadata']['name']} selector {sel} does not match Service "
                             f"{svc['metadata']['name']}'s labels")
                for ep in sm["spec"].get("endpoints") or []:
                    if "port" in ep and ep["port"] not in port_names:
                        ctx.fail(f"{w}: ServiceMonitor {sm['metadata']['name']} scrapes port {ep['port']}, which "
                                 f"Service {svc['metadata']['name']} does not have ({sorted(port_names)})")
                    if ep.get("path", "/metrics") != "/metrics":
                        ctx.fail(f"{w}: ServiceMonitor {sm['metadata']['name']} path {ep.get('path')} is not /metrics")
        # NetworkPolicy.
        nps = [n for n in find(objs, "NetworkPolicy", namespace=ns)
               if labels_match((n["spec"].get("podSelector") or {}).get("matchLabels"), pod_labels)]
        if not nps:
            ctx.fail(f"{w}: no NetworkPolicy selects Flowmeter's pods")
        for n in nps:
            wn = f"{w}: NetworkPolicy {n['metadata']['name']}"
            spec = n["spec"]
            if set(spec.get("policyTypes") or []) != {"Ingress", "Egress"}:
                ctx.fail(f"{wn}: policyTypes must be Ingress and Egress")
            for rule in spec.get("ingress") or []:
                peers = rule.get("from") or []
                if not peers:
                    ctx.fail(f"{wn}: an ingress rule allows every source")
                for peer in peers:
                    nsl = ((peer.get("namespaceSelector") or {}).get("matchLabels") or {}).get("kubernetes.io/metadata.name")
                    pl = (peer.get("podSelector") or {}).get("matchLabels") or {}
                    if nsl != MONITORING_NAMESPACE or pl.get("app.kubernetes.io/name") != "prometheus":
                        ctx.fail(f"{wn}: ingress from {peer}: only Prometheus (namespace {MONITORING_NAMESPACE}, "
                                 "app.kubernetes.io/name=prometheus) may scrape")
                rports = {p.get("port") for p in rule.get("ports") or []}
                if not rports or any(resolve_port(c, p) != HTTP_PORT for p in rports):
                    ctx.fail(f"{wn}: ingress ports {sorted(map(str, rports))}; only {HTTP_PORT} (metrics)")
            allowed_ns = {"kafka": {9092, 9093}, "postgres": {5432}, "kube-system": {53}}
            seen = set()
            for rule in spec.get("egress") or []:
                peers = rule.get("to") or []
                if not peers:
                    ctx.fail(f"{wn}: an egress rule allows every destination")
                    continue
                rports = {p.get("port") for p in rule.get("ports") or []}
                if not rports:
                    ctx.fail(f"{wn}: an egress rule allows every port")
                for peer in peers:
                    target = ((peer.get("namespaceSelector") or {}).get("matchLabels") or {}).get("kubernetes.io/metadata.name")
                    if "ipBlock" in peer:
                        ctx.note(f"{wn}: egress to ipBlock {peer['ipBlock']} (not checked)")
                        continue
                    if target not in allowed_ns:
                        ctx.fail(f"{wn}: egress to namespace {target}: only Kafka, PostgreSQL and DNS are allowed")
                        continue
                    seen.add(target)
                    for p in rports - allowed_ns[target]:
                        ctx.fail(f"{wn}: egress to {target} on port {p}; expected {sorted(allowed_ns[target])}")
            for needed in allowed_ns:
                if needed not in seen:
                    ctx.fail(f"{wn}: no egress rule to {needed} ({'DNS' if needed == 'kube-system' else needed})")
        # PodDisruptionBudget.
        pdbs = [p for p in find(objs, "PodDisruptionBudget", namespace=ns)
                if labels_match((p["spec"].get("selector") or {}).get("matchLabels"), pod_labels)]
        if len(pdbs) != 1:
            ctx.fail(f"{w}: expected one PodDisruptionBudget selecting Flowmeter's pods, found {len(pdbs)}")
        else:
            replicas = dep["spec"].get("replicas", 1)
            ma = pdbs[0]["spec"].get("minAvailable")
            if isinstance(ma, int) and ma >= replicas:
                ctx.fail(f"{w}: PodDisruptionBudget minAvailable {ma} with {replicas} replica(s) blocks every node drain")
        # Migration Job.
        jobs = [j for j in find(objs, "Job", namespace=ns)
                if as_argv(j["spec"]["template"]["spec"]["containers"][0].get("args"))[:1] == ["migrate"]]
        if len(jobs) != 1:
            ctx.fail(f"{w}: expected one Job running `flowmeter migrate`, found {len(jobs)}")
        for j in jobs:
            jp = j["spec"]["template"]["spec"]
            jc = jp["containers"][0]
            wj = f"{w}: Job {ns}/{j['metadata']['name']}"
            check_pod_security(ctx, wj, jp, jc)
            if jc.get("image") != c.get("image"):
                ctx.fail(f"{wj}: image {jc.get('image')} differs from the Deployment's {c.get('image')}")
            if "FLOWMETER_POSTGRES_URL" not in container_env(jc):
                ctx.fail(f"{wj}: no FLOWMETER_POSTGRES_URL")
        image = str(c.get("image", ""))
        if ov.name == "prod" and (image.endswith(":latest") or ":" not in image.rsplit("/", 1)[-1]):
            ctx.fail(f"{wd}: image {image}: production needs a pinned tag")
        # Dashboards ConfigMap.
        dash = [m for m in find(objs, "ConfigMap") if (m["metadata"].get("labels") or {}).get(DASHBOARD_LABEL[0]) == DASHBOARD_LABEL[1]]
        if len(dash) != 1:
            ctx.fail(f"{w}: expected one ConfigMap labelled {DASHBOARD_LABEL[0]}: \"{DASHBOARD_LABEL[1]}\", found {len(dash)}")
        else:
            data = dash[0].get("data") or {}
            for name in sorted(set(ctx.dashboards) - set(data)):
                ctx.fail(f"{w}: dashboards ConfigMap lacks {name} ({DASHBOARDS_DIR}; run scripts/sync-deploy-copies.sh)")
            for name in sorted(set(data) - set(ctx.dashboards)):
                ctx.fail(f"{w}: dashboards ConfigMap has {name}, which {DASHBOARDS_DIR} does not")
            for name in sorted(set(data) & set(ctx.dashboards)):
                if data[name].encode() != ctx.dashboards[name]:
                    ctx.fail(f"{w}: dashboards ConfigMap {name} differs from {DASHBOARDS_DIR}/{name}")
        # PrometheusRule = the rules file.
        prs = find(objs, "PrometheusRule", namespace=ns)
        if len(prs) != 1:
            ctx.fail(f"{w}: expected one PrometheusRule, found {len(prs)}")
        elif rules is None:
            ctx.fail(f"{w}: {RULES_FILE} is missing, so PrometheusRule {prs[0]['metadata']['name']} cannot be compared")
        elif prs[0]["spec"].get("groups") != rules.get("groups"):
            ctx.fail(f"{w}: PrometheusRule {prs[0]['metadata']['name']} differs from {RULES_FILE} "
                     "(run scripts/sync-deploy-copies.sh)")


# -- platform: topics, Dapr, HPAs


def repartition_topic(group: str) -> str:
    """The name Flowmeter gives its flow repartition topic for a consumer group."""
    return ("".join(ch if ch in TOPIC_CHARS else "_" for ch in group) + REPARTITION_SUFFIX)[-249:]


def flowmeter_repartition(ctx: Context, w: str, objs: list[dict]) -> tuple[str, str, int, str] | None:
    """(topic, group, replica bound, where the bound comes from) of an overlay's Flowmeter Deployment."""
    deps = find(objs, "Deployment", "flowmeter")
    if len(deps) != 1:
        ctx.fail(f"{w}: expected one Deployment flowmeter, found {len(deps)}: cannot name Flowmeter's flow "
                 f"repartition topic (<FLOWMETER_GROUP>{REPARTITION_SUFFIX})")
        return None
    dep = deps[0]
    cs = [c for c in dep["spec"]["template"]["spec"].get("containers") or [] if c.get("name") == "flowmeter"]
    group = container_env(cs[0]).get("FLOWMETER_GROUP", DEFAULT_GROUP) if cs else DEFAULT_GROUP
    if not isinstance(group, str) or not group:
        ctx.fail(f"{w}: Deployment flowmeter: FLOWMETER_GROUP must be a literal value; the name of the flow "
                 f"repartition topic (<FLOWMETER_GROUP>{REPARTITION_SUFFIX}) depends on it")
        return None
    ns = dep["metadata"].get("namespace")
    hpas = [h for h in find(objs, "HorizontalPodAutoscaler", namespace=ns)
            if (h["spec"].get("scaleTargetRef") or {}).get("kind") == "Deployment"
            and h["spec"]["scaleTargetRef"].get("name") == "flowmeter"]
    if hpas:
        bound = max(h["spec"].get("maxReplicas", 1) for h in hpas)
        source = f"maxReplicas of HorizontalPodAutoscaler {ns}/{hpas[0]['metadata']['name']}"
    else:
        bound = dep["spec"].get("replicas", 1)
        source = f"the replicas of Deployment {ns}/flowmeter (no HorizontalPodAutoscaler scales it)"
    return repartition_topic(group), group, bound, source


def check_platform(ctx: Context) -> None:
    a = ctx.analyzers
    adapter_path = ctx.path("deploy/monitoring/prometheus-adapter-values.yaml")
    adapter_names: set[str] = set()
    if adapter_path.exists():
        for r in ((load_yaml(adapter_path) or {}).get("rules") or {}).get("external") or []:
            series = re.match(r"\s*([a-zA-Z_:][a-zA-Z0-9_:]*)", str(r.get("seriesQuery", "")))
            if not series or series.group(1) not in LAG_METRICS:
                ctx.fail(f"deploy/monitoring/prometheus-adapter-values.yaml: external rule series "
                         f"{r.get('seriesQuery')!r} is not one of Flowmeter's lag metrics {sorted(LAG_METRICS)}")
            if (r.get("resources") or {}).get("namespaced") is not False:
                ctx.fail("deploy/monitoring/prometheus-adapter-values.yaml: external rule "
                         f"{r.get('seriesQuery')!r} must set resources.namespaced: false (Flowmeter's series are "
                         "in namespace flowmeter, the HPAs in learnflow)")
            adapter_names.add(str((r.get("name") or {}).get("as", "")))
    else:
        ctx.fail("deploy/monitoring/prometheus-adapter-values.yaml is missing (the HPAs' lag metrics)")
    for ov in ctx.overlays():
        objs = ctx.overlay_objects(ov)
        w = ctx.rel(ov)
        # Kafka topics.
        kts = find(objs, "KafkaTopic")
        names = {t["spec"].get("topicName", t["metadata"]["name"]) for t in kts}
        partitions = {t["spec"].get("topicName", t["metadata"]["name"]): t["spec"].get("partitions", 0) for t in kts}
        for t in sorted(ctx.all_topics - names):
            ctx.fail(f"{w}: no KafkaTopic for {t} (analyzers/learnflow.yaml)")
        rp = flowmeter_repartition(ctx, w, objs)
        expected = ctx.all_topics | ({rp[0]} if rp else set())
        for t in sorted(names - expected):
            if t.endswith(REPARTITION_SUFFIX) and rp:
                ctx.fail(f"{w}: KafkaTopic {t} is the flow repartition topic of another consumer group: Flowmeter's "
                         f"FLOWMETER_GROUP is {rp[1]}, so its topic is {rp[0]}")
            else:
                ctx.fail(f"{w}: KafkaTopic {t} is not in analyzers/learnflow.yaml")
        if rp:
            topic, group, bound, source = rp
            if topic not in names:
                ctx.fail(f"{w}: no KafkaTopic for Flowmeter's flow repartition topic {topic} (FLOWMETER_GROUP "
                         f"{group} + {REPARTITION_SUFFIX}; deploy/k8s/platform/kafka-topics.yaml)")
            elif partitions[topic] < bound:
                ctx.fail(f"{w}: KafkaTopic {topic} has {partitions[topic]} partition(s), fewer than {source} "
                         f"({bound}): each Flowmeter replica should be able to own a shard of flow correlation")
        clusters = {(t["metadata"].get("labels") or {}).get("strimzi.io/cluster") for t in kts}
        if len(clusters) > 1:
            ctx.fail(f"{w}: KafkaTopics name several clusters {sorted(map(str, clusters))}")
        cluster = next(iter(clusters), None)
        bootstrap = f"{cluster}-kafka-bootstrap."
        for d in find(objs, "Deployment", "flowmeter"):
            env = container_env(d["spec"]["template"]["spec"]["containers"][0])
            if cluster and not str(env.get("FLOWMETER_BROKERS", "")).startswith(bootstrap):
                ctx.fail(f"{w}: Flowmeter's FLOWMETER_BROKERS {env.get('FLOWMETER_BROKERS')} is not the bootstrap "
                         f"service of Kafka cluster {cluster} ({bootstrap}...)")
        # Dapr components.
        comps = {c["metadata"]["name"]: c for c in find(objs, "Component")}
        for name, comp in comps.items():
            md = {m["name"]: m.get("value") for m in comp["spec"].get("metadata") or []}
            if comp["spec"].get("type") == "pubsub.kafka":
                if "consumerGroup" in md:
                    ctx.fail(f"{w}: Component {name}: consumerGroup is set; Flowmeter watches one group per "
                             "app-id (analyzers/learnflow.yaml groups)")
                if str(md.get("escapeHeaders", "false")).lower() == "true":
                    ctx.fail(f"{w}: Component {name}: escapeHeaders true alters the DLQ provenance headers")
                if cluster and not str(md.get("brokers", "")).startswith(bootstrap):
                    ctx.fail(f"{w}: Component {name}: brokers {md.get('brokers')} is not Kafka cluster {cluster}")
        # Subscriptions and dead-letter topics.
        subs = find(objs, "Subscription")
        got = set()
        for s in subs:
            ws = f"{w}: Subscription {s['metadata']['name']}"
            spec = s["spec"]
            scopes = s.get("scopes") or []
            if len(scopes) != 1:
                ctx.fail(f"{ws}: needs exactly one scope (its subscriber), has {scopes}")
                continue
            comp = comps.get(spec.get("pubsubname"))
            if comp is None or not str(comp["spec"].get("type", "")).startswith("pubsub."):
                ctx.fail(f"{ws}: pubsubname {spec.get('pubsubname')} is not a pub/sub Component of the build")
            elif comp.get("scopes") and scopes[0] not in comp["scopes"]:
                ctx.fail(f"{ws}: subscriber {scopes[0]} is not in Component {spec.get('pubsubname')}'s scopes")
            if not spec.get("deadLetterTopic"):
                ctx.fail(f"{ws}: no deadLetterTopic")
            if not (spec.get("routes") or {}).get("default"):
                ctx.fail(f"{ws}: no default route (events matching no rule would be dead-lettered)")
            got.add((spec.get("deadLetterTopic"), spec.get("topic"), scopes[0]))
        want = set(a["dlqs"])
        for t in sorted(want - got, key=str):
            ctx.fail(f"{w}: no Subscription of {t[2]} to {t[1]} with deadLetterTopic {t[0]} (analyzers/learnflow.yaml)")
        for t in sorted(got - want, key=str):
            ctx.fail(f"{w}: Subscription of {t[2]} to {t[1]} dead-letters to {t[0]}, which analyzers/learnflow.yaml "
                     "does not list for that subscriber and topic")
        pairs = {(g, t) for g, ts in a["groups"].items() for t in ts}
        subscribed = {(sub, topic) for _, topic, sub in got}
        for g, t in sorted(pairs - subscribed):
            ctx.fail(f"{w}: group {g} consumes {t} (analyzers/learnflow.yaml) but has no Subscription")
        # Resiliency: bounded retries only.
        for r in find(objs, "Resiliency"):
            wr = f"{w}: Resiliency {r['metadata']['name']}"
            pol = (r["spec"].get("policies") or {})
            retries = pol.get("retries") or {}
            for pname, p in retries.items():
                mr = (p or {}).get("maxRetries")
                if not isinstance(mr, int) or mr < 0:
                    ctx.fail(f"{wr}: retry policy {pname} has maxRetries {mr}: unbounded retries stall the "
                             "partition and never reach the dead-letter topic")
            for cname, t in ((r["spec"].get("targets") or {}).get("components") or {}).items():
                if cname not in comps:
                    ctx.fail(f"{wr}: targets component {cname}, which is not in the build")
                for direction in ("inbound", "outbound"):
                    d = (t or {}).get(direction) or {}
                    for kind, names in (("retry", retries), ("timeout", pol.get("timeouts") or {}),
                                        ("circuitBreaker", pol.get("circuitBreakers") or {})):
                        if d.get(kind) and d[kind] not in names:
                            ctx.fail(f"{wr}: {cname}.{direction}.{kind} names {d[kind]}, which is not defined")
            if not any((t or {}).get("inbound", {}).get("retry") for t in
                       ((r["spec"].get("targets") or {}).get("components") or {}).values()):
                ctx.fail(f"{wr}: no inbound retry policy for the pub/sub component (Dapr's default retries forever)")
        if not find(objs, "Resiliency"):
            ctx.fail(f"{w}: no Resiliency (Dapr's default pub/sub retry is unbounded)")
        # Configuration: tracing reaches Kafka, metrics on.
        confs = find(objs, "Configuration")
        if not confs:
            ctx.fail(f"{w}: no Dapr Configuration")
        for conf in confs:
            tr = conf["spec"].get("tracing") or {}
            if str(tr.get("samplingRate", "")) in ("", "0"):
                ctx.fail(f"{w}: Configuration {conf['metadata']['name']}: samplingRate {tr.get('samplingRate')!r} "
                         "leaves traceparent empty on Kafka (Flowmeter correlates flows by trace-id)")
            if (conf["spec"].get("metric") or {}).get("enabled") is not True:
                ctx.fail(f"{w}: Configuration {conf['metadata']['name']}: metric.enabled is not true")
        # HPAs.
        hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in find(objs, "HorizontalPodAutoscaler")}
        for app in ("course-agent", "frontend"):
            h = hpas.get(app)
            if h is None:
                ctx.fail(f"{w}: no HorizontalPodAutoscaler for {app}")
                continue
            wh = f"{w}: HorizontalPodAutoscaler {h['metadata']['name']}"
            if h.get("apiVersion") != "autoscaling/v2":
                ctx.fail(f"{wh}: apiVersion {h.get('apiVersion')}, expected autoscaling/v2")
            metrics = h["spec"].get("metrics") or []
            if not any(m.get("type") == "Resource" and m["resource"]["name"] == "cpu" for m in metrics):
                ctx.fail(f"{wh}: does not scale on CPU")
            ext = [m["external"] for m in metrics if m.get("type") == "External"]
            if not ext:
                ctx.fail(f"{wh}: does not scale on consumer lag (External metrics)")
            for e in ext:
                name = e["metric"]["name"]
                if name not in adapter_names:
                    ctx.fail(f"{wh}: External metric {name} is not served by the Prometheus adapter rules "
                             f"({sorted(adapter_names)})")
                group = ((e["metric"].get("selector") or {}).get("matchLabels") or {}).get("group")
                if group not in a["groups"]:
                    ctx.fail(f"{wh}: metric {name} selects group {group}, not a watched group of analyzers/learnflow.yaml")
                    continue
                if group != app:
                    ctx.fail(f"{wh}: scales {app} on the lag of group {group}")
                parts = [partitions.get(t, 0) for t in a["groups"][group]]
                if parts and h["spec"]["maxReplicas"] > min(parts):
                    ctx.fail(f"{wh}: maxReplicas {h['spec']['maxReplicas']} exceeds the partitions of a topic group "
                             f"{group} consumes ({min(parts)}): extra replicas would idle")


# -- Helm values


def check_helm_values(ctx: Context) -> None:
    mon = "deploy/monitoring"
    kps_p = ctx.require(f"{mon}/kube-prometheus-stack-values.yaml", "kube-prometheus-stack values")
    graf_p = ctx.require(f"{mon}/grafana-values.yaml", "Grafana values")
    adapt_p = ctx.require(f"{mon}/prometheus-adapter-values.yaml", "Prometheus adapter values")
    kps, graf, adapt = load_yaml(kps_p) or {}, load_yaml(graf_p) or {}, load_yaml(adapt_p) or {}
    full = kps.get("fullnameOverride")
    if not full:
        ctx.fail(f"{mon}/kube-prometheus-stack-values.yaml: set fullnameOverride so the other values can address Prometheus")
        full = "kube-prometheus-stack"
    prom_port = int(((kps.get("prometheus") or {}).get("service") or {}).get("port", 9090))
    prom_host = f"{full}-prometheus.{MONITORING_NAMESPACE}.svc"
    spec = (kps.get("prometheus") or {}).get("prometheusSpec") or {}

    objs: list[dict] = []
    for ov in ctx.overlays():
        objs += ctx.overlay_objects(ov)

    def selects(kind: str, nil_key: str, sel_key: str, ns_key: str) -> None:
        for o in find(objs, kind):
            sel = spec.get(sel_key)
            labels = o["metadata"].get("labels") or {}
            if spec.get(nil_key) is False and (sel in (None, {}) or labels_match((sel or {}).get("matchLabels"), labels)):
                pass
            elif sel and labels_match(sel.get("matchLabels"), labels) and "matchExpressions" not in sel:
                pass
            elif spec.get(nil_key, True) and labels.get("release") == "kube-prometheus-stack" and full == "kube-prometheus-stack":
                pass
            else:
                ctx.fail(f"{mon}/kube-prometheus-stack-values.yaml: Prometheus does not select {obj_id(o)} "
                         f"({sel_key}/{nil_key})")
            nsel = spec.get(ns_key)
            if nsel not in (None, {}) and not labels_match((nsel or {}).get("matchLabels"),
                                                           {"kubernetes.io/metadata.name": o["metadata"].get("namespace")}):
                ctx.fail(f"{mon}/kube-prometheus-stack-values.yaml: {ns_key} excludes namespace {o['metadata'].get('namespace')}")

    selects("ServiceMonitor", "serviceMonitorSelectorNilUsesHelmValues", "serviceMonitorSelector", "serviceMonitorNamespaceSelector")
    selects("PrometheusRule", "ruleSelectorNilUsesHelmValues", "ruleSelector", "ruleNamespaceSelector")
    if not find(objs, "ServiceMonitor"):
        ctx.fail("no ServiceMonitor in the overlays: kube-prometheus-stack would not scrape Flowmeter")
    if not find(objs, "PrometheusRule"):
        ctx.fail("no PrometheusRule in the overlays: kube-prometheus-stack would not load Flowmeter's rules")
    # Dapr sidecars on 9090.
    dapr_ns = {o["metadata"].get("namespace") for o in find(objs, "Component")}
    jobs = [j for j in spec.get("additionalScrapeConfigs") or [] if "dapr" in str(j.get("job_name", ""))]
    if not jobs:
        ctx.fail(f"{mon}/kube-prometheus-stack-values.yaml: no additionalScrapeConfigs job for the Dapr sidecars")
    for j in jobs:
        text = json.dumps(j)
        if f":{DAPR_METRICS_PORT}" not in text and "dapr-metrics" not in text:
            ctx.fail(f"{mon}/kube-prometheus-stack-values.yaml: job {j.get('job_name')} does not scrape the sidecars' "
                     f"metrics port {DAPR_METRICS_PORT} (dapr-metrics)")
        sd_ns = {n for sd in j.get("kubernetes_sd_configs") or [] for n in ((sd.get("namespaces") or {}).get("names") or [])}
        for n in sorted(dapr_ns - sd_ns):
            if sd_ns:
                ctx.fail(f"{mon}/kube-prometheus-stack-values.yaml: job {j.get('job_name')} does not discover "
                         f"namespace {n}, where the Dapr apps run")
    # Grafana.
    if (kps.get("grafana") or {}).get("enabled", True):
        ctx.note("kube-prometheus-stack's own Grafana is enabled as well as the grafana chart")
    sc = ((graf.get("sidecar") or {}).get("dashboards") or {})
    dash_cms = [m for m in find(objs, "ConfigMap") if "grafana_dashboard" in (m["metadata"].get("labels") or {})
                or any(k.startswith("grafana") for k in (m["metadata"].get("annotations") or {}))]
    if not sc.get("enabled"):
        ctx.fail(f"{mon}/grafana-values.yaml: sidecar.dashboards.enabled is not true")
    label, value = sc.get("label", "grafana_dashboard"), str(sc.get("labelValue", ""))
    folder_ann = sc.get("folderAnnotation")
    folder = sc.get("folder", "/tmp/dashboards")
    search = sc.get("searchNamespace")
    cm_files: dict[str, set[str]] = {}
    for m in dash_cms:
        labels = m["metadata"].get("labels") or {}
        if labels.get(label) is None or (value and labels.get(label) != value):
            ctx.fail(f"{mon}/grafana-values.yaml: the sidecar loads label {label}={value or '*'}, but {obj_id(m)} has "
                     f"{ {k: v for k, v in labels.items() if k.startswith('grafana')} }")
        if search not in ("ALL",) and m["metadata"].get("namespace") not in str(search or "").split(","):
            ctx.fail(f"{mon}/grafana-values.yaml: sidecar.dashboards.searchNamespace {search} misses "
                     f"namespace {m['metadata'].get('namespace')}")
        ann = (m["metadata"].get("annotations") or {})
        sub = ann.get(folder_ann, "") if folder_ann else ""
        if folder_ann and folder_ann not in ann:
            ctx.fail(f"{mon}/grafana-values.yaml: folderAnnotation {folder_ann} is not on {obj_id(m)}")
        cm_files.setdefault(os.path.join(folder, sub) if sub else folder, set()).update((m.get("data") or {}).keys())
    # The same folder as the compose stack's provisioning.
    compose_folders = {str(p.get("folder")) for f in sorted(ctx.path("deploy/grafana/provisioning/dashboards").glob("*.y*ml"))
                       for p in (load_yaml(f) or {}).get("providers") or [] if p.get("folder")}
    for m in dash_cms:
        sub = (m["metadata"].get("annotations") or {}).get(folder_ann or "", "")
        if compose_folders and sub not in compose_folders:
            ctx.fail(f"{obj_id(m)}: Grafana folder {sub!r} ({folder_ann}) differs from the compose provisioning's "
                     f"{sorted(compose_folders)} (deploy/grafana/provisioning/dashboards)")
    home = ((graf.get("grafana.ini") or {}).get("dashboards") or {}).get("default_home_dashboard_path")
    if home:
        d, f = os.path.dirname(home), os.path.basename(home)
        if f not in cm_files.get(d, set()):
            ctx.fail(f"{mon}/grafana-values.yaml: default_home_dashboard_path {home}: no dashboard {f} in sidecar folder "
                     f"{d} (ConfigMaps give {({k: sorted(v) for k, v in cm_files.items()})})")
        if f not in ctx.dashboards:
            ctx.fail(f"{mon}/grafana-values.yaml: default_home_dashboard_path names {f}, which {DASHBOARDS_DIR} does not have")
    ds_all: dict[str, dict] = {}
    for doc in (graf.get("datasources") or {}).values():
        ds_all.update(grafana_datasource_uids(doc))
    if not ds_all:
        ctx.fail(f"{mon}/grafana-values.yaml: no datasources")
    for uid, ds in ds_all.items():
        if ds.get("type") == "prometheus":
            u = urllib.parse.urlsplit(str(ds.get("url", "")))
            if u.hostname != prom_host or (u.port or 80) != prom_port:
                ctx.fail(f"{mon}/grafana-values.yaml: datasource {uid} url {ds.get('url')} is not kube-prometheus-stack's "
                         f"Prometheus (http://{prom_host}:{prom_port})")
    for name, raw in ctx.dashboards.items():
        for uid in sorted(dashboard_datasource_uids(raw) - set(ds_all)):
            ctx.fail(f"{DASHBOARDS_DIR}/{name}: datasource uid {uid} is not provisioned by {mon}/grafana-values.yaml "
                     f"({sorted(ds_all)})")
    # Adapter.
    p = adapt.get("prometheus") or {}
    u = urllib.parse.urlsplit(str(p.get("url", "")))
    if u.hostname != prom_host or int(p.get("port", 9090)) != prom_port:
        ctx.fail(f"{mon}/prometheus-adapter-values.yaml: prometheus {p.get('url')}:{p.get('port')} is not "
                 f"http://{prom_host}:{prom_port}")
    if not ((adapt.get("rules") or {}).get("external")):
        ctx.fail(f"{mon}/prometheus-adapter-values.yaml: no external rules (the HPAs' lag metrics)")


# -- Argo CD


def check_argocd(ctx: Context) -> None:
    files = sorted(ctx.path("deploy/argocd").glob("*.yaml"))
    if not files:
        ctx.fail("deploy/argocd/*.yaml: no Argo CD Application")
    paths = {}
    for f in files:
        for o in load_yaml_all(f):
            if o.get("kind") != "Application":
                ctx.fail(f"{ctx.rel(f)}: {obj_id(o)} is not an Argo CD Application")
                continue
            src = (o.get("spec") or {}).get("source") or {}
            path = src.get("path", "")
            if not (ctx.path(path) / "kustomization.yaml").exists():
                ctx.fail(f"{ctx.rel(f)}: Application {o['metadata']['name']} path {path} is not a kustomization of this repository")
            paths[path] = o["metadata"]["name"]
    for ov in ctx.overlays():
        if ctx.rel(ov) not in paths:
            ctx.fail(f"no Argo CD Application for overlay {ctx.rel(ov)}")


CHECKS: list[tuple[str, Callable[[Context], None]]] = [
    ("monitoring-files", check_monitoring_files),
    ("env-names", check_env_names),
    ("dockerfile", check_dockerfile),
    ("compose", check_compose),
    ("copies", check_copies),
    ("kustomize", check_kustomize),
    ("k8s-schemas", check_k8s_schemas),
    ("k8s-flowmeter", check_k8s_flowmeter),
    ("platform", check_platform),
    ("helm-values", check_helm_values),
    ("argocd", check_argocd),
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=str(Path(__file__).resolve().parents[2]))
    ap.add_argument("--kubectl", default=os.environ.get("FLOWMETER_DEPLOY_KUBECTL"))
    ap.add_argument("--docker-compose", default=os.environ.get("FLOWMETER_DEPLOY_DOCKER_COMPOSE"))
    ap.add_argument("--modern-kubectl", default=None)
    ap.add_argument("--only", default="")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args(argv)
    if args.list:
        for name, _ in CHECKS:
            print(name)
        return 0
    only = {x for x in args.only.split(",") if x}
    unknown = only - {n for n, _ in CHECKS}
    if unknown:
        print(f"unknown check(s): {sorted(unknown)}", file=sys.stderr)
        return 2
    ctx = Context(args)
    passed = failed = 0
    for name, fn in CHECKS:
        if only and name not in only:
            continue
        ctx.errors, ctx.notes = [], []
        try:
            fn(ctx)
        except CheckFailed as e:
            ctx.fail(str(e))
        except Exception as e:  # a crash is a failure of the check, with its cause
            ctx.fail(f"internal error: {type(e).__name__}: {e}")
        if ctx.errors:
            failed += 1
            print(f"FAIL {name}")
            for e in ctx.errors:
                print(f"  - {e}")
        else:
            passed += 1
            print(f"ok   {name}")
        for n in ctx.notes:
            print(f"       note: {n}")
    print(f"validate-deploy: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
