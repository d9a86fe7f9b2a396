#!/usr/bin/env bash
# The README's first command. Sets up a fresh Debian machine (packages, release build), starts the embedded
# Kafka-protocol broker with LearnFlow's topics, starts `flowmeter run` against it, sends a burst of Dapr-shaped
# LearnFlow traffic through kcat (requests, responses, a dead-lettered copy, a malformed record), and shows what
# Flowmeter measured. It keeps running until Ctrl-C; everything it started stops with it.
# (`flowmeter demo` with the simulator and PostgreSQL replaces this script when those issues land.)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
swift build -c release --product flowmeter
bin="$(swift build -c release --show-bin-path)/flowmeter"
http="${FLOWMETER_DEMO_HTTP:-127.0.0.1:9464}"

topics=(learning.requested lesson.generated exercise.submitted exercise.graded progress.updated course.completed)
args=()
for topic in "${topics[@]}"; do args+=(--topic "$topic:6"); done
args+=(--topic exercise.submitted.dlq.exercise-agent:1)

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

coproc BROKER { "$bin" dev-kafka "${args[@]}" --exit-on-stdin-close; }
pids+=("$BROKER_PID")
read -r bootstrap <&"${BROKER[0]}"
echo "embedded Kafka-protocol broker: $bootstrap"

"$bin" run --brokers "$bootstrap" --http "$http" --from earliest --kafka-property fetch.wait.max.ms=50 \
    2> >(grep -v librdkafka >&2) &
pids+=("$!")
for _ in $(seq 1 100); do
    curl -fsS "http://$http/readyz" >/dev/null 2>&1 && break
    sleep 0.2
done
echo "flowmeter run: $(curl -sS "http://$http/readyz" | head -1)"

envelope() { # id topic source trace data
    local tp="00-$4-00f067aa0ba902b7-01"
    printf '{"data":%s,"datacontenttype":"application/json","id":"%s","pubsubname":"pubsub","source":"%s","specversion":"1.0","time":"%s","topic":"%s","traceid":"%s","traceparent":"%s","tracestate":"","type":"com.dapr.event.sent"}' \
        "$5" "$1" "$3" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$2" "$tp" "$tp"
}
for i in $(seq 1 20); do
    trace=$(printf '%032x' $((0xdeadbeef00 + i)))
    echo "learner-$i|$(envelope "sub-$i" exercise.submitted frontend "$trace" "{\"submissionId\":\"s-$i\"}")" \
        | kcat -P -b "$bootstrap" -t exercise.submitted -K '|'
    sleep 0.0$((RANDOM % 9 + 1))
    echo "learner-$i|$(envelope "grade-$i" exercise.graded exercise-agent "$trace" '{"score":0.9}')" \
        | kcat -P -b "$bootstrap" -t exercise.graded -K '|'
done
echo "learner-1|$(envelope sub-1 exercise.submitted frontend "$(printf '%032x' $((0xdeadbeef01)))" '{}')" \
    | kcat -P -b "$bootstrap" -t exercise.submitted.dlq.exercise-agent -K '|' \
        -H __topic=exercise.submitted -H __partition=0 -H __offset=0 -H "__timestamp=$(($(date +%s) * 1000 - 5000))"
echo 'learner-9|{"data":{"broken"' | kcat -P -b "$bootstrap" -t learning.requested -K '|'
sleep 2

echo
echo "what Flowmeter measured (http://$http/metrics):"
curl -sS "http://$http/metrics" | grep -E '^flowmeter_(events_total|flow_latency_seconds_count|flow_latency_seconds_sum|deadletter_events_total|events_invalid_total)' || true
echo
echo "endpoints: http://$http/metrics  http://$http/healthz  http://$http/readyz"
echo "broker:    kcat -L -b $bootstrap"
echo "Ctrl-C stops everything."
wait "${pids[1]}"
