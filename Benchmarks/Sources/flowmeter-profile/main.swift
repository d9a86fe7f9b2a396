import BenchmarkCorpus
import FlowmeterCore

// A plain loop over the benchmark corpus, for profilers (valgrind --tool=callgrind):
//
//   flowmeter-profile decode|engine|bytesum [passes]
//
// Prints the records processed so that nothing is optimized away.
let arguments = CommandLine.arguments
let mode = arguments.count > 1 ? arguments[1] : "decode"
let passes = arguments.count > 2 ? Int(arguments[2]) ?? 20 : 20
let corpus = Corpus(count: 1000)
let analyzers = learnFlowAnalyzers()
var checksum = 0

switch mode {
case "decode":
    let decoder = CloudEventDecoder(options: DecoderOptions(dlqTopics: Set(analyzers.deadLetterTopics.map(\.topic))))
    for _ in 0..<passes {
        for record in corpus.records {
            record.value.withUnsafeBytes { value in
                let event = decoder.decode(
                    topic: record.topic,
                    partition: record.partition,
                    offset: record.offset,
                    timestampMs: record.timestampMs,
                    headers: record.headers,
                    key: record.key,
                    value: value
                )
                checksum &+= event.flags.rawValue.nonzeroBitCount &+ (event.id?.utf8.count ?? 0)
            }
        }
    }
case "engine":
    for _ in 0..<passes {
        var engine = AnalysisEngine(analyzers: analyzers, clock: .recordTimestamps)
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
        checksum &+= Int(engine.recordsProcessed)
    }
default:
    for _ in 0..<passes {
        for record in corpus.records { checksum &+= record.value.reduce(0) { $0 &+ Int($1) } }
    }
}
print(
    "\(mode): \(passes) passes over \(corpus.records.count) records (\(corpus.totalBytes) bytes), checksum \(checksum)"
)
