// libFuzzer entry point for the CloudEvent decoder, compiled into one module with FlowmeterCore's sources by
// scripts/fuzz.sh (`swiftc -sanitize=fuzzer,address`). Every input is decoded as a record value, with and without
// Dapr's dead-letter headers, and fed through an analysis engine: nothing may crash, trap or leak.

let fuzzDecoder = CloudEventDecoder()
nonisolated(unsafe) var fuzzEngine = AnalysisEngine(
    analyzers: AnalyzerSet(
        topics: [.name("exercise.submitted"), .name("exercise.graded")],
        flows: [
            FlowDefinition(name: "grading", from: "exercise.submitted", to: "exercise.graded")
        ]
    )
)

nonisolated(unsafe) var fuzzOffset: Int64 = 0

/// Creates the long-lived state before the first input, so that libFuzzer's per-input leak check does not see
/// its one-time allocations.
@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>
) -> Int32 {
    _ = fuzzDecoder.decode(
        topic: "exercise.submitted",
        partition: 0,
        offset: 0,
        timestampMs: 0,
        headers: [],
        key: nil,
        value: Array(#"{"specversion":"1.0","id":"x","source":"s","type":"t"}"#.utf8)
    )
    var text = ""
    fuzzEngine.writeMetrics(into: &text)
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let value = UnsafeRawBufferPointer(start: data, count: size)
    let split = size / 2
    let headers = [
        RecordHeader(name: "__topic", value: Array(value.prefix(split))),
        RecordHeader(name: "__offset", value: Array(value.suffix(size - split))),
        RecordHeader(name: "traceparent", value: Array(value.prefix(55))),
    ]
    for (topic, recordHeaders) in [("exercise.submitted", []), ("exercise.graded.dlq.progress-agent", headers)] {
        let event = fuzzDecoder.decode(
            topic: topic,
            partition: 0,
            offset: 0,
            timestampMs: 1_764_000_000_000,
            headers: recordHeaders,
            key: nil,
            value: value
        )
        _ = event.invalidReason
        fuzzEngine.process(
            topic: topic,
            partition: 0,
            offset: fuzzOffset,
            timestampMs: 1_764_000_000_000 + fuzzOffset,
            timestampType: .createTime,
            headers: recordHeaders,
            keyBytes: nil,
            value: value,
            receivedAtMs: 1_764_000_000_000 + fuzzOffset
        )
        fuzzOffset += 1
    }
    if fuzzOffset % 4096 == 0 {
        var text = ""
        fuzzEngine.writeMetrics(into: &text)
    }
    return 0
}
