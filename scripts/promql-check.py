#!/usr/bin/env python3
"""Checks Flowmeter's dashboards and Prometheus rules, offline and against a real Prometheus.

    scripts/promql-check.py --offline [--list FILE] [--rules-out FILE]
        Validates every dashboard JSON (provisioning-ready, unique uids, every panel and query on the
        ${datasource} variable, every target with an expression, every variable defined), checks that the
        promtool unit tests exercise every alert firing and not firing and every recording rule, and extracts
        every PromQL expression of the dashboards (template variables replaced by .*, $__rate_interval and
        $__interval by 1m, $__range by 1h). --list writes them as JSON; --rules-out writes them as a rule file
        so that `promtool check rules` parses them offline.

    scripts/promql-check.py PROM_URL [--require-data]
        The same validation, then evaluates every dashboard expression (panels, annotations, variable
        selectors) and every rule expression through PROM_URL/api/v1/query and prints expression -> number of
        series. Fails if any does not parse or fails to evaluate. With --require-data it also fails when a
        dashboard expression over flowmeter_ metrics (recording rules included) returns no series. Expressions
        over dapr_* metrics only have to parse: no Dapr sidecar runs here.

Exit status: 0 all good, 1 a check failed, 2 bad usage or missing files.
"""

import argparse
import glob
import json
import math
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

try:
    import yaml
except ImportError:  # pragma: no cover
    print("error: PyYAML is needed (Debian: apt-get install python3-yaml)", file=sys.stderr)
    sys.exit(2)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DASHBOARDS = os.path.join(ROOT, "deploy", "grafana", "dashboards")
RULES = os.path.join(ROOT, "deploy", "prometheus", "rules")
TESTS = os.path.join(ROOT, "deploy", "prometheus", "tests")

BUILTINS = {
    "__rate_interval": "1m",
    "__interval": "1m",
    "__interval_ms": "60000",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
}
VAR_REF = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)(?::[^\]]*)?\]\]|\$(\w+)")
UID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
FLOWMETER = re.compile(r"(?<![A-Za-z0-9_])(?:[a-z_]+:)?flowmeter_[a-z_]+")
DAPR = re.compile(r"(?<![A-Za-z0-9_])dapr_[a-z_]+")
LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(.*?)\s*,\s*(\w+)\s*\)\s*$", re.S)


class Problems:
    def __init__(self):
        self.items = []

    def add(self, where, message):
        self.items.append(f"{where}: {message}")


# ----------------------------------------------------------------------------------------------------------------
# Dashboards


def datasource_ok(ds):
    return isinstance(ds, dict) and ds.get("uid") in ("${datasource}", "$datasource")


def walk_panels(panels):
    for panel in panels or []:
        yield panel
        yield from walk_panels(panel.get("panels"))


def substitute(expr, values):
    def repl(match):
        name = match.group(1) or match.group(2) or match.group(3)
        return values.get(name, match.group(0))

    return VAR_REF.sub(repl, expr)


def undefined_vars(expr, values):
    return sorted({m.group(1) or m.group(2) or m.group(3) for m in VAR_REF.finditer(expr)} - set(values))


def variable_values(dashboard, where, problems):
    """Each template variable's stand-in value for evaluation."""
    values = dict(BUILTINS)
    datasource_var = False
    for var in dashboard.get("templating", {}).get("list", []):
        name, kind = var.get("name"), var.get("type")
        if kind == "datasource":
            if name == "datasource" and var.get("query") == "prometheus":
                datasource_var = True
            continue
        if kind == "query":
            if not datasource_ok(var.get("datasource")):
                problems.add(where, f"variable {name}: datasource must be ${{datasource}}")
            query = var.get("query")
            query = query.get("query") if isinstance(query, dict) else query
            if not query:
                problems.add(where, f"variable {name}: empty query")
            values[name] = (var.get("allValue") or ".*") if var.get("includeAll") else ".*"
        elif kind in ("custom", "constant", "textbox", "interval"):
            current = var.get("current", {}).get("value")
            values[name] = current if isinstance(current, str) and current else (var.get("query") or ".*")
        else:
            values[name] = ".*"
    if not datasource_var:
        problems.add(where, 'no variable "datasource" of type datasource for prometheus')
    return values


def load_dashboards(directory, problems):
    """Validates every dashboard; returns [(kind, source, expr)] with variables substituted."""
    expressions = []
    uids = {}
    files = sorted(glob.glob(os.path.join(directory, "*.json")))
    if not files:
        problems.add(directory, "no dashboards")
    for path in files:
        where = os.path.relpath(path, ROOT)
        try:
            with open(path, encoding="utf-8") as f:
                dashboard = json.load(f)
        except (OSError, json.JSONDecodeError) as error:
            problems.add(where, f"not valid JSON: {error}")
            continue
        uid = dashboard.get("uid")
        if not isinstance(uid, str) or not UID.match(uid):
            problems.add(where, f"uid {uid!r} missing or not 1-40 characters of [A-Za-z0-9_-]")
        elif uid in uids:
            problems.add(where, f"uid {uid} also used by {uids[uid]}")
        else:
            uids[uid] = where
        if dashboard.get("id") is not None:
            problems.add(where, '"id" must be absent (or null) for provisioning')
        if "__inputs" in dashboard or "__requires" in dashboard:
            problems.add(where, "__inputs/__requires are for manual import, not provisioning")
        if not isinstance(dashboard.get("schemaVersion"), int) or dashboard["schemaVersion"] < 36:
            problems.add(where, "schemaVersion missing or older than 36")
        if not dashboard.get("title"):
            problems.add(where, "no title")
        values = variable_values(dashboard, where, problems)

        def take(kind, source, expr):
            missing = undefined_vars(expr, values)
            if missing:
                problems.add(where, f"{source}: undefined variable(s) {', '.join(missing)}")
            expressions.append((kind, f"{os.path.basename(path)}: {source}", substitute(expr, values)))

        for var in dashboard.get("templating", {}).get("list", []):
            if var.get("type") != "query":
                continue
            query = var.get("query")
            query = query.get("query") if isinstance(query, dict) else query
            match = LABEL_VALUES.match(query or "")
            if match:
                take("variable", f"variable {var['name']}", match.group(1))
            elif query and not query.strip().startswith(("label_names(", "metrics(", "query_result(")):
                problems.add(where, f"variable {var['name']}: unexpected query {query!r}")
        for annotation in dashboard.get("annotations", {}).get("list", []):
            if annotation.get("builtIn"):
                continue
            if not datasource_ok(annotation.get("datasource")):
                problems.add(where, f"annotation {annotation.get('name')}: datasource must be ${{datasource}}")
            if not annotation.get("expr"):
                problems.add(where, f"annotation {annotation.get('name')}: no expr")
            else:
                take("annotation", f"annotation {annotation.get('name')}", annotation["expr"])
        ids = set()
        for panel in walk_panels(dashboard.get("panels")):
            title = panel.get("title", "?")
            pid = panel.get("id")
            if pid in ids:
                problems.add(where, f"panel {title!r}: duplicate id {pid}")
            ids.add(pid)
            if "gridPos" not in panel:
                problems.add(where, f"panel {title!r}: no gridPos")
            if panel.get("type") == "row":
                continue
            if not datasource_ok(panel.get("datasource")):
                problems.add(where, f"panel {title!r}: datasource must reference ${{datasource}}")
            targets = panel.get("targets") or []
            if not targets:
                problems.add(where, f"panel {title!r}: no targets")
            refs = set()
            for target in targets:
                ref = target.get("refId")
                if ref in refs:
                    problems.add(where, f"panel {title!r}: duplicate refId {ref}")
                refs.add(ref)
                if not datasource_ok(target.get("datasource")):
                    problems.add(where, f"panel {title!r} target {ref}: datasource must reference ${{datasource}}")
                expr = target.get("expr")
                if not isinstance(expr, str) or not expr.strip():
                    problems.add(where, f"panel {title!r} target {ref}: no expr")
                    continue
                take("panel", f"{title} [{ref}]", expr)
    return expressions


# ----------------------------------------------------------------------------------------------------------------
# Rules and their unit tests


def load_rules(directory, problems):
    """Returns ([(kind, name, expr)], alert names, record names)."""
    expressions, alerts, records = [], set(), set()
    files = sorted(glob.glob(os.path.join(directory, "*.yaml")) + glob.glob(os.path.join(directory, "*.yml")))
    if not files:
        problems.add(directory, "no rule files")
    for path in files:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f) or {}
        for group in doc.get("groups", []):
            for rule in group.get("rules", []):
                if "alert" in rule:
                    alerts.add(rule["alert"])
                    expressions.append(("alert", f"{group['name']}: {rule['alert']}", rule["expr"]))
                    for key in ("severity",):
                        if key not in rule.get("labels", {}):
                            problems.add(os.path.relpath(path, ROOT), f"alert {rule['alert']}: no {key} label")
                    for key in ("summary", "description", "runbook"):
                        if key not in rule.get("annotations", {}):
                            problems.add(os.path.relpath(path, ROOT), f"alert {rule['alert']}: no {key} annotation")
                else:
                    records.add(rule["record"])
                    expressions.append(("record", f"{group['name']}: {rule['record']}", rule["expr"]))
    return expressions, alerts, records


def check_rule_tests(directory, alerts, records, problems):
    """Every alert tested firing and not firing; every recording rule in some promql_expr_test."""
    firing, silent, tested_exprs = set(), set(), []
    files = sorted(glob.glob(os.path.join(directory, "*.yaml")))
    if not files:
        problems.add(directory, "no rule tests")
    for path in files:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f) or {}
        for test in doc.get("tests", []):
            for case in test.get("alert_rule_test", []) or []:
                name = case.get("alertname")
                if name not in alerts:
                    problems.add(os.path.relpath(path, ROOT), f"test of unknown alert {name}")
                (firing if case.get("exp_alerts") else silent).add(name)
            for case in test.get("promql_expr_test", []) or []:
                tested_exprs.append(case.get("expr", ""))
    for name in sorted(alerts):
        if name not in firing:
            problems.add("deploy/prometheus/tests", f"alert {name} is never tested firing")
        if name not in silent:
            problems.add("deploy/prometheus/tests", f"alert {name} is never tested not firing")
    for record in sorted(records):
        pattern = re.compile(re.escape(record) + r"(?![A-Za-z0-9_:])")
        if not any(pattern.search(expr) for expr in tested_exprs):
            problems.add("deploy/prometheus/tests", f"recording rule {record} has no promql_expr_test")


# ----------------------------------------------------------------------------------------------------------------
# Evaluation


def one_line(expr):
    return " ".join(expr.split())


def evaluate(url, expr, timeout):
    body = urllib.parse.urlencode({"query": expr}).encode()
    request = urllib.request.Request(url.rstrip("/") + "/api/v1/query", data=body, method="POST")
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            payload = json.load(response)
    except urllib.error.HTTPError as error:
        try:
            payload = json.load(error)
        except Exception:  # noqa: BLE001 - anything unreadable is the HTTP error itself
            return None, None, f"HTTP {error.code}"
    except (urllib.error.URLError, OSError) as error:
        return None, None, f"cannot reach {url}: {error}"
    if payload.get("status") != "success":
        return None, None, f"{payload.get('errorType')}: {payload.get('error')}"
    data = payload["data"]
    if data["resultType"] in ("vector", "matrix"):
        result = data["result"]
        values = [sample["value"][1] for sample in result if "value" in sample]
        nan = sum(1 for value in values if value in ("NaN", "+Inf", "-Inf") or math.isnan(float(value)))
        return len(result), nan, None
    return 1, 0, None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prom_url", nargs="?", help="Prometheus base URL, e.g. http://127.0.0.1:9090")
    parser.add_argument("--require-data", action="store_true", help="fail when a flowmeter_ dashboard expression has no series")
    parser.add_argument("--offline", action="store_true", help="only validate and extract; no Prometheus")
    parser.add_argument("--list", metavar="FILE", help="write the extracted dashboard expressions (JSON)")
    parser.add_argument("--rules-out", metavar="FILE", help="write the dashboard expressions as a rule file for promtool")
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args()
    if not args.offline and not args.prom_url:
        parser.error("give PROM_URL or --offline")

    problems = Problems()
    dashboard_exprs = load_dashboards(DASHBOARDS, problems)
    rule_exprs, alerts, records = load_rules(RULES, problems)
    check_rule_tests(TESTS, alerts, records, problems)

    if args.list:
        with open(args.list, "w", encoding="utf-8") as f:
            json.dump([{"kind": k, "source": s, "expr": e} for k, s, e in dashboard_exprs], f, indent=2)
            f.write("\n")
    if args.rules_out:
        rules = [
            {"record": f"dashboard:expression_{i}:check", "expr": expr, "labels": {"source": source[:200]}}
            for i, (_, source, expr) in enumerate(dashboard_exprs, start=1)
        ]
        with open(args.rules_out, "w", encoding="utf-8") as f:
            yaml.safe_dump({"groups": [{"name": "dashboard-expressions", "rules": rules}]}, f, sort_keys=False, width=1000)

    print(
        f"{len(glob.glob(os.path.join(DASHBOARDS, '*.json')))} dashboards, {len(dashboard_exprs)} dashboard expressions; "
        f"{len(alerts)} alerts, {len(records)} recording rules"
    )

    failed = False
    if not args.offline:
        rows = []
        for kind, source, expr in dashboard_exprs + rule_exprs:
            series, nan, error = evaluate(args.prom_url, expr, args.timeout)
            dapr_only = bool(DAPR.search(expr)) and not FLOWMETER.search(expr)
            needs_data = kind in ("panel", "annotation", "variable") and bool(FLOWMETER.search(expr))
            if error:
                verdict = "ERROR"
                failed = True
                problems.add(source, error)
            elif dapr_only:
                verdict = "parsed (dapr)"
            elif series == 0 and needs_data:
                verdict = "NO DATA"
                if args.require_data:
                    failed = True
                    problems.add(source, "no series (flowmeter_ metrics must have data)")
            elif series == 0:
                verdict = "ok (empty)"
            else:
                verdict = "ok"
            shown = "-" if series is None else (f"{series} ({nan} NaN)" if nan else str(series))
            rows.append((kind, verdict, shown, source, one_line(expr)))
        widths = [max(len(r[i]) for r in rows + [("kind", "verdict", "series", "source", "")]) for i in range(4)]
        print(f"{'kind':<{widths[0]}}  {'verdict':<{widths[1]}}  {'series':>{widths[2]}}  {'source':<{widths[3]}}  expr")
        for kind, verdict, shown, source, expr in rows:
            print(f"{kind:<{widths[0]}}  {verdict:<{widths[1]}}  {shown:>{widths[2]}}  {source:<{widths[3]}}  {expr}")
        counts = {}
        for row in rows:
            counts[row[1]] = counts.get(row[1], 0) + 1
        print("summary: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))

    if problems.items:
        for item in problems.items:
            print(f"problem: {item}", file=sys.stderr)
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
