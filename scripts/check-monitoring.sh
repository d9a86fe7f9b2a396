#!/usr/bin/env bash
# Checks Flowmeter's monitoring files offline: Prometheus rules (promtool check rules), their unit tests
# (promtool test rules), the compose Prometheus config (promtool check config), the Grafana dashboards (JSON,
# provisioning-ready, generated from deploy/grafana/generate.py, every panel on the ${datasource} variable,
# every target with an expression) and the syntax of every dashboard expression (through promtool).
#
#   scripts/check-monitoring.sh              offline checks
#   scripts/check-monitoring.sh PROM_URL     also evaluate every expression against that Prometheus
#                                            (scripts/promql-check.py PROM_URL --require-data)
#
# promtool: $FLOWMETER_PROMTOOL, else .tools/prometheus/usr/bin/promtool (scripts/install-deps.sh unpacks it
# there), else promtool on the PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

promtool="${FLOWMETER_PROMTOOL:-}"
if [[ -z "$promtool" ]]; then
    if [[ -x .tools/prometheus/usr/bin/promtool ]]; then
        promtool=.tools/prometheus/usr/bin/promtool
    elif command -v promtool >/dev/null 2>&1; then
        promtool="$(command -v promtool)"
    else
        echo "error: promtool not found; run scripts/install-deps.sh (or set FLOWMETER_PROMTOOL)" >&2
        exit 2
    fi
fi

work="$(mktemp -d /tmp/flowmeter-check-monitoring.XXXXXX)"
trap 'rm -rf "$work"' EXIT

echo "== promtool check rules"
"$promtool" check rules deploy/prometheus/rules/*.yaml

echo "== promtool test rules"
"$promtool" test rules deploy/prometheus/tests/*.yaml

echo "== promtool check config"
"$promtool" check config deploy/prometheus/prometheus.yml

echo "== dashboards up to date with deploy/grafana/generate.py"
python3 deploy/grafana/generate.py --check

echo "== dashboards and rule tests (scripts/promql-check.py --offline)"
python3 scripts/promql-check.py --offline --list "$work/dashboard-expressions.json" --rules-out "$work/dashboard-expressions.rules.yaml"

echo "== dashboard expressions parse (promtool check rules on them)"
"$promtool" check rules "$work/dashboard-expressions.rules.yaml"

if [[ $# -ge 1 ]]; then
    echo "== every expression against $1"
    python3 scripts/promql-check.py "$1" --require-data
fi
echo "monitoring: all checks passed"
