#!/usr/bin/env bash
# Evaluates every dashboard and rule expression against real data: starts a throwaway PostgreSQL, the embedded
# Kafka-protocol broker (`flowmeter dev-kafka`), `flowmeter run`, and a real Prometheus (5 s scrapes, the rules of
# deploy/prometheus/rules) on loopback ports; sends LearnFlow-shaped Dapr traffic through kcat (the three flows,
# fast and slow responses, dead-letter copies, a malformed record, a bad traceparent, a redelivered id); makes
# consumer groups commit with `kcat -G` (one keeps consuming, two stop, one never commits); then runs
# scripts/promql-check.py PROM_URL --require-data while the traffic goes on. Everything it starts stops with it.
#
#   scripts/monitoring-e2e.sh [FLOWMETER_BIN]
#
# FLOWMETER_BIN defaults to $FLOWMETER_BIN, else .build/release/flowmeter, else .build/debug/flowmeter (it builds
# nothing). Prometheus: $FLOWMETER_PROMETHEUS, else the one scripts/install-deps.sh unpacks into .tools/.
# FLOWMETER_E2E_SECONDS: traffic before the check (default 100). FLOWMETER_E2E_KEEP=1 keeps the work directory
# (logs, prometheus.yml) for a look afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

bin="${1:-${FLOWMETER_BIN:-}}"
if [[ -z "$bin" ]]; then
    for candidate in .build/release/flowmeter .build/debug/flowmeter; do
        [[ -x "$candidate" ]] && { bin="$candidate"; break; }
    done
fi
[[ -n "$bin" && -x "$bin" ]] || { echo "error: no flowmeter binary (pass one, or set FLOWMETER_BIN)" >&2; exit 2; }
prometheus="${FLOWMETER_PROMETHEUS:-.tools/prometheus/usr/bin/prometheus}"
[[ -x "$prometheus" ]] || { echo "error: $prometheus missing; run scripts/install-deps.sh" >&2; exit 2; }
command -v kcat >/dev/null || { echo "error: kcat missing; run scripts/install-deps.sh" >&2; exit 2; }
seconds="${FLOWMETER_E2E_SECONDS:-100}"

work="$(mktemp -d /tmp/flowmeter-monitoring-e2e.XXXXXX)"
chmod 755 "$work" # the PostgreSQL server runs as user postgres and must reach $work/pg
pids=()
cleanup() {
    # Newest first, each waited for: traffic and consumers, Prometheus, then flowmeter (it drains against a
    # broker that is still up), then the broker.
    local i
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        kill "${pids[$i]}" 2>/dev/null || true
        wait "${pids[$i]}" 2>/dev/null || true
    done
    scripts/postgres.sh stop "$work/pg" >/dev/null 2>&1 || true
    if [[ "${FLOWMETER_E2E_KEEP:-0}" == 1 ]]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() { # what, command...
    local what="$1"
    shift
    for _ in $(seq 1 150); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    echo "error: $what did not come up; logs in $work" >&2
    FLOWMETER_E2E_KEEP=1
    return 1
}

echo "== PostgreSQL"
pg_url="$(scripts/postgres.sh start "$work/pg" | tail -n 1)"

echo "== broker"
topics=(learning.requested lesson.generated exercise.submitted exercise.graded progress.updated course.completed)
args=()
for topic in "${topics[@]}"; do args+=(--topic "$topic:3"); done
for dlq in learning.requested.dlq.course-agent exercise.submitted.dlq.exercise-agent exercise.graded.dlq.progress-agent; do
    args+=(--topic "$dlq:1")
done
"$bin" dev-kafka "${args[@]}" >"$work/broker.out" 2>"$work/broker.log" &
pids+=("$!")
wait_for "dev-kafka" test -s "$work/broker.out"
bootstrap="$(head -n 1 "$work/broker.out")"
echo "bootstrap $bootstrap"

echo "== flowmeter run"
http="127.0.0.1:$(free_port)"
"$bin" run --brokers "$bootstrap" --postgres "$pg_url" --http "$http" --from earliest --lag-interval 2s \
    --kafka-property fetch.wait.max.ms=50 >"$work/flowmeter.log" 2>&1 &
pids+=("$!")
wait_for "flowmeter run" curl -fsS "http://$http/readyz"
echo "flowmeter http://$http"

echo "== prometheus"
prom="127.0.0.1:$(free_port)"
cat >"$work/prometheus.yml" <<EOF
global:
  scrape_interval: 5s
  evaluation_interval: 5s
rule_files:
  - $PWD/deploy/prometheus/rules/*.yaml
scrape_configs:
  - job_name: flowmeter
    static_configs:
      - targets: ["$http"]
EOF
"$prometheus" --config.file "$work/prometheus.yml" --storage.tsdb.path "$work/tsdb" \
    --web.listen-address "$prom" >"$work/prometheus.log" 2>&1 &
pids+=("$!")
wait_for "prometheus" curl -fsS "http://$prom/-/ready"
echo "prometheus http://$prom"

# --- LearnFlow-shaped Dapr traffic -------------------------------------------------------------------------------
envelope() { # id topic source trace data [traceparent]
    local tp="${6:-00-$4-00f067aa0ba902b7-01}"
    printf '{"data":%s,"datacontenttype":"application/json","id":"%s","pubsubname":"pubsub","source":"%s","specversion":"1.0","time":"%s","topic":"%s","traceid":"%s","traceparent":"%s","tracestate":"","type":"%s"}' \
        "$5" "$1" "$3" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$2" "$tp" "$tp" "com.dapr.event.sent"
}
produce() { kcat -P -b "$bootstrap" -t "$1" -K '|' "${@:2}"; }
round() { # n
    local n="$1" i trace ids=()
    for i in 1 2 3 4; do ids+=("$(printf '%024x%08x' "$n" "$i")"); done
    for i in "${!ids[@]}"; do
        echo "learner-$i|$(envelope "sub-$n-$i" exercise.submitted frontend "${ids[$i]}" "{\"submissionId\":\"s-$n-$i\"}")"
    done | produce exercise.submitted
    for i in "${!ids[@]}"; do
        echo "learner-$i|$(envelope "learn-$n-$i" learning.requested frontend "${ids[$i]}" '{"topic":"recursion"}')"
    done | produce learning.requested
    sleep "0.$((RANDOM % 3 + 1))"
    for i in 0 1 2; do
        echo "learner-$i|$(envelope "grade-$n-$i" exercise.graded exercise-agent "${ids[$i]}" '{"score":0.9}')"
    done | produce exercise.graded
    for i in 0 1 2 3; do
        echo "learner-$i|$(envelope "lesson-$n-$i" lesson.generated course-agent "${ids[$i]}" '{"lesson":"l-1"}')"
    done | produce lesson.generated
    sleep 0.4
    # The fourth grading response is slow (over 500 ms); every other round one never comes (incomplete).
    if ((n % 2 == 0)); then
        echo "learner-3|$(envelope "grade-$n-3" exercise.graded exercise-agent "${ids[3]}" '{"score":0.4}')" | produce exercise.graded
    fi
    for i in 0 1 2; do
        echo "learner-$i|$(envelope "progress-$n-$i" progress.updated progress-agent "${ids[$i]}" '{"progress":0.5}')"
    done | produce progress.updated
    echo "learner-0|$(envelope "done-$n" course.completed progress-agent "${ids[0]}" '{"course":"c-1"}')" | produce course.completed
    # A redelivery (same CloudEvent id), a bad traceparent, a malformed record, a record without a type.
    echo "learner-0|$(envelope "done-$n" course.completed progress-agent "${ids[0]}" '{"course":"c-1"}')" | produce course.completed
    echo "learner-1|$(envelope "bad-tp-$n" course.completed progress-agent "${ids[1]}" '{}' 'not-a-traceparent')" | produce course.completed
    echo 'learner-9|{"data":{"broken"' | produce learning.requested
    echo "learner-8|{\"specversion\":\"1.0\",\"id\":\"nt-$n\",\"source\":\"frontend\"}" | produce learning.requested
    # Dapr dead-letter copies, with the original's coordinates in __ headers.
    local now_ms=$(($(date +%s) * 1000))
    echo "learner-0|$(envelope "sub-$n-0" exercise.submitted frontend "${ids[0]}" '{}')" | produce exercise.submitted.dlq.exercise-agent \
        -H __topic=exercise.submitted -H __partition=0 -H "__offset=$n" -H "__timestamp=$((now_ms - 2500))"
    if ((n % 3 == 0)); then
        echo "learner-1|$(envelope "learn-$n-1" learning.requested frontend "${ids[1]}" '{}')" | produce learning.requested.dlq.course-agent \
            -H __topic=learning.requested -H __partition=0 -H "__offset=$n" -H "__timestamp=$((now_ms - 30000))"
    fi
}
traffic() {
    local n=0
    while :; do
        n=$((n + 1))
        round "$n" 2>>"$work/kcat.log" || true
        sleep 1
    done
}

echo "== traffic and consumer groups"
traffic &
pids+=("$!")
# exercise-agent keeps consuming (status ok); course-agent and frontend (one of its topics only) read once and stop
# (lag builds up: stalled, then stopped); progress-agent never commits (no_commit, no lag series).
sleep 3
kcat -G exercise-agent -b "$bootstrap" -o beginning -q exercise.submitted >/dev/null 2>>"$work/kcat.log" &
pids+=("$!")
timeout 20 kcat -G course-agent -b "$bootstrap" -o beginning -q -e learning.requested course.completed >/dev/null 2>>"$work/kcat.log" || true
timeout 20 kcat -G frontend -b "$bootstrap" -o beginning -q -e lesson.generated >/dev/null 2>>"$work/kcat.log" || true

echo "letting Prometheus scrape for $seconds s"
sleep "$seconds"
curl -fsS "http://$http/metrics" >"$work/metrics.txt"
echo "flowmeter series: $(grep -c '^flowmeter_' "$work/metrics.txt")"

echo "== scripts/promql-check.py http://$prom --require-data"
python3 scripts/promql-check.py "http://$prom" --require-data
