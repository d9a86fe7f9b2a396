#!/usr/bin/env bash
# libFuzzer over the CloudEvent decoder and the analysis engine (Fuzz/DecoderFuzz.swift compiled into one module
# with FlowmeterCore's sources, `-sanitize=fuzzer,address`), seeded from the project's and the shared Dapr
# fixtures. Fails on any crash, trap, leak or sanitizer report.
#
#   scripts/fuzz.sh [SECONDS]      default 60; the corpus grows in .build-fuzz/corpus (not committed)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
out=.build-fuzz
mkdir -p "$out/corpus" "$out/seeds"

echo "== building the decoder fuzz target (swiftc -sanitize=fuzzer,address)"
mapfile -t sources < <(find Sources/FlowmeterCore -name '*.swift' | sort)
swiftc -O -g -sanitize=fuzzer,address -parse-as-library -module-name FlowmeterCore -swift-version 6 \
    -enable-upcoming-feature ExistentialAny -enable-upcoming-feature MemberImportVisibility \
    -enable-upcoming-feature InternalImportsByDefault -enable-upcoming-feature NonisolatedNonsendingByDefault \
    "${sources[@]}" Fuzz/DecoderFuzz.swift -o "$out/fuzz-decoder" 2>&1 \
    | { grep -v 'ld.gold: warning: Cannot export local symbol' || true; }

# Seeds: every fixture record value (project fixtures, and the shared Dapr fixtures when ../shared is there).
count=0
while IFS= read -r -d '' file; do
    cp "$file" "$out/seeds/seed-$count"
    count=$((count + 1))
done < <(find Tests/FlowmeterCoreTests/Fixtures ../shared/dapr/fixtures -type f -print0 2>/dev/null)
echo "== $count seed files; fuzzing for ${seconds}s"
LSAN_OPTIONS="suppressions=$PWD/Fuzz/lsan.supp" "$out/fuzz-decoder" -artifact_prefix="$out/" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    "$out/corpus" "$out/seeds" >"$out/fuzz.log" 2>&1 || {
    grep -v 'ld.gold' "$out/fuzz.log" | tail -n 60
    echo "fuzz: FAILED (artifacts in $out/)" >&2
    exit 1
}
grep -E '^(Done|stat::)|INFO: seed corpus' "$out/fuzz.log" | tail -n 8
echo "fuzz: no crash, trap, leak or sanitizer report in ${seconds}s"
