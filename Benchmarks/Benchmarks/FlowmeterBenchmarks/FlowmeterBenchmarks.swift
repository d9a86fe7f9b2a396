import Benchmark
import BenchmarkCorpus
import FlowmeterCore
import Foundation

#if canImport(Glibc)
import Glibc
#endif

// Every benchmark runs over the same 1,000 LearnFlow records (`Corpus`, ~600 B each). One iteration is one pass over
// all of them and the scaling factor is 1,000, so `--scale` shows per-record time and allocations and `throughput`
// is records per second. Each subject also times, in the same iteration and over the same buffers, a byte-sum pass
// (the speed of reading the bytes once) and reports its own bytes per second and its speed relative to it, so the
// ratios hold even when the machine's speed drifts between runs.
//
// Benchmark names contain no space or `/`: `thresholds update` writes `Thresholds/<ver>/<Target>.<name>.p90.json`
// with those replaced by `_`, but `thresholds check` looks for the name as it is (ordo-one/benchmark#301, #373), so
// such a benchmark's threshold would never be found.

nonisolated(unsafe) private let corpus = Corpus(count: 1000)
private let corpusBytes = corpus.totalBytes

/// Sums every byte of every value, 8 bytes at a time: the floor any pass over the data costs.
@inline(never) private func byteSum(_ records: [BenchRecord]) -> UInt64 {
    var total: UInt64 = 0
    for record in records {
        record.value.withUnsafeBytes { buffer in
            var i = 0
            let count = buffer.count
            while i + 8 <= count {
                total &+= buffer.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                i += 8
            }
            while i < count {
                total &+= UInt64(buffer[i])
                i += 1
            }
        }
    }
    return total
}

private func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

/// Times `body` and a byte-sum pass over the corpus; records MB/s of both and the speed ratio.
private func measure(_ benchmark: Benchmark, name: String, _ body: () -> Void) {
    let clock = ContinuousClock()
    let baseline = clock.measure { blackHole(byteSum(corpus.records)) }
    benchmark.startMeasurement()
    let elapsed = clock.measure(body)
    benchmark.stopMeasurement()
    let megabytes = Double(corpusBytes) / 1e6
    benchmark.measurement(megabytesPerSecond(name), Int(megabytes / seconds(elapsed)))
    benchmark.measurement(byteSumMegabytesPerSecond, Int(megabytes / seconds(baseline)))
    if name != "byte-sum" {
        benchmark.measurement(speedRatio(name), Int((100 * seconds(baseline) / seconds(elapsed)).rounded()))
    }
}

private func megabytesPerSecond(_ name: String) -> BenchmarkMetric {
    .custom("\(name) MB/s", polarity: .prefersLarger, useScalingFactor: false)
}
private let byteSumMegabytesPerSecond = BenchmarkMetric.custom(
    "byte-sum MB/s",
    polarity: .prefersLarger,
    useScalingFactor: false
)
private func speedRatio(_ name: String) -> BenchmarkMetric {
    .custom("\(name) speed / byte-sum speed (%)", polarity: .prefersLarger, useScalingFactor: false)
}

/// Time, throughput and allocations, plus the subject's MB/s, the byte-sum MB/s and their ratio.
///
/// `scripts/bench-check.sh` checks the malloc count, and only it, against `Thresholds/<Swift major.minor>/`: the p90
/// of the mallocs per iteration (one pass, 1,000 records) may differ from the recorded value by at most 5, so one
/// allocation more or less per 100 records (the corpus's rate of dead-letter copies) fails. The count is deterministic
/// here (every iteration of every run so far gave the same), so any such change is real.
private func configuration(_ name: String) -> Benchmark.Configuration {
    .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal, megabytesPerSecond(name), byteSumMegabytesPerSecond]
            + (name == "byte-sum" ? [] : [speedRatio(name)]),
        warmupIterations: 3,
        scalingFactor: .kilo,
        maxDuration: .seconds(3),
        maxIterations: 10_000,
        thresholds: [.mallocCountTotal: .init(absolute: [.p90: 5])]
    )
}

let benchmarks: @Sendable () -> Void = {
    Benchmark("Baseline_byte_sum", configuration: configuration("byte-sum")) { benchmark in
        measure(benchmark, name: "byte-sum") { blackHole(byteSum(corpus.records)) }
    }

    Benchmark("Baseline_memchr_every_quote", configuration: configuration("memchr")) { benchmark in
        measure(benchmark, name: "memchr") {
            var quotes = 0
            for record in corpus.records {
                record.value.withUnsafeBytes { buffer in
                    guard var p = buffer.baseAddress else { return }
                    let end = p + buffer.count
                    while let hit = memchr(p, 0x22, end - p) {
                        quotes += 1
                        p = UnsafeRawPointer(hit) + 1
                    }
                }
            }
            blackHole(quotes)
        }
    }

    Benchmark("Baseline_JSONSerialization", configuration: configuration("JSONSerialization")) { benchmark in
        measure(benchmark, name: "JSONSerialization") {
            for record in corpus.records {
                blackHole(try? JSONSerialization.jsonObject(with: Data(record.value)))
            }
        }
    }

    Benchmark("Decoder_CloudEventDecoder.decode", configuration: configuration("decoder")) { benchmark in
        let decoder = CloudEventDecoder(
            options: DecoderOptions(dlqTopics: Set(learnFlowAnalyzers().deadLetterTopics.map(\.topic)))
        )
        measure(benchmark, name: "decoder") {
            for record in corpus.records {
                record.value.withUnsafeBytes { value in
                    blackHole(
                        decoder.decode(
                            topic: record.topic,
                            partition: record.partition,
                            offset: record.offset,
                            timestampMs: record.timestampMs,
                            headers: record.headers,
                            key: record.key,
                            value: value
                        )
                    )
                }
            }
        }
    }

    Benchmark("Engine_decode_and_AnalysisEngine.process", configuration: configuration("engine")) {
        benchmark in
        // A fresh engine per pass: the corpus replayed into one engine would be all duplicates after the first pass.
        var engine = AnalysisEngine(analyzers: learnFlowAnalyzers(), clock: .recordTimestamps)
        measure(benchmark, name: "engine") {
            for record in corpus.records {
                record.value.withUnsafeBytes { value in
                    engine.process(
                        topic: record.topic,
                        partition: record.partition,
                        offset: record.offset,
                        timestampMs: record.timestampMs,
                        timestampType: .createTime,
                        headers: record.headers,
                        key: record.key,
                        value: value,
                        receivedAtMs: record.timestampMs + 40
                    )
                }
            }
        }
        blackHole(engine.recordsProcessed)
    }
}
