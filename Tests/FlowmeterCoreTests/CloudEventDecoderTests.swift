import Testing

@testable import FlowmeterCore

private func decode(
    _ value: String?,
    topic: String = "progress.updated",
    headers: [RecordHeader] = [],
    timestampMs: Int64 = 1_762_161_124_318,
    options: DecoderOptions = DecoderOptions()
) -> DecodedEvent {
    CloudEventDecoder(options: options).decode(
        topic: topic,
        partition: 0,
        offset: 1,
        timestampMs: timestampMs,
        headers: headers,
        key: nil,
        value: value.map { Array($0.utf8) }
    )
}

/// The classified-topic decode the engine calls, with `deferredID` as the engine passes it (`nil`: a plain decode).
private func engineDecode(
    _ decoder: CloudEventDecoder,
    topic: String,
    _ value: UnsafeRawBufferPointer,
    deferredID: UnsafeMutablePointer<Range<Int>?>?
) -> DecodedEvent {
    decoder.decode(
        topic: topic,
        topicClass: decoder.classify(topic: topic),
        partition: 0,
        offset: 1,
        timestampMs: 1_762_161_124_318,
        timestampType: .createTime,
        headers: [],
        keyBytes: nil,
        value: value,
        deferredID: deferredID
    )
}

private func envelope(data: String, contentType: String = "text/plain") -> String {
    #"{"data":\#(data),"datacontenttype":"\#(contentType)","id":"e1","pubsubname":"pubsub","source":"a","#
        + #""specversion":"1.0","time":"2025-11-03T09:12:04Z","topic":"progress.updated","traceid":"","#
        + #""traceparent":"","tracestate":"","type":"com.dapr.event.sent"}"#
}

@Suite struct CloudEventDecoderTests {
    /// One decoder over many records: its cache of topic classes (keyed by the topic's bytes, 16 topics) must give
    /// what a fresh decoder gives, for more topics than it holds, in changing order, with namespaced, listed,
    /// pattern-matched, outbox and non-ASCII names, and topic strings built anew for each record.
    @Test func sharedDecoderClassifiesTopicsLikeAFreshOne() {
        let options = DecoderOptions(
            dlqTopics: ["orders.dead", "ns-orders.dead"],
            outboxInternalTopics: ["orders-outbox", "ns-orders-outbox"],
            namespacePrefix: "ns-"
        )
        var topics = [
            "orders", "orders.dead", "ns-orders.dead", "orders-outbox", "ns-orders-outbox", "ns-orders", "x.dlq",
            "x.dlq.y", "ns-x.dlq", "dlq", "", "ns-", "orders.dea", "orders.deadx", "caf\u{E9}.dlq", "é.dlq",
            "a-rather-long-topic-name-beyond-sixteen-bytes.dlq", "a-rather-long-topic-name-beyond-sixteen-bytes",
        ]
        for k in 0..<24 { topics.append("topic-\(k)\(k % 3 == 0 ? ".dlq" : "")") }
        let value = envelope(data: "{}")
        let shared = CloudEventDecoder(options: options)
        for round in 0..<3 {
            let order = round == 1 ? topics.reversed() : topics
            for topic in order {
                // A new String each time, with the same bytes.
                let fresh = String(decoding: Array(topic.utf8), as: UTF8.self)
                func event(_ decoder: CloudEventDecoder) -> DecodedEvent {
                    decoder.decode(
                        topic: fresh,
                        partition: 0,
                        offset: 1,
                        timestampMs: 1_762_161_124_318,
                        headers: [],
                        key: nil,
                        value: Array(value.utf8)
                    )
                }
                #expect(event(shared) == event(CloudEventDecoder(options: options)), "\(topic) round \(round)")
            }
        }
    }

    /// The engine's decode leaves an id that would need a string of its own (unescaped, over 15 bytes) as its
    /// bytes, and leaves out the record's topic and a `topic` attribute that spells it; the event is otherwise the
    /// one a plain decode gives, and every other id is decoded as usual.
    @Test func aLongIDCanBeLeftAsItsBytes() {
        let decoder = CloudEventDecoder(options: DecoderOptions())
        let cases: [(id: String, deferred: Bool)] = [
            ("3f2c9a1e-0b7d-4c55-a9e1-6d2f0c8b7e41", true),
            ("0123456789abcdef", true),  // 16 bytes
            ("0123456789abcde", false),  // 15 bytes: a small string, no allocation
            ("", false),
            (#"escaped \"quote\" in a long id"#, false),
            ("outbox-0123456789abcdef", true),
        ]
        for (id, deferred) in cases {
            let value = Array(
                (#"{"specversion":"1.0","id":""# + id + #"","source":"s","type":"t","pubsubname":"p","topic":"x"}"#)
                    .utf8
            )
            value.withUnsafeBytes { buffer in
                let plain = engineDecode(decoder, topic: "x", buffer, deferredID: nil)
                var range: Range<Int>? = 0..<1
                var left = engineDecode(decoder, topic: "x", buffer, deferredID: &range)
                #expect(left.recordTopic == "" && plain.recordTopic == "x")
                #expect(left.topicAttribute == nil && plain.topicAttribute == "x")
                left.recordTopic = plain.recordTopic
                left.topicAttribute = plain.topicAttribute
                if deferred {
                    #expect(left.id == nil, "\(id)")
                    #expect(range.map { String(decoding: buffer[$0], as: UTF8.self) } == plain.id, "\(id)")
                    left.id = plain.id
                } else {
                    #expect(range == nil, "\(id)")
                }
                #expect(left == plain, "\(id)")
            }
        }
    }

    /// The engine's decode keeps a `topic` attribute that differs from the record's topic (flagged as before), and
    /// a dead letter's (its origin when the headers do not name one).
    @Test func theEngineDecodeKeepsTopicAttributesItNeeds() {
        let decoder = CloudEventDecoder(options: DecoderOptions(dlqTopics: ["x.dlq"]))
        for (recordTopic, attribute) in [("x", "y"), ("x.dlq", "x")] {
            let value = Array(
                (#"{"specversion":"1.0","id":"e1","source":"s","type":"t","pubsubname":"p","topic":""# + attribute
                    + #""}"#).utf8
            )
            value.withUnsafeBytes { buffer in
                let plain = engineDecode(decoder, topic: recordTopic, buffer, deferredID: nil)
                var range: Range<Int>?
                var lean = engineDecode(decoder, topic: recordTopic, buffer, deferredID: &range)
                #expect(lean.topicAttribute == attribute)
                #expect(lean.flags == plain.flags)
                lean.recordTopic = plain.recordTopic
                #expect(lean == plain, "\(recordTopic)")
            }
        }
    }

    @Test func doubleEncodedJSON() throws {
        let value = envelope(data: #""{\"submissionId\": \"sub-1\", \"n\": 7, \"nested\": {\"k\": [1, \"two\"]}}""#)
        let event = decode(value)
        #expect(event.parserClass == .cloudEvent)
        #expect(event.producerKind == .daprWrapped)
        #expect(event.flags == [.doubleEncodedJSON])
        #expect(event.dataKind == .jsonString)
        let bytes = Array(value.utf8)
        #expect(event.extractDataString(atPath: ["submissionId"], in: bytes) == "sub-1")
        #expect(event.extractDataString(atPath: ["n"], in: bytes) == "7")
        #expect(event.extractDataString(atPath: ["nested", "k", "1"], in: bytes) == "two")
        #expect(event.extractDataString(atPath: ["nested", "k", "2"], in: bytes) == nil)
        #expect(event.extractDataString(atPath: ["missing"], in: bytes) == nil)
        let whole = bytes.withUnsafeBytes { JSONPath.extractString(atPath: ["data", "submissionId"], in: $0) }
        #expect(whole == "sub-1")
    }

    @Test func doubleEncodedOnlyForPlainText() {
        let json = #""{\"a\":1}""#
        #expect(decode(envelope(data: json, contentType: "application/json")).flags.isEmpty)
        #expect(decode(envelope(data: json, contentType: "Text/Plain; charset=utf-8")).flags == [.doubleEncodedJSON])
        #expect(decode(envelope(data: #""{not json""#)).flags.isEmpty)
        #expect(decode(envelope(data: #""  \n [1,2]""#)).flags == [.doubleEncodedJSON])
        #expect(decode(envelope(data: #""hello""#)).flags.isEmpty)
        let off = DecoderOptions(tryDoubleEncodedJSON: false)
        #expect(decode(envelope(data: json), options: off).flags.isEmpty)
    }

    @Test func extractFromObjectData() {
        let value = envelope(data: #"{"id":"x","score":1.50,"ok":true,"list":[{"a":"\u003c"}],"nil":null}"#)
        let event = decode(value, options: DecoderOptions())
        let bytes = Array(value.utf8)
        #expect(event.dataKind == .jsonObject)
        #expect(event.extractDataString(atPath: ["score"], in: bytes) == "1.50")
        #expect(event.extractDataString(atPath: ["ok"], in: bytes) == "true")
        #expect(event.extractDataString(atPath: ["list", "0", "a"], in: bytes) == "<")
        #expect(event.extractDataString(atPath: ["nil"], in: bytes) == nil)
        #expect(event.extractDataString(atPath: ["list"], in: bytes) == nil)
        #expect(event.extractDataString(atPath: ["id", "deeper"], in: bytes) == nil)
    }

    @Test func zeroCopyEntryPointUsesOffsetsIntoTheGivenBuffer() {
        let value = Array(envelope(data: #"{"k":"v"}"#).utf8)
        let padded = [UInt8](repeating: 0x41, count: 10) + value + [0x42]
        let event = padded.withUnsafeBytes { all in
            let slice = UnsafeRawBufferPointer(rebasing: all[10..<(10 + value.count)])
            let event = CloudEventDecoder().decode(
                topic: "progress.updated",
                partition: 0,
                offset: 0,
                timestampMs: 1_762_161_124_318,
                headers: [],
                key: nil,
                value: slice
            )
            #expect(event.extractDataString(atPath: ["k"], in: slice) == "v")
            return event
        }
        #expect(event.dataRange == 8..<17)
        #expect(event.valueBytes == value.count)
    }

    @Test(arguments: [
        ("exercise.submitted.dlq", true), ("a.dlq.progress-agent", true), ("a.dlqx", false), ("dlq", false),
        ("a-dlq", false), ("x.dlq.y.z", true), ("dlq.a", false),
    ])
    func dlqTopicGlobMatcher(_ topic: String, isDLQ: Bool) {
        #expect((decode("{}", topic: topic).role == .dlq) == isDLQ)
    }

    @Test func dlqByHeaders() {
        let headers = [RecordHeader(name: "__topic", string: "a"), RecordHeader(name: "__offset", string: "5")]
        let event = decode("{}", topic: "anything", headers: headers)
        #expect(event.role == .dlq)
        #expect(event.dlq?.originTopic == "a")
        #expect(event.dlq?.originOffset == 5)
        #expect(decode("{}", topic: "anything", headers: [headers[0]]).role == .normal)
    }

    @Test func binaryModeWithNonJSONData() {
        let headers = [
            RecordHeader(name: "CE_SpecVersion", string: "1.0"), RecordHeader(name: "ce_id", string: "b1"),
            RecordHeader(name: "ce_source", string: "s"), RecordHeader(name: "ce_type", string: "t"),
            RecordHeader(name: "content-type", string: "application/json"),
            RecordHeader(name: "traceparent", string: "00-3a67bbaea487df117c61ad9907c039dd-7c50d72ba1e1830a-01"),
        ]
        let event = decode("not json", headers: headers)
        #expect(event.parserClass == .binaryCloudEvent)
        #expect(event.id == "b1")
        #expect(event.dataKind == .binary)
        #expect(event.flags == [.missingTime, .invalidJSONData])
        #expect(event.trace?.source == .headerTraceparent)
        #expect(event.invalidReason == nil)
    }

    @Test func sharedMalformedMessage() throws {
        let value = #"{"data":{"exerciseId":"ex-py-loops-03","learnerId":"learner-c41d07","code":"for i in range("#
        let event = decode(value)
        #expect(event.parserClass == .malformed)
        #expect(event.parseError == "unexpected end of input at byte \(value.utf8.count)")
        #expect(event.invalidReason == .malformedJSON)
    }

    @Test func oversizeStillClassifies() {
        let big = #"{"big":"\#(String(repeating: "x", count: 2000))"}"#
        let value = envelope(data: big, contentType: "application/json")
        let event = decode(value, options: DecoderOptions(maxParseBytes: 100))
        #expect(event.flags.contains(.oversize))
        #expect(event.parserClass == .cloudEvent)
        #expect(event.producerKind == .daprWrapped)
        #expect(event.id == "e1")
        #expect(event.ceTime?.epochNanoseconds == 1_762_161_124_000_000_000)
        // Truncation is still found by the bounded scan.
        let truncated = String(value.dropLast(5))
        #expect(decode(truncated, options: DecoderOptions(maxParseBytes: 100)).parserClass == .malformed)
    }

    @Test(arguments: [
        ("SGVsbG8=", 5, false), ("SGVsbG8", 5, false), ("SGVsbA==", 4, false), ("SGVsbA", 4, false), ("", 0, false),
        ("-_8", 2, true), ("AAAA", 3, false),
    ])
    func base64Valid(_ text: String, count: Int, urlSafe: Bool) throws {
        let bytes = Array(text.utf8)
        let m = bytes.withUnsafeBufferPointer { b in
            b.count == 0
                ? Base64.Measurement(decodedCount: 0, urlSafe: false) : Base64.measure(b.baseAddress!, 0, b.count)
        }
        #expect(m?.decodedCount == count)
        #expect(m?.urlSafe == urlSafe)
    }

    @Test(arguments: ["A", "AAAAA", "SGVsbG8===", "SGV=bG8=", "SGVsb G8=", "SGVs$G8=", "A===", "SGVsbG8=="])
    func base64Invalid(_ text: String) {
        let bytes = Array(text.utf8)
        #expect(bytes.withUnsafeBufferPointer { Base64.measure($0.baseAddress!, 0, $0.count) } == nil)
    }

    @Test func flagNamesAreUniqueAndRoundTrip() {
        let names = DecoderFlags.named.map(\.name)
        #expect(Set(names).count == names.count)
        var all: DecoderFlags = []
        for (flag, name) in DecoderFlags.named {
            #expect(flag.rawValue.nonzeroBitCount == 1)
            #expect(!all.contains(flag))
            all.insert(flag)
            #expect(DecoderFlags(name: name) == flag)
            #expect(flag.names == [name])
        }
        #expect(DecoderFlags(name: "nope") == nil)
    }

    @Test func rawPayloadBooleanForms() {
        for truth in ["true", "1", "TRUE", "t"] {
            let event = decode("\u{1}bin", headers: [RecordHeader(name: "rawPayload", string: truth)])
            #expect(event.parserClass == .raw)
        }
        #expect(decode("\u{1}bin", headers: [RecordHeader(name: "rawPayload", string: "no")]).parserClass == .malformed)
    }
}

@Suite struct TopicGlobMatcherTests {
    @Test(arguments: [
        ("*.dlq", "a.dlq", true), ("*.dlq", "a.dlqx", false), ("*.dlq", ".dlq", true), ("*.dlq", "dlq", false),
        ("*.dlq.*", "a.dlq.b", true), ("*.dlq.*", "a.dlq", false), ("*.dlq.*", ".dlq.", true),
        ("dlq-*", "dlq-orders", true), ("dlq-*", "orders-dlq", false), ("a*b*c", "axxbyyc", true),
        ("a*b*c", "axxbyy", false), ("exact", "exact", true), ("exact", "exactly", false), ("*", "", true),
        ("**", "x", true), ("*.dlq?", "a.dlq1", true), ("*.dlq?", "a.dlq", false), ("?.dlq", "ab.dlq", false),
    ])
    func matches(_ pattern: String, _ topic: String, _ expected: Bool) {
        var text = topic
        let compiled = TopicGlobMatcher(pattern)
        #expect(text.withUTF8 { compiled.matches($0) } == expected)
        #expect(text.withUTF8 { globMatches(Array(pattern.utf8), $0) } == expected)
    }
}
