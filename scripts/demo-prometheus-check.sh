#!/usr/bin/env bash
# Issue 6's end-to-end check of the dashboards and rules: a real Prometheus (5 s scrapes, the rules of
# deploy/prometheus/rules) scrapes a running `flowmeter demo` (embedded broker, simulator with a slow and a
# stalling subscriber group, analyzer, a throwaway PostgreSQL for rollups); then scripts/promql-check.py evaluates
# every dashboard panel expression and every rule expression through Prometheus's HTTP API and requires each to
# parse and each dashboard query over Flowmeter's metrics to return data.
#
#   scripts/demo-prometheus-check.sh [FLOWMETER_BIN]     FLOWMETER_E2E_SECONDS (default 75): scraping before the check
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-${FLOWMETER_BIN:-.build/debug/flowmeter}}"
[[ -x "$bin" ]] || { echo "error: no flowmeter binary at $bin (build first, or pass one)" >&2; exit 2; }
prometheus="${FLOWMETER_PROMETHEUS:-.tools/prometheus/usr/bin/prometheus}"
[[ -x "$prometheus" ]] || { echo "error: $prometheus missing; run scripts/install-deps.sh" >&2; exit 2; }
seconds="${FLOWMETER_E2E_SECONDS:-75}"

work="$(mktemp -d /tmp/flowmeter-demo-prometheus.XXXXXX)"
chmod 755 "$work"
pids=()
cleanup() {
    local i
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        kill "${pids[$i]}" 2>/dev/null || true
        wait "${pids[$i]}" 2>/dev/null || true
    done
    scripts/postgres.sh stop "$work/pg" >/dev/null 2>&1 || true
    if [[ "${FLOWMETER_E2E_KEEP:-0}" == 1 ]]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() {
    local what="$1"
    shift
    for _ in $(seq 1 300); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    echo "error: $what did not come up; logs in $work" >&2
    FLOWMETER_E2E_KEEP=1
    return 1
}

pg_url="$(scripts/postgres.sh start "$work/pg" | tail -n 1)"
http="127.0.0.1:$(free_port)"
echo "== flowmeter demo (http://$http)"
"$bin" demo --postgres "$pg_url" --http "$http" --flush-interval 2s --lag-interval 2s --seed 7 \
    --slow-group frontend --stall-group progress-agent:15s --duration "$((seconds + 120))s" \
    >"$work/demo.out" 2>"$work/demo.log" &
pids+=("$!")
wait_for "flowmeter demo" curl -fsS "http://$http/readyz"

bootstrap="$(awk '$1 == "kafka" { print $2; exit }' "$work/demo.out")"
echo "== also what a misbehaving producer writes next to Dapr (into $bootstrap, every 2 s): a malformed record, a bad"
echo "   traceparent, a redelivered CloudEvent id (the simulator writes only what Dapr writes)"
anomalies() {
    local n=0
    while :; do
        n=$((n + 1))
        {
            echo 'x|{"data":{"broken"'
            echo "y|{\"specversion\":\"1.0\",\"id\":\"tp-$n\",\"source\":\"legacy\",\"type\":\"t\",\"traceparent\":\"garbage\"}"
            echo 'z|{"specversion":"1.0","id":"same-id","source":"legacy","type":"t"}'
        } | kcat -P -b "$bootstrap" -t learning.requested -K '|' 2>>"$work/kcat.log" || true
        sleep 2
    done
}
anomalies &
pids+=("$!")

prom="127.0.0.1:$(free_port)"
cat >"$work/prometheus.yml" <<YAML
global:
  scrape_interval: 5s
  evaluation_interval: 5s
rule_files:
  - $PWD/deploy/prometheus/rules/*.yaml
scrape_configs:
  - job_name: flowmeter
    static_configs:
      - targets: ["$http"]
YAML
"$prometheus" --config.file "$work/prometheus.yml" --storage.tsdb.path "$work/tsdb" \
    --web.listen-address "$prom" >"$work/prometheus.log" 2>&1 &
pids+=("$!")
wait_for "prometheus" curl -fsS "http://$prom/-/ready"
echo "== prometheus http://$prom scraping the demo for $seconds s"
sleep "$seconds"
echo "flowmeter series: $(curl -fsS "http://$http/metrics" | grep -c '^flowmeter_')"
echo "== scripts/promql-check.py http://$prom --require-data"
python3 scripts/promql-check.py "http://$prom" --require-data
