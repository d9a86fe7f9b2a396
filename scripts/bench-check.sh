#!/usr/bin/env bash
# Allocation regression check of the micro-benchmarks (Benchmarks/, ordo-one/benchmark): builds the benchmark
# package in release, runs every benchmark measuring only its malloc count, and compares the p90 of the mallocs per
# iteration (one pass over the 1,000-record corpus) with Benchmarks/Thresholds/<Swift major.minor>/
# <Target>.<Benchmark>.p90.json, within the tolerance each benchmark declares (`thresholds:` in
# FlowmeterBenchmarks.swift). Only malloc counts are recorded: they are deterministic; time is not on a shared machine.
#
#   scripts/bench-check.sh            # check (CI runs it): fails on a regression, an improvement or a missing threshold
#   scripts/bench-check.sh --update   # record this toolchain's thresholds anew, then review `git diff Benchmarks/Thresholds`
#
# FLOWMETER_BENCH_SCRATCH: the scratch path inside Benchmarks/ (default .build-perf, shared with the README's
# benchmark commands).
set -euo pipefail
cd "$(dirname "$0")/../Benchmarks"

mode=check
case "${1:-}" in
    "") ;;
    --update) mode=update ;;
    *)
        echo "usage: $0 [--update]" >&2
        exit 64
        ;;
esac

fail() {
    echo "bench-check: error: $*" >&2
    exit 1
}

command -v swift >/dev/null || fail "swift is not on PATH"
scratch="${FLOWMETER_BENCH_SCRATCH:-.build-perf}"
version=$(swift --version 2>&1 | sed -nE 's/.*Swift version ([0-9]+\.[0-9]+).*/\1/p' | head -n 1)
[ -n "$version" ] || fail "cannot read the Swift version from \`swift --version\`"
dir="Thresholds/$version"
swift_package=(swift package --scratch-path "$scratch")

log=$(mktemp /tmp/flowmeter-bench-check.XXXXXX)
trap 'rm -f "$log"' EXIT

if [ "$mode" = update ]; then
    mkdir -p "$dir"
    rm -f "$dir"/*.p90.json
    "${swift_package[@]}" --allow-writing-to-package-directory benchmark thresholds update \
        --metric mallocCountTotal --path "$dir" --no-progress
    echo "bench-check: thresholds for Swift $version written to Benchmarks/$dir; review \`git diff Benchmarks/Thresholds\`" \
        "and commit them"
    exit 0
fi

[ -d "$dir" ] || fail "no thresholds for Swift $version (Benchmarks/$dir is missing): record them with \`scripts/bench-check.sh --update\`, review and commit them"

# Builds (the first build takes several minutes), runs every benchmark and checks it. Progress is on so that the tool
# prints the benchmarks it checked (the progress bars themselves are filtered out).
echo "bench-check: checking the mallocs of every benchmark against Benchmarks/$dir"
set +e
"${swift_package[@]}" benchmark thresholds check --metric mallocCountTotal --path "$dir" 2>&1 | tee "$log" |
    grep -av --line-buffered 'ETA: [0-9]' | cat -s
rc=${PIPESTATUS[0]}
set -e

# The tool's verdict is read from its output: `swift package` turns every failure of the plugin into exit code 1.
if grep -aq '^Could not find any matching absolute thresholds' "$log"; then
    fail "no file in Benchmarks/$dir matches a benchmark: record them with \`scripts/bench-check.sh --update\`, review and commit them"
fi
if grep -aq "is WORSE than the defined thresholds" "$log"; then
    fail "allocation REGRESSION: a benchmark allocates more than Benchmarks/$dir records (table above: mallocs per pass of 1,000 records). Remove the allocation; if it is intended, run \`scripts/bench-check.sh --update\` and commit the new thresholds with the reason"
fi
if grep -aq "is BETTER than the defined thresholds" "$log"; then
    fail "a benchmark allocates FEWER times than Benchmarks/$dir records (table above): run \`scripts/bench-check.sh --update\` and commit the lower thresholds, so that the check goes on catching regressions"
fi
if [ "$rc" -ne 0 ] || ! grep -aq "is EQUAL to the defined thresholds" "$log"; then
    fail "\`swift package benchmark thresholds check\` failed (exit code $rc, output above)"
fi

# `thresholds check` ignores a benchmark that has no threshold file, so every benchmark it ran must have one.
checked=$(grep -a -m 1 '^Checking \[' "$log" | grep -ao '"[^"]*"' | tr -d '"' || true)
[ -n "$checked" ] || fail "cannot find the list of checked benchmarks (\"Checking [...]\") in the output above"
missing=()
while IFS=: read -r target name; do
    file="$dir/$target.$name.p90.json"
    grep -q '"mallocCountTotal"' "$file" 2>/dev/null || missing+=("Benchmarks/$file")
done <<<"$checked"
if [ ${#missing[@]} -gt 0 ]; then
    printf '  %s\n' "${missing[@]}" >&2
    fail "no malloc threshold for Swift $version in the files above (a new or renamed benchmark): record them with \`scripts/bench-check.sh --update\`, review and commit them"
fi
echo "bench-check: ok: the malloc counts of $(wc -l <<<"$checked") benchmarks are within their thresholds"
