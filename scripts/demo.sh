#!/usr/bin/env bash
# The README's first command. Today it sets up a fresh Debian machine, builds Flowmeter and starts the embedded
# Kafka-protocol broker with the LearnFlow topics, then shows the configuration Flowmeter would run with.
# It grows into the full `flowmeter demo` (simulator, analyzer, PostgreSQL, HTTP) as those issues land.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
swift build -c release --product flowmeter
bin="$(swift build -c release --show-bin-path)/flowmeter"

topics=(learning.requested lesson.generated exercise.submitted exercise.graded progress.updated course.completed)
args=()
for topic in "${topics[@]}"; do args+=(--topic "$topic:6"); done

coproc BROKER { "$bin" dev-kafka "${args[@]}" --exit-on-stdin-close; }
trap 'kill "$BROKER_PID" 2>/dev/null || true' EXIT
read -r bootstrap <&"${BROKER[0]}"

echo "Embedded Kafka-protocol broker: $bootstrap"
echo
kcat -L -b "$bootstrap" | sed -n '1,20p'
echo
"$bin" check --brokers "$bootstrap"
echo
echo "Try:  echo '{\"specversion\":\"1.0\"}' | kcat -P -b $bootstrap -t learning.requested"
echo "      kcat -C -b $bootstrap -t learning.requested -e -f '%T %k %h %s\n'"
echo "Press Ctrl-C to stop."
wait "$BROKER_PID"
