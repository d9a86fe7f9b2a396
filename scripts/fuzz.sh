#!/usr/bin/env bash
# libFuzzer over two targets, each built with `-sanitize=fuzzer,address` and run for SECONDS:
#
# - decoder: the CloudEvent decoder and the analysis engine (Fuzz/DecoderFuzz.swift compiled into one module with
#   FlowmeterCore's sources), seeded from the project's and the shared Dapr fixtures;
# - analyzers: the analyzer-file loader and parser (Fuzz/AnalyzerFileFuzz.swift compiled into one module with the
#   parser's own sources from Sources/FlowmeterApp, over FlowmeterCore, Yams and Yams' C library CYaml, all
#   instrumented), seeded from analyzers/ and the YAML of the analyzer tests (scripts/analyzer-fuzz-seeds.py).
#
# Fails on any crash, trap, leak, sanitizer report or broken invariant, printing the end of that target's log.
#
#   scripts/fuzz.sh [SECONDS]      default 60 per target; corpora grow in .build-fuzz/ (not committed)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
out=.build-fuzz
mkdir -p "$out/corpus" "$out/seeds"
swift_features=(
    -swift-version 6
    -enable-upcoming-feature ExistentialAny -enable-upcoming-feature MemberImportVisibility
    -enable-upcoming-feature InternalImportsByDefault -enable-upcoming-feature NonisolatedNonsendingByDefault
)
# ld.gold warns about every exported local symbol of the instrumented objects; nothing else is filtered.
quiet_gold() { { grep -v 'ld.gold: warning: Cannot export local symbol' || true; }; }

# run_fuzzer NAME BINARY LOG CORPUS SEEDS [libFuzzer options...]: runs one target, prints its final stats.
run_fuzzer() {
    local name=$1 binary=$2 log=$3 corpus=$4 seeds=$5
    shift 5
    local dir
    dir=$(dirname "$log")
    echo "== fuzzing $name for ${seconds}s"
    # SWIFT_BACKTRACE=enable=no: a trap reaches libFuzzer's handler, which writes the input and a stack.
    # TMPDIR: the analyzer target writes each input to a file there.
    SWIFT_BACKTRACE=enable=no LSAN_OPTIONS="suppressions=$PWD/Fuzz/lsan.supp" TMPDIR="$PWD/$dir" \
        "$binary" -artifact_prefix="$dir/" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 "$@" "$corpus" "$seeds" >"$log" 2>&1 || {
        grep -v 'ld.gold' "$log" | tail -n 60
        echo "fuzz: $name FAILED (log $log, artifacts in $dir/)" >&2
        exit 1
    }
    # Anything a sanitizer printed without stopping the run counts as a failure too.
    if grep -q -E '^==[0-9]+==(ERROR|WARNING): ' "$log"; then
        grep -E -A 20 '^==[0-9]+==(ERROR|WARNING): ' "$log" | head -n 60
        echo "fuzz: $name FAILED: sanitizer report in $log" >&2
        exit 1
    fi
    grep -E '^(Done|stat::)|INFO: seed corpus|^#[0-9]+.*DONE' "$log" | tail -n 9
}

echo "== building the decoder fuzz target (swiftc -sanitize=fuzzer,address)"
started=$SECONDS
mapfile -t sources < <(find Sources/FlowmeterCore -name '*.swift' | sort)
# -I Sources/CPrefetch: the header-only module FlowmeterCore imports (its module map).
swiftc -O -g -sanitize=fuzzer,address -parse-as-library -module-name FlowmeterCore "${swift_features[@]}" \
    -I Sources/CPrefetch "${sources[@]}" Fuzz/DecoderFuzz.swift -o "$out/fuzz-decoder" 2>&1 | quiet_gold
echo "   built in $((SECONDS - started)) s"

echo "== building the analyzer-file fuzz target (CYaml, Yams, FlowmeterCore, the parser)"
started=$SECONDS
# Yams' sources: the version SwiftPM resolves for this package, checked out under the fuzz build folder (the
# first resolve clones every dependency, about 25 s; later ones take about a second).
swift package resolve --scratch-path "$out" >"$out/resolve.log" 2>&1 || {
    cat "$out/resolve.log"
    exit 1
}
yams=$out/checkouts/Yams/Sources
parser=$out/analyzers
rm -rf "$parser/obj" "$parser/modules"
mkdir -p "$parser/obj" "$parser/modules" "$parser/corpus" "$parser/seeds"
# CYaml: coverage and ASan instrumentation, libFuzzer linked later by swiftc.
for file in "$yams"/CYaml/src/*.c; do
    clang -O1 -g -fsanitize=fuzzer-no-link,address -DYAML_DECLARE_STATIC -I "$yams/CYaml/include" \
        -c "$file" -o "$parser/obj/cyaml-$(basename "$file" .c).o"
done
# Swift objects: -sanitize=fuzzer,address with -c instruments without linking libFuzzer.
swift_object() { # swift_object MODULE [swiftc arguments and sources...]
    local module=$1
    shift
    swiftc -O -g -sanitize=fuzzer,address -parse-as-library -module-name "$module" -wmo \
        -I "$parser/modules" -I "$yams/CYaml/include" -I Sources/CPrefetch -Xcc -DYAML_DECLARE_STATIC \
        -emit-module -emit-module-path "$parser/modules/$module.swiftmodule" \
        -c "$@" -o "$parser/obj/$module.o" 2>&1 | quiet_gold
}
swift_object Yams -swift-version 5 -D SWIFT_PACKAGE "$yams"/Yams/*.swift
swift_object FlowmeterCore "${swift_features[@]}" "${sources[@]}"
# The parser's own files (AnalyzerLoader, AnalyzerFileParser and what they use), not copies, as module FlowmeterApp.
parser_sources=(
    Sources/FlowmeterApp/Analyzers/AnalyzerError.swift
    Sources/FlowmeterApp/Analyzers/AnalyzerFileParser.swift
    Sources/FlowmeterApp/Analyzers/AnalyzerLoader.swift
    Sources/FlowmeterApp/Analyzers/AnalyzerLoader+BuiltIn.swift
    Sources/FlowmeterApp/Analyzers/AnalyzerSource.swift
    Sources/FlowmeterApp/Configuration/DurationSyntax.swift
    Sources/FlowmeterApp/Quoted.swift
)
swift_object FlowmeterApp "${swift_features[@]}" "${parser_sources[@]}" Fuzz/AnalyzerFileFuzz.swift
swiftc -sanitize=fuzzer,address "$parser"/obj/*.o -o "$out/fuzz-analyzers" 2>&1 | quiet_gold
echo "   built in $((SECONDS - started)) s"

# Seeds: every fixture record value (project fixtures, and the shared Dapr fixtures when ../shared is there).
count=0
while IFS= read -r -d '' file; do
    cp "$file" "$out/seeds/seed-$count"
    count=$((count + 1))
done < <(find Tests/FlowmeterCoreTests/Fixtures ../shared/dapr/fixtures -type f -print0 2>/dev/null)
echo "== decoder: $count seed files"
run_fuzzer decoder "$out/fuzz-decoder" "$out/fuzz.log" "$out/corpus" "$out/seeds" -max_len=65536

rm -f "$parser"/seeds/*
echo "== analyzers: $(python3 scripts/analyzer-fuzz-seeds.py "$parser/seeds") seed files"
run_fuzzer analyzers "$out/fuzz-analyzers" "$parser/fuzz.log" "$parser/corpus" "$parser/seeds" \
    -max_len=16384 -dict=Fuzz/analyzers.dict
echo "fuzz: no crash, trap, leak or sanitizer report in ${seconds}s per target"
