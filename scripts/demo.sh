#!/usr/bin/env bash
# The README's first command. Sets up a fresh Debian machine (packages, release build), starts a throwaway
# PostgreSQL in .demo/pg, and runs `flowmeter demo --postgres <its URL>`: the embedded Kafka-protocol broker with
# LearnFlow's topics, the traffic simulator and the analyzer in one process, with a live summary on the terminal.
# Ctrl-C (or SIGTERM) stops the demo, which drains and flushes its rollups; then PostgreSQL is stopped. Its data
# stays in .demo/pg for `flowmeter query … --postgres "$(scripts/postgres.sh url .demo/pg)"` after a restart of
# the server (`scripts/postgres.sh start .demo/pg`); delete .demo to start afresh.
#
#   scripts/demo.sh                       # until Ctrl-C
#   scripts/demo.sh --duration 2m --slow-group exercise-agent --stall-group progress-agent:60s
#
# Arguments go to `flowmeter demo` (see `flowmeter demo --help`). FLOWMETER_SCRATCH_PATH builds somewhere other
# than .build (swift build --scratch-path).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
build=(-c release --product flowmeter)
if [ -n "${FLOWMETER_SCRATCH_PATH:-}" ]; then build+=(--scratch-path "$FLOWMETER_SCRATCH_PATH"); fi
echo "building flowmeter (release; the first build takes several minutes)..." >&2
swift build "${build[@]}"
bin="$(swift build "${build[@]}" --show-bin-path)/flowmeter"

pgdir=.demo/pg
mkdir -p .demo
demo_pid=""
cleanup() {
    if [ -n "$demo_pid" ] && kill -0 "$demo_pid" 2>/dev/null; then
        kill -TERM "$demo_pid" 2>/dev/null || true
        wait "$demo_pid" 2>/dev/null || true
    fi
    echo "stopping PostgreSQL ($pgdir)" >&2
    scripts/postgres.sh stop "$pgdir" >/dev/null 2>&1 || true
}
trap cleanup EXIT

url="$(scripts/postgres.sh start "$pgdir" | tail -n 1)"

"$bin" demo --postgres "$url" "$@" &
demo_pid=$!
# Ctrl-C reaches the demo directly (same process group), which drains on its own: a second signal from here
# would make it exit without draining. SIGTERM sent to this script only is passed on.
trap '' INT
trap 'kill -TERM "$demo_pid" 2>/dev/null || true' TERM
status=0
while kill -0 "$demo_pid" 2>/dev/null; do
    wait "$demo_pid" && status=0 || status=$?
done
exit "$status"
