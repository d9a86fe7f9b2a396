import Foundation
import Testing

@testable import FlowmeterCore

/// One fixture record (WIRE-FORMAT.md §14 format, plus the project's extensions) and its expectations.
struct FixtureCase: Sendable, CustomStringConvertible {
    var name: String
    var topic: String
    var partition: Int32
    var key: [UInt8]?
    var headers: [RecordHeader]
    var timestampMs: Int64
    var timestampType: TimestampType
    var value: [UInt8]?
    var options: DecoderOptions
    var expected: [String: JSONBox]

    var description: String { name }

    func decode() -> DecodedEvent {
        CloudEventDecoder(options: options).decode(
            topic: topic,
            partition: partition,
            offset: 0,
            timestampMs: timestampMs,
            timestampType: timestampType,
            headers: headers,
            key: key,
            value: value
        )
    }
}

/// A Sendable wrapper for values out of `JSONSerialization`.
enum JSONBox: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONBox])
    case object([String: JSONBox])

    init(_ any: Any) {
        switch any {
        case is NSNull: self = .null
        case let b as Bool where type(of: any) == Bool.self:
            self = .bool(b)
        case let n as NSNumber:
            if String(cString: n.objCType) == "c" {
                self = .bool(n.boolValue)
            } else if let i = Int64(exactly: n) {
                self = .int(i)
            } else {
                self = .double(n.doubleValue)
            }
        case let s as String: self = .string(s)
        case let a as [Any]: self = .array(a.map(JSONBox.init))
        case let o as [String: Any]: self = .object(o.mapValues(JSONBox.init))
        default: self = .null
        }
    }

    var string: String? { if case .string(let s) = self { s } else { nil } }
    var int: Int64? { if case .int(let i) = self { i } else { nil } }
    var bool: Bool? { if case .bool(let b) = self { b } else { nil } }
    var isNull: Bool { self == .null }
}

enum Fixtures {
    /// `../shared/dapr/fixtures` relative to the repository root (three levels above this file).
    static var sharedDirectory: URL {
        URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()
            .deletingLastPathComponent()
            .deletingLastPathComponent()
            .deletingLastPathComponent()
            .appendingPathComponent("shared/dapr/fixtures")
    }

    /// The project's own fixtures (a copied resource folder).
    static var projectDirectory: URL {
        if let url = Bundle.module.url(forResource: "Fixtures", withExtension: nil) { return url }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    }

    static func load(from directory: URL) throws -> [FixtureCase] {
        let expectedData = try Data(contentsOf: directory.appendingPathComponent("EXPECTED.json"))
        guard let expected = try JSONSerialization.jsonObject(with: expectedData) as? [String: Any] else {
            throw FixtureError.badFile("EXPECTED.json")
        }
        var cases: [FixtureCase] = []
        for name in expected.keys.sorted() {
            let data = try Data(contentsOf: directory.appendingPathComponent(name))
            guard let record = try JSONSerialization.jsonObject(with: data) as? [String: Any],
                let exp = expected[name] as? [String: Any]
            else { throw FixtureError.badFile(name) }
            cases.append(try makeCase(name: name, record: record, expected: exp))
        }
        return cases
    }

    private static func makeCase(name: String, record: [String: Any], expected: [String: Any]) throws -> FixtureCase {
        var headers: [RecordHeader] = []
        if let dict = record["headers"] as? [String: String] {
            headers = dict.sorted { $0.key < $1.key }.map { RecordHeader(name: $0.key, string: $0.value) }
        } else if let list = record["headers"] as? [[String]] {
            headers = list.map { RecordHeader(name: $0[0], string: $0[1]) }
        }
        var value: [UInt8]?
        if let b64 = record["value_base64"] as? String {
            value = Data(base64Encoded: b64).map { Array($0) }
        } else if let text = record["value"] as? String {
            value = Array(text.utf8)
        }
        var options = DecoderOptions()
        if let o = record["options"] as? [String: Any] {
            if let n = o["max_parse_bytes"] as? Int { options.maxParseBytes = n }
            if let p = o["namespace_prefix"] as? String { options.namespacePrefix = p }
            if let t = o["outbox_internal_topics"] as? [String] { options.outboxInternalTopics = Set(t) }
            if let t = o["dlq_topics"] as? [String] { options.dlqTopics = Set(t) }
        }
        let type: TimestampType =
            switch record["timestamp_type"] as? String {
            case "logAppendTime": .logAppendTime
            case "unknown": .unknown
            default: .createTime
            }
        guard let topic = record["topic"] as? String, let ts = (record["timestamp_ms"] as? NSNumber)?.int64Value else {
            throw FixtureError.badFile(name)
        }
        return FixtureCase(
            name: name,
            topic: topic,
            partition: Int32((record["partition"] as? Int) ?? 0),
            key: (record["key"] as? String).map { Array($0.utf8) },
            headers: headers,
            timestampMs: ts,
            timestampType: type,
            value: value,
            options: options,
            expected: expected.mapValues(JSONBox.init)
        )
    }
}

enum FixtureError: Error {
    case badFile(String)
}

/// Parses an RFC 3339 instant independently of the decoder: Foundation for the seconds, digits for the fraction.
func expectedEpochNanoseconds(_ text: String) -> Int64? {
    var whole = text
    var fractionNs: Int64 = 0
    if let dot = text.firstIndex(of: ".") {
        let digitsEnd = text[dot...].dropFirst().firstIndex { !$0.isNumber } ?? text.endIndex
        let digits = String(text[text.index(after: dot)..<digitsEnd].prefix(9))
        fractionNs = Int64(digits.padding(toLength: 9, withPad: "0", startingAt: 0)) ?? 0
        whole = String(text[..<dot]) + String(text[digitsEnd...])
    }
    let formatter = ISO8601DateFormatter()
    guard let date = formatter.date(from: whole) else { return nil }
    return Int64(date.timeIntervalSince1970.rounded()) * 1_000_000_000 + fractionNs
}

/// Checks a decoded event against the EXPECTED.json entry of `fixture`.
///
/// - Parameter exactFlags: `true` for the project's fixtures, whose `flags` list is exhaustive; the shared
///   fixtures list only the flags they are about.
func check(_ fixture: FixtureCase, exactFlags: Bool, sourceLocation: SourceLocation = #_sourceLocation) {
    let event = fixture.decode()
    let exp = fixture.expected
    let name = fixture.name
    func comment(_ field: String) -> Comment { "\(name): \(field)" }

    if let v = exp["parser_class"]?.string {
        #expect(event.parserClass.rawValue == v, comment("parser_class"), sourceLocation: sourceLocation)
    }
    if let v = exp["producer_kind"]?.string {
        #expect(event.producerKind?.rawValue == v, comment("producer_kind"), sourceLocation: sourceLocation)
    } else if exp["parser_class"]?.string != "CLOUDEVENT" && exp["parser_class"]?.string != "BINARY_CE" {
        #expect(event.producerKind == nil, comment("producer_kind nil"), sourceLocation: sourceLocation)
    }
    if let v = exp["role"]?.string {
        #expect(event.role.rawValue == v, comment("role"), sourceLocation: sourceLocation)
    }
    for (field, actual) in [
        ("id", event.id), ("source", event.source), ("type", event.type), ("specversion", event.specversion),
        ("subject", event.subject), ("datacontenttype", event.datacontenttype),
    ] {
        guard let v = exp[field] else { continue }
        #expect(actual == v.string, comment(field), sourceLocation: sourceLocation)
    }
    if let v = exp["trace_id"] {
        #expect(event.trace?.traceID == v.string, comment("trace_id"), sourceLocation: sourceLocation)
    }
    if let v = exp["parent_span_id"]?.string {
        #expect(event.trace?.parentID == v, comment("parent_span_id"), sourceLocation: sourceLocation)
    }
    if let v = exp["sampled"]?.bool {
        #expect(event.trace?.sampled == v, comment("sampled"), sourceLocation: sourceLocation)
    }
    if let v = exp["trace_source"]?.string {
        #expect(event.trace?.source.rawValue == v, comment("trace_source"), sourceLocation: sourceLocation)
    }
    if let v = exp["ce_time"] {
        if let text = v.string {
            #expect(
                event.ceTime?.epochNanoseconds == expectedEpochNanoseconds(text),
                comment("ce_time"),
                sourceLocation: sourceLocation
            )
        } else {
            #expect(event.ceTime == nil, comment("ce_time nil"), sourceLocation: sourceLocation)
        }
    }
    if let v = exp["ce_time_precision"]?.string {
        let names: [String: TimePrecision] = [
            "seconds": .seconds, "milliseconds": .milliseconds, "microseconds": .microseconds,
            "nanoseconds": .nanoseconds,
        ]
        #expect(event.ceTime?.precision == names[v], comment("ce_time_precision"), sourceLocation: sourceLocation)
    }
    if case .array(let list) = exp["flags"] {
        let want = Set(list.compactMap(\.string))
        let have = Set(event.flags.names)
        if exactFlags {
            #expect(have == want, comment("flags"), sourceLocation: sourceLocation)
        } else {
            #expect(want.isSubset(of: have), comment("flags \(have)"), sourceLocation: sourceLocation)
        }
    }
    if let v = exp["value_bytes"] {
        #expect(event.valueBytes.map(Int64.init) == v.int, comment("value_bytes"), sourceLocation: sourceLocation)
    }
    if let v = exp["data_kind"]?.string {
        let kind: String =
            switch event.dataKind {
            case .jsonObject, .jsonArray, .jsonNumber, .jsonBool, .jsonNull: "json"
            case .jsonString: "string"
            default: event.dataKind.rawValue
            }
        #expect(kind == v, comment("data_kind"), sourceLocation: sourceLocation)
    }
    if let v = exp["decoded_bytes"]?.int {
        #expect(event.decodedDataBytes.map(Int64.init) == v, comment("decoded_bytes"), sourceLocation: sourceLocation)
    }
    if exp["data_is_json_text"]?.bool == true {
        #expect(event.flags.contains(.doubleEncodedJSON), comment("data_is_json_text"), sourceLocation: sourceLocation)
    }
    if let v = exp["parse_error"]?.string {
        #expect(event.parseError?.hasPrefix(v) == true, comment("parse_error"), sourceLocation: sourceLocation)
    }
    if event.parserClass == .malformed {
        #expect(event.parseError != nil, comment("malformed has a parse error"), sourceLocation: sourceLocation)
    }
    if let v = exp["invalid_reason"] {
        #expect(event.invalidReason?.rawValue == v.string, comment("invalid_reason"), sourceLocation: sourceLocation)
    }
    if exp["role"]?.string == "DLQ" || exp["origin_topic"] != nil {
        #expect(event.dlq != nil, comment("dlq info"), sourceLocation: sourceLocation)
    }
    if let v = exp["origin_topic"]?.string {
        #expect(event.dlq?.originTopic == v, comment("origin_topic"), sourceLocation: sourceLocation)
    }
    if let v = exp["origin_partition"]?.int {
        #expect(
            event.dlq?.originPartition.map(Int64.init) == v,
            comment("origin_partition"),
            sourceLocation: sourceLocation
        )
    }
    if let v = exp["origin_offset"]?.int {
        #expect(event.dlq?.originOffset == v, comment("origin_offset"), sourceLocation: sourceLocation)
    }
    if let v = exp["origin_timestamp_ms"]?.int {
        #expect(event.dlq?.originTimestampMs == v, comment("origin_timestamp_ms"), sourceLocation: sourceLocation)
    }
    if let v = exp["time_to_dlq_ms"]?.int {
        #expect(event.dlq?.dlqDelayMs == v, comment("time_to_dlq_ms"), sourceLocation: sourceLocation)
    }
    if let v = exp["probable_reason"]?.string {
        #expect(event.dlq?.probableReason.rawValue == v, comment("probable_reason"), sourceLocation: sourceLocation)
    }
    if let v = exp["outbox_internal"]?.bool {
        #expect(event.outbox?.isInternal == v, comment("outbox_internal"), sourceLocation: sourceLocation)
    }
    if case .object(let paths) = exp["extract"], let value = fixture.value {
        for (path, want) in paths {
            #expect(
                event.extractDataString(atPath: path.split(separator: ".").map(String.init), in: value) == want.string,
                comment("extract \(path)"),
                sourceLocation: sourceLocation
            )
        }
    }
}
