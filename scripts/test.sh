#!/usr/bin/env bash
# Flowmeter's test command: installs what is missing, starts a throwaway PostgreSQL on a loopback port,
# checks formatting, builds with warnings as errors, runs every test target, and stops the server whatever
# happens.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
export FLOWMETER_PROMTOOL="$PWD/.tools/prometheus/usr/bin/promtool"

pgdir=$(mktemp -d /tmp/flowmeter-test-pg.XXXXXX)
cleanup() {
    scripts/postgres.sh stop "$pgdir" >/dev/null 2>&1 || true
    rm -rf "$pgdir"
}
trap cleanup EXIT
FLOWMETER_TEST_POSTGRES_URL=$(scripts/postgres.sh start "$pgdir" | tail -n 1)
export FLOWMETER_TEST_POSTGRES_URL
echo "PostgreSQL for tests: $(sed -E 's#(://[^:/@]+):[^@]*@#\1:***@#' <<<"$FLOWMETER_TEST_POSTGRES_URL")"

echo "== deployment: compose, kustomize overlays, schemas, Helm values cross-checks (and the validators' self-test)"
scripts/validate-deploy.sh --self-test

echo "== monitoring: promtool check/test rules, check config, dashboards"
scripts/check-monitoring.sh

echo "== swift format lint"
swift format lint --strict --recursive Package.swift Sources Tests

echo "== swift build (warnings are errors)"
swift build -Xswiftc -warnings-as-errors --explicit-target-dependency-import-check error
FLOWMETER_BIN="$(swift build --show-bin-path)/flowmeter"
export FLOWMETER_BIN

echo "== swift test"
swift test -Xswiftc -warnings-as-errors --explicit-target-dependency-import-check error "$@"

echo "== dashboards and rules against a real Prometheus scraping flowmeter demo"
scripts/demo-prometheus-check.sh "$FLOWMETER_BIN"

echo "== fuzz: the CloudEvent decoder and analysis engine, and the analyzer-file parser, under libFuzzer (60 s each)"
scripts/fuzz.sh 60
