public import FlowmeterCore

/// One Kafka record as the intake hands it to the engine.
public struct BenchRecord: Sendable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    public var timestampMs: Int64
    public var headers: [RecordHeader]
    public var key: [UInt8]
    public var value: [UInt8]
}

/// Realistic LearnFlow traffic as Dapr writes it: structured CloudEvents in Dapr's member order (Go's sorted
/// map keys), compact JSON of about 600 bytes, a `partitionKey` header, requests and responses of the three
/// LearnFlow flows sharing a W3C trace id, Go's `\u003c`-style escapes in submitted code, and one dead-letter
/// copy (with Dapr's `__*` headers) per 100 records. Deterministic: the same count gives the same bytes.
public struct Corpus: Sendable {
    public let records: [BenchRecord]

    /// The value bytes of all records.
    public var totalBytes: Int { records.reduce(0) { $0 + $1.value.count } }

    /// The LearnFlow topics, in the order the generator cycles through them.
    public static let topics = [
        "learning.requested", "lesson.generated", "exercise.submitted", "exercise.graded", "progress.updated",
        "course.completed",
    ]

    public init(count: Int, startTimestampMs: Int64 = 1_764_385_200_000) {
        var random = SplitMix64(seed: 0x5EED)
        var records: [BenchRecord] = []
        records.reserveCapacity(count)
        var offsets: [String: Int64] = [:]
        for index in 0..<count {
            let round = index / 6
            let learner = "learner-\(hex(random.next(), digits: 6))"
            let chain = SplitMix64(seed: UInt64(round) &* 0x9E37_79B9_7F4A_7C15 &+ 1)
            var chainRandom = chain
            let trace = hex(chainRandom.next(), digits: 16) + hex(chainRandom.next(), digits: 16)
            let span = hex(random.next(), digits: 16)
            let traceparent = "00-\(trace)-\(span)-01"
            let timestamp = startTimestampMs + Int64(index) * 7
            var topic = Self.topics[index % 6]
            let (source, data) = Self.payload(topic: topic, learner: learner, random: &random)
            var headers = [RecordHeader(name: "partitionKey", string: learner)]
            if index % 100 == 99 {
                // A dead-letter copy of an exercise submission, as Dapr writes it for the exercise-agent.
                headers = [
                    RecordHeader(name: "partitionKey", string: learner),
                    RecordHeader(name: "__key", string: learner),
                    RecordHeader(name: "__offset", string: "\(index * 3)"),
                    RecordHeader(name: "__partition", string: "\(index % 16)"),
                    RecordHeader(name: "__timestamp", string: "\(timestamp - 850)"),
                    RecordHeader(name: "__topic", string: "exercise.submitted"),
                    RecordHeader(name: "pubsubName", string: "pubsub"),
                ]
                topic = "exercise.submitted.dlq.exercise-agent"
            }
            let ceTopic = topic.hasSuffix(".dlq.exercise-agent") ? "exercise.submitted" : topic
            let value =
                "{\"data\":\(data),\"datacontenttype\":\"application/json\",\"id\":\"\(uuid(&random))\","
                + "\"pubsubname\":\"pubsub\",\"source\":\"\(source)\",\"specversion\":\"1.0\","
                + "\"time\":\"\(rfc3339(timestamp))\",\"topic\":\"\(ceTopic)\",\"traceid\":\"\(traceparent)\","
                + "\"traceparent\":\"\(traceparent)\",\"tracestate\":\"\",\"type\":\"com.dapr.event.sent\"}"
            let offset = offsets[topic, default: 0]
            offsets[topic] = offset + 1
            records.append(
                BenchRecord(
                    topic: topic,
                    partition: Int32(index % 16),
                    offset: offset,
                    timestampMs: timestamp,
                    headers: headers,
                    key: Array(learner.utf8),
                    value: Array(value.utf8)
                )
            )
        }
        self.records = records
    }

    private static func payload(topic: String, learner: String, random: inout SplitMix64) -> (String, String) {
        let course = ["py-fundamentals", "js-async", "go-concurrency", "sql-joins"][Int(random.next() % 4)]
        let request = "req-\(hex(random.next(), digits: 6))"
        switch topic {
        case "learning.requested":
            return (
                "frontend",
                "{\"courseId\":\"\(course)\",\"goal\":\"Understand list comprehensions and generator expressions\","
                    + "\"learnerId\":\"\(learner)\",\"level\":\"beginner\",\"locale\":\"de-DE\","
                    + "\"requestId\":\"\(request)\",\"sessionId\":\"sess-\(hex(random.next(), digits: 6))\"}"
            )
        case "lesson.generated":
            return (
                "course-agent",
                "{\"courseId\":\"\(course)\",\"learnerId\":\"\(learner)\",\"lessonId\":\"lsn-\(hex(random.next(), digits: 8))\","
                    + "\"requestId\":\"\(request)\",\"sections\":[\"intro\",\"syntax\",\"examples\",\"pitfalls\"],"
                    + "\"title\":\"Comprehensions in practice\",\"tokens\":1834}"
            )
        case "exercise.submitted":
            return (
                "frontend",
                "{\"attempt\":\(random.next() % 4 + 1),\"code\":\"for i in range(3):\\n    print(i \\u003c 2 and "
                    + "\\\"small\\\" or \\\"big\\\")\\n\",\"exerciseId\":\"ex-\(course)-\(random.next() % 40)\","
                    + "\"language\":\"python\",\"learnerId\":\"\(learner)\"}"
            )
        case "exercise.graded":
            return (
                "exercise-agent",
                "{\"exerciseId\":\"ex-\(course)-\(random.next() % 40)\",\"feedback\":\"Correct output; consider a "
                    + "conditional expression instead of and/or.\",\"learnerId\":\"\(learner)\",\"passed\":true,"
                    + "\"score\":0.\(random.next() % 90 + 10)}"
            )
        case "progress.updated":
            return (
                "progress-agent",
                "{\"completedModules\":\(random.next() % 8),\"courseId\":\"\(course)\",\"learnerId\":\"\(learner)\","
                    + "\"percent\":\(random.next() % 100),\"streakDays\":\(random.next() % 30),"
                    + "\"updatedModules\":[\"m1\",\"m2\",\"m3\"]}"
            )
        default:
            return (
                "progress-agent",
                "{\"courseId\":\"\(course)\",\"durationMinutes\":\(random.next() % 400),\"finalScore\":0.92,"
                    + "\"learnerId\":\"\(learner)\",\"modulesCompleted\":8,\"certificate\":\"cert-\(hex(random.next(), digits: 10))\"}"
            )
        }
    }
}

/// The LearnFlow analyzer set (analyzers/learnflow.yaml): six topics, their dead-letter topics, three flows.
public func learnFlowAnalyzers() -> AnalyzerSet {
    let deadLetters: [(String, String, String)] = [
        ("learning.requested.dlq.course-agent", "learning.requested", "course-agent"),
        ("lesson.generated.dlq.frontend", "lesson.generated", "frontend"),
        ("exercise.submitted.dlq.exercise-agent", "exercise.submitted", "exercise-agent"),
        ("exercise.graded.dlq.progress-agent", "exercise.graded", "progress-agent"),
        ("exercise.graded.dlq.frontend", "exercise.graded", "frontend"),
        ("progress.updated.dlq.frontend", "progress.updated", "frontend"),
        ("course.completed.dlq.course-agent", "course.completed", "course-agent"),
    ]
    return AnalyzerSet(
        topics: Corpus.topics.map { .name($0) },
        deadLetterTopics: deadLetters.map { DeadLetterTopic(topic: $0.0, sourceTopic: $0.1, subscriber: $0.2) },
        flows: [
            FlowDefinition(name: "lesson", from: "learning.requested", to: "lesson.generated"),
            FlowDefinition(name: "grading", from: "exercise.submitted", to: "exercise.graded"),
            FlowDefinition(name: "submission-to-progress", from: "exercise.submitted", to: "progress.updated"),
        ]
    )
}

/// A small, fast, deterministic generator (Vigna's SplitMix64).
public struct SplitMix64: Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

private let hexDigits = Array("0123456789abcdef".utf8)

func hex(_ value: UInt64, digits: Int) -> String {
    var bytes = [UInt8](repeating: 0, count: digits)
    var v = value
    for i in stride(from: digits - 1, through: 0, by: -1) {
        bytes[i] = hexDigits[Int(v & 0xF)]
        v >>= 4
    }
    return String(decoding: bytes, as: UTF8.self)
}

func uuid(_ random: inout SplitMix64) -> String {
    let a = hex(random.next(), digits: 16)
    let b = hex(random.next(), digits: 16)
    let s = Array(a.utf8) + Array(b.utf8)
    func part(_ r: Range<Int>) -> String { String(decoding: s[r], as: UTF8.self) }
    return "\(part(0..<8))-\(part(8..<12))-4\(part(13..<16))-a\(part(17..<20))-\(part(20..<32))"
}

/// Whole-second RFC 3339 in UTC, as Dapr writes `time`.
func rfc3339(_ ms: Int64) -> String {
    let seconds = ms / 1000
    let days = seconds / 86_400
    let rest = seconds % 86_400
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let doe = z - era * 146_097
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
    let mp = (5 * doy + 2) / 153
    let day = doy - (153 * mp + 2) / 5 + 1
    let month = mp < 10 ? mp + 3 : mp - 9
    let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
    func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
    return "\(year)-\(two(month))-\(two(day))T\(two(rest / 3600)):\(two(rest / 60 % 60)):\(two(rest % 60))Z"
}
