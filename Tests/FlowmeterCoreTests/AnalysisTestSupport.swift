import Testing

@testable import FlowmeterCore

/// One Kafka record to feed an ``AnalysisEngine``.
struct TestRecord: Sendable {
    var topic: String
    var partition: Int32 = 0
    var offset: Int64 = 0
    var timestampMs: Int64
    var timestampType: TimestampType = .createTime
    var headers: [RecordHeader] = []
    var key: [UInt8]? = nil
    var value: [UInt8]?
    var receivedAtMs: Int64? = nil
}

extension AnalysisEngine {
    /// Processes a test record (received at its timestamp + 5 ms unless said otherwise).
    mutating func feed(_ record: TestRecord) {
        let received = record.receivedAtMs ?? (record.timestampMs + 5)
        if let value = record.value {
            value.withUnsafeBytes { buffer in
                process(
                    topic: record.topic,
                    partition: record.partition,
                    offset: record.offset,
                    timestampMs: record.timestampMs,
                    timestampType: record.timestampType,
                    headers: record.headers,
                    key: record.key,
                    value: buffer,
                    receivedAtMs: received
                )
            }
        } else {
            process(
                topic: record.topic,
                partition: record.partition,
                offset: record.offset,
                timestampMs: record.timestampMs,
                timestampType: record.timestampType,
                headers: record.headers,
                key: record.key,
                value: nil,
                receivedAtMs: received
            )
        }
    }

    mutating func feed(_ records: [TestRecord]) {
        for record in records { feed(record) }
    }

    /// The exposition text.
    var exposition: String {
        var text = ""
        writeMetrics(into: &text)
        return text
    }
}

/// Builders for Dapr-shaped records.
enum Dapr {
    /// A start of a UTC minute, well after the epoch: 2023-11-14T22:13:00Z.
    static let minute: Int64 = 1_699_999_980_000

    /// A valid traceparent whose trace-id encodes `n`.
    static func traceparent(_ n: Int, span: Int = 1) -> String {
        "00-" + hex(n, width: 32) + "-" + hex(span, width: 16) + "-01"
    }

    static func traceID(_ n: Int) -> String { hex(n, width: 32) }

    static func hex(_ n: Int, width: Int) -> String {
        let digits = String(n, radix: 16)
        return String(repeating: "0", count: Swift.max(0, width - digits.count)) + digits
    }

    /// A JSON string literal.
    static func quoted(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            default:
                if scalar.value < 0x20 {
                    result += "\\u00" + hex(Int(scalar.value), width: 2)
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result + "\""
    }

    /// Dapr's structured CloudEvent JSON.
    static func cloudEvent(
        id: String,
        type: String,
        topic: String,
        source: String = "course-agent",
        trace: Int? = nil,
        data: String = "{}",
        time: String = "2023-11-14T22:13:00Z"
    ) -> [UInt8] {
        var json = "{\"data\":" + data + ",\"datacontenttype\":\"application/json\",\"id\":" + quoted(id)
        json += ",\"pubsubname\":\"pubsub\",\"source\":" + quoted(source) + ",\"specversion\":\"1.0\""
        json += ",\"time\":" + quoted(time) + ",\"topic\":" + quoted(topic)
        if let trace {
            json += ",\"traceid\":" + quoted(traceparent(trace)) + ",\"traceparent\":" + quoted(traceparent(trace))
        }
        json += ",\"type\":" + quoted(type) + "}"
        return Array(json.utf8)
    }

    /// A CloudEvent record.
    static func event(
        topic: String,
        id: String,
        type: String = "com.learnflow.test",
        at timestampMs: Int64,
        trace: Int? = nil,
        data: String = "{}",
        partition: Int32 = 0,
        offset: Int64 = 0,
        headers: [RecordHeader] = []
    ) -> TestRecord {
        TestRecord(
            topic: topic,
            partition: partition,
            offset: offset,
            timestampMs: timestampMs,
            headers: headers,
            value: cloudEvent(id: id, type: type, topic: topic, trace: trace, data: data)
        )
    }

    /// A copy on `deadLetterTopic` with no headers at all: only its CloudEvent `topic` attribute (`originTopic`)
    /// names where it came from, and only its `id` tells the original apart.
    static func headerlessDeadLetter(
        id: String,
        from originTopic: String,
        on deadLetterTopic: String,
        at timestampMs: Int64
    ) -> TestRecord {
        var copy = event(topic: deadLetterTopic, id: id, at: timestampMs)
        copy.value = cloudEvent(id: id, type: "t", topic: originTopic)
        return copy
    }

    /// Dapr's DLQ copy of `original` on `deadLetterTopic` at `timestampMs`: the same value, the original headers plus
    /// `__key`, `__offset`, `__partition`, `__timestamp`, `__topic` and `pubsubName`.
    static func deadLetterCopy(
        of original: TestRecord,
        on deadLetterTopic: String,
        at timestampMs: Int64,
        withOriginTopicHeader: Bool = true
    ) -> TestRecord {
        var headers = original.headers
        if let key = original.key { headers.append(RecordHeader(name: "__key", value: key)) }
        headers.append(RecordHeader(name: "__offset", string: String(original.offset)))
        headers.append(RecordHeader(name: "__partition", string: String(original.partition)))
        headers.append(RecordHeader(name: "__timestamp", string: String(original.timestampMs)))
        if withOriginTopicHeader { headers.append(RecordHeader(name: "__topic", string: original.topic)) }
        headers.append(RecordHeader(name: "pubsubName", string: "pubsub"))
        return TestRecord(
            topic: deadLetterTopic,
            timestampMs: timestampMs,
            headers: headers,
            key: original.key,
            value: original.value
        )
    }
}

/// The samples of an exposition text, keyed by `name{labels}` as written (or `name` without labels).
struct Exposition {
    var text: String
    var samples: [String: Double] = [:]
    var order: [String] = []

    init(_ text: String) {
        self.text = text
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " ") else { continue }
            let series = String(line[..<space])
            let value = line[line.index(after: space)...]
            samples[series] = value == "+Inf" ? .infinity : Double(value)
            order.append(series)
        }
    }

    subscript(_ series: String) -> Double? { samples[series] }

    /// The sum of every sample of a metric name (without `_bucket` etc. suffix tricks: exact name match).
    func total(_ name: String, where filter: (String) -> Bool = { _ in true }) -> Double {
        samples.filter { ($0.key.hasPrefix(name + "{") || $0.key == name) && filter($0.key) }.values.reduce(0, +)
    }
}

/// A deterministic PRNG.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
