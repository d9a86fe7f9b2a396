#!/usr/bin/env bash
# Whole-process backfill throughput: `flowmeter backfill` against `kcat` as a consumer-group member.
#
#   scripts/bench-backfill.sh [--records N] [--partitions P] [--runs R] [--skip-build]
#
# Starts `flowmeter dev-kafka` with the six LearnFlow topics of P partitions each (default 32: librdkafka's mock
# keeps only 5 MiB per partition, so N/(6P) records of ~600 B must stay under that), produces N records (default
# 1,000,000) with `kcat -P -l` from files written by scripts/bench-records.py (one topic after the other, requests
# before responses, so that the record timestamps are causal), starts a throwaway PostgreSQL
# (scripts/postgres.sh), then alternates R runs (default 5) of each reader, each in a fresh consumer group:
#
#   flowmeter backfill --until-end --from earliest --brokers B --postgres URL --group fm-bench-K   (fresh database)
#   kcat -b B -G kcat-bench-K -o beginning -e -q TOPICS... > /dev/null
#
# and times each process from start to exit. A Flowmeter run counts only if its stored event total
# (sum(events) of flowmeter.event_counts_1m) equals N. Both pay the mock broker's 3 s first-join delay. Prints every
# run (seconds, records/s, peak RSS, flows matched of the pairs the data holds), the medians and the median ratio
# (kcat seconds / flowmeter seconds: >= 1.0 means Flowmeter is at least as fast). Uses the release build in
# .build-perf (built unless --skip-build), or the binary named by FLOWMETER_BIN. With FLOWMETER_BASELINE_BIN (another flowmeter binary, e.g. of an older commit), every run
# also times that binary the same way (fresh group and database, its event total checked), so that the two binaries
# and kcat are compared within one run of the script.
set -euo pipefail

RECORDS=1000000
PARTITIONS=32
RUNS=5
BUILD=1
while [[ $# -gt 0 ]]; do
    case "$1" in
    --records) RECORDS="$2"; shift 2 ;;
    --partitions) PARTITIONS="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    --skip-build) BUILD=0; shift ;;
    *) echo "usage: $0 [--records N] [--partitions P] [--runs R] [--skip-build]" >&2; exit 2 ;;
    esac
done

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SCRATCH="${FLOWMETER_SCRATCH_PATH:-$ROOT/.build-perf}"
TOPICS=(learning.requested lesson.generated exercise.submitted exercise.graded progress.updated course.completed)
command -v kcat >/dev/null || { echo "bench-backfill: kcat not found (apt-get install kcat)" >&2; exit 1; }
command -v psql >/dev/null || PSQL_DIR="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
PSQL="${PSQL_DIR:+$PSQL_DIR/}psql"

per_partition_bytes=$((RECORDS / (6 * PARTITIONS) * 620))
if ((per_partition_bytes > 5 * 1024 * 1024 * 9 / 10)); then
    echo "bench-backfill: $RECORDS records over 6x$PARTITIONS partitions is ~$per_partition_bytes B per partition;" \
        "the mock broker keeps 5 MiB: use more --partitions" >&2
    exit 1
fi

if ((BUILD)) && [[ -z "${FLOWMETER_BIN:-}" ]]; then
    echo "== building the release binary (swift build -c release --scratch-path $SCRATCH)"
    (cd "$ROOT" && swift build -c release --scratch-path "$SCRATCH" --product flowmeter >/dev/null)
fi
FLOWMETER="${FLOWMETER_BIN:-$SCRATCH/release/flowmeter}"
[[ -x "$FLOWMETER" ]] || { echo "bench-backfill: $FLOWMETER missing" >&2; exit 1; }

WORK="$(mktemp -d /tmp/flowmeter-bench.XXXXXX)"
chmod 755 "$WORK"
KAFKA_PID=""
cleanup() {
    [[ -n "$KAFKA_PID" ]] && kill "$KAFKA_PID" 2>/dev/null && wait "$KAFKA_PID" 2>/dev/null
    "$ROOT/scripts/postgres.sh" stop "$WORK/pg" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

now() { date +%s.%N; }

echo "== machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== generating $RECORDS records"
python3 "$ROOT/scripts/bench-records.py" "$WORK" "$RECORDS"
bytes=$(cat "$WORK"/*.records | wc -c)
echo "   $(numfmt --to=iec "$bytes") of key<TAB>value lines, $((bytes / RECORDS)) B per record"

echo "== starting flowmeter dev-kafka (6 topics x $PARTITIONS partitions)"
topic_args=()
for t in "${TOPICS[@]}"; do topic_args+=(--topic "$t:$PARTITIONS"); done
mkfifo "$WORK/kafka.in"
"$FLOWMETER" dev-kafka --exit-on-stdin-close "${topic_args[@]}" <"$WORK/kafka.in" >"$WORK/kafka.out" 2>"$WORK/kafka.err" &
KAFKA_PID=$!
exec 9>"$WORK/kafka.in" # keeps dev-kafka's stdin open until this script exits
for _ in $(seq 1 100); do [[ -s "$WORK/kafka.out" ]] && break; sleep 0.1; done
BOOTSTRAP="$(head -n 1 "$WORK/kafka.out")"
[[ -n "$BOOTSTRAP" ]] || { echo "bench-backfill: dev-kafka printed no bootstrap" >&2; cat "$WORK/kafka.err" >&2; exit 1; }
echo "   bootstrap $BOOTSTRAP"

# One topic after the other, requests before their responses: the record timestamps (kcat's produce time) are then
# causal, as Dapr's are, and every flow pair can match (topics produced in parallel stamped many responses before
# their requests, and the flows came out as negative latencies).
echo "== producing with kcat -P -l"
t0=$(now)
for t in learning.requested exercise.submitted lesson.generated exercise.graded progress.updated course.completed; do
    kcat -P -b "$BOOTSTRAP" -t "$t" -K $'\t' -H partitionKey=bench -l \
        -X linger.ms=20 -X batch.num.messages=10000 -X queue.buffering.max.messages=1000000 \
        "$WORK/$t.records" || { echo "bench-backfill: kcat -P failed" >&2; exit 1; }
done
t1=$(now)
echo "   $(echo "$t1 - $t0" | bc) s"

# Every record must be in the broker (and still retained) before anything is timed.
total=0
for t in "${TOPICS[@]}"; do
    n=$(kcat -C -b "$BOOTSTRAP" -t "$t" -o beginning -e -q -f '\n' | wc -l)
    total=$((total + n))
done
[[ "$total" -eq "$RECORDS" ]] || { echo "bench-backfill: the broker holds $total records, not $RECORDS" >&2; exit 1; }
echo "   broker holds $total records"

echo "== starting PostgreSQL"
URL="$("$ROOT/scripts/postgres.sh" start "$WORK/pg" | tail -n 1)"
ADMIN_URL="$URL"

# kcat -G -e: check once (untimed) that a balanced-consumer kcat exits at the end having read everything.
n=$(kcat -b "$BOOTSTRAP" -G kcat-bench-check -o beginning -e -q -f '\n' "${TOPICS[@]}" | wc -l)
[[ "$n" -eq "$RECORDS" ]] || { echo "bench-backfill: kcat -G -e read $n records, not $RECORDS" >&2; exit 1; }
echo "   kcat -G -e read all $n records (check run, untimed)"

fm_times=()
kc_times=()
ratios=()
bl_times=()
bl_ratios=()
run_flowmeter() {
    local k="$1" binary="${2:-$FLOWMETER}" db="bench_${1//-/_}"
    "$PSQL" "$ADMIN_URL" -qAtc "CREATE DATABASE $db" >/dev/null
    local url="${URL%/*}/$db"
    local t0 t1 events
    t0=$(now)
    /usr/bin/time -f 'peak RSS %M KiB' -o "$WORK/fm-$k.rss" "$binary" backfill --until-end --from earliest \
        --brokers "$BOOTSTRAP" --postgres "$url" --group "fm-bench-$k" >"$WORK/fm-$k.out" 2>"$WORK/fm-$k.err"
    t1=$(now)
    events=$("$PSQL" "$url" -qAtc "SELECT coalesce(sum(events), 0) FROM flowmeter.event_counts_1m")
    FM_SECONDS=$(echo "$t1 - $t0" | bc)
    if [[ "$events" -ne "$RECORDS" ]]; then
        echo "   run $k: flowmeter stored $events events, not $RECORDS: this run does not count" >&2
        FM_SECONDS=""
    fi
    FM_SUMMARY="$(grep -h 'backfill complete' "$WORK/fm-$k.out" "$WORK/fm-$k.err" | tail -n 1 || true)"
    # Flows matched, of the pairs the data holds: record i is on topic i mod 6 and in chain i div 6, whose records
    # share a trace id. lesson: learning.requested (i mod 6 = 0) -> lesson.generated (1); grading:
    # exercise.submitted (2) -> exercise.graded (3); submission-to-progress: (2) -> progress.updated (4). A chain
    # holds a pair when the response's record index is below N.
    local flows
    flows=$("$PSQL" "$url" -qAtF ' ' -c "SELECT flow, sum(completed), sum(evicted) FROM flowmeter.rollup_flows
        GROUP BY flow ORDER BY flow" | awk -v n="$RECORDS" '
        function pairs(last) { return n > last ? int((n - 1 - last) / 6) + 1 : 0 }
        BEGIN { want["lesson"] = pairs(1); want["grading"] = pairs(3); want["submission-to-progress"] = pairs(4) }
        { printf "%s%s %d/%d", sep, $1, $2, want[$1]; if ($3 > 0) printf " (%d evicted)", $3; sep = ", " }')
    FM_SUMMARY="${FM_SUMMARY#*backfill complete: }; $(cat "$WORK/fm-$k.rss"); flows matched: $flows"
}
run_kcat() {
    local k="$1" t0 t1
    t0=$(now)
    kcat -b "$BOOTSTRAP" -G "kcat-bench-$k" -o beginning -e -q "${TOPICS[@]}" >/dev/null
    t1=$(now)
    KC_SECONDS=$(echo "$t1 - $t0" | bc)
}

BASELINE="${FLOWMETER_BASELINE_BIN:-}"
[[ -z "$BASELINE" || -x "$BASELINE" ]] || { echo "bench-backfill: $BASELINE missing" >&2; exit 1; }
[[ -x /usr/bin/time ]] || { echo "bench-backfill: /usr/bin/time missing (apt-get install time)" >&2; exit 1; }
echo "== $RUNS alternating runs ($RECORDS records each)${BASELINE:+; baseline binary $BASELINE}"
printf '%-4s %-10s %10s %12s   %s\n' run reader seconds records/s note
for k in $(seq 1 "$RUNS"); do
    if ((k % 2)); then order=(flowmeter kcat baseline); else order=(baseline kcat flowmeter); fi
    fm="" kc="" bl=""
    for reader in "${order[@]}"; do
        if [[ "$reader" == baseline ]]; then
            [[ -n "$BASELINE" ]] || continue
            run_flowmeter "$k-baseline" "$BASELINE"
            bl="$FM_SECONDS"
            if [[ -n "$bl" ]]; then
                printf '%-4s %-10s %10.2f %12.0f   %s\n' "$k" baseline "$bl" "$(echo "$RECORDS / $bl" | bc -l)" \
                    "$FM_SUMMARY"
            fi
        elif [[ "$reader" == flowmeter ]]; then
            run_flowmeter "$k"
            fm="$FM_SECONDS"
            if [[ -n "$fm" ]]; then
                printf '%-4s %-10s %10.2f %12.0f   %s\n' "$k" flowmeter "$fm" "$(echo "$RECORDS / $fm" | bc -l)" \
                    "$FM_SUMMARY"
            fi
        else
            run_kcat "$k"
            kc="$KC_SECONDS"
            printf '%-4s %-10s %10.2f %12.0f\n' "$k" kcat "$kc" "$(echo "$RECORDS / $kc" | bc -l)"
        fi
    done
    if [[ -n "$fm" ]]; then
        fm_times+=("$fm")
        kc_times+=("$kc")
        ratios+=("$(echo "$kc / $fm" | bc -l)")
    fi
    if [[ -n "$bl" ]]; then
        bl_times+=("$bl")
        bl_ratios+=("$(echo "$kc / $bl" | bc -l)")
    fi
done

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
spread() { printf '%s\n' "$@" | sort -g | awk 'NR==1{lo=$1} {hi=$1} END {printf "%.2f-%.2f", lo, hi}'; }
((${#fm_times[@]} > 0)) || { echo "bench-backfill: no run counted" >&2; exit 1; }
fm_median=$(median "${fm_times[@]}")
kc_median=$(median "${kc_times[@]}")
echo "== summary over ${#fm_times[@]} counted runs"
printf 'flowmeter backfill: median %.2f s (%s), %.0f records/s\n' "$fm_median" "$(spread "${fm_times[@]}")" \
    "$(echo "$RECORDS / $fm_median" | bc -l)"
printf 'kcat -G:            median %.2f s (%s), %.0f records/s\n' "$kc_median" "$(spread "${kc_times[@]}")" \
    "$(echo "$RECORDS / $kc_median" | bc -l)"
printf 'ratio kcat seconds / flowmeter seconds: median of per-run ratios %.2f (%s)\n' "$(median "${ratios[@]}")" \
    "$(spread "${ratios[@]}")"
if ((${#bl_times[@]} > 0)); then
    printf 'baseline backfill:  median %.2f s (%s), %.0f records/s\n' "$(median "${bl_times[@]}")" \
        "$(spread "${bl_times[@]}")" "$(echo "$RECORDS / $(median "${bl_times[@]}")" | bc -l)"
    printf 'ratio kcat seconds / baseline seconds: median of per-run ratios %.2f (%s)\n' "$(median "${bl_ratios[@]}")" \
        "$(spread "${bl_ratios[@]}")"
fi
