import Foundation
import Testing

@testable import FlowmeterCore

@Suite struct AnalysisEngineTests {
    static let m = Dapr.minute

    static func engine(
        flows: [FlowDefinition] = [],
        deadLetterTopics: [DeadLetterTopic] = [],
        configure: (inout AnalyzerLimits) -> Void = { _ in }
    ) -> AnalysisEngine {
        var limits = AnalyzerLimits()
        configure(&limits)
        return AnalysisEngine(
            analyzers: AnalyzerSet(
                topics: [.name("a"), .name("b")],
                deadLetterTopics: deadLetterTopics,
                flows: flows,
                limits: limits
            )
        )
    }

    // MARK: Events

    @Test func windowStartFloorsToTheMinute() {
        #expect(windowStart(ofEventTimeMs: Self.m) == Self.m)
        #expect(windowStart(ofEventTimeMs: Self.m + 59_999) == Self.m)
        #expect(windowStart(ofEventTimeMs: Self.m + 60_000) == Self.m + 60_000)
        #expect(windowStart(ofEventTimeMs: 0) == 0)
        #expect(windowStart(ofEventTimeMs: -1) == -60_000)
        #expect(windowStart(ofEventTimeMs: -60_000) == -60_000)
    }

    @Test func countsEventsAndBytesPerWindowAndType() {
        let m = Self.m
        let records: [TestRecord] = [
            Dapr.event(topic: "a", id: "1", type: "x", at: m + 1_000),
            Dapr.event(topic: "a", id: "2", type: "x", at: m + 59_999),
            Dapr.event(topic: "a", id: "3", type: "y", at: m + 60_000),
            Dapr.event(topic: "a", id: "4", type: "x", at: m + 61_000),
            Dapr.event(topic: "a", id: "5", type: "y", at: m + 125_000),
            Dapr.event(topic: "b", id: "6", type: "x", at: m + 125_001),
            TestRecord(topic: "a", timestampMs: m + 130_000, value: nil),
            TestRecord(topic: "a", timestampMs: m + 10, value: Array("{not json".utf8)),
            TestRecord(topic: "a", timestampMs: m + 20, value: Array("[1,2]".utf8)),
        ]
        var engine = Self.engine()
        engine.feed(records)
        let delta = engine.takeRollupDelta()
        func size(_ index: Int) -> Int64 { Int64(records[index].value?.count ?? 0) }
        let expected: [EventKey: EventCounts] = [
            EventKey(windowStartMs: m, topic: "a", type: "x"): EventCounts(events: 2, bytes: size(0) + size(1)),
            EventKey(windowStartMs: m, topic: "a", type: "malformed"): EventCounts(events: 1, bytes: 9),
            EventKey(windowStartMs: m, topic: "a", type: "raw"): EventCounts(events: 1, bytes: 5),
            EventKey(windowStartMs: m + 60_000, topic: "a", type: "y"): EventCounts(events: 1, bytes: size(2)),
            EventKey(windowStartMs: m + 60_000, topic: "a", type: "x"): EventCounts(events: 1, bytes: size(3)),
            EventKey(windowStartMs: m + 120_000, topic: "a", type: "y"): EventCounts(events: 1, bytes: size(4)),
            EventKey(windowStartMs: m + 120_000, topic: "b", type: "x"): EventCounts(events: 1, bytes: size(5)),
            EventKey(windowStartMs: m + 120_000, topic: "a", type: "tombstone"): EventCounts(events: 1, bytes: 0),
        ]
        #expect(delta.events == expected)
        #expect(
            delta.invalid == [
                InvalidKey(windowStartMs: m, topic: "a", reason: .malformedJSON): 1,
                InvalidKey(windowStartMs: m, topic: "a", reason: .nonObjectJSON): 1,
            ]
        )
        #expect(engine.recordsProcessed == 9)
        let metrics = Exposition(engine.exposition)
        #expect(metrics["flowmeter_events_total{topic=\"a\",type=\"x\"}"] == 3)
        #expect(metrics["flowmeter_events_total{topic=\"a\",type=\"y\"}"] == 2)
        #expect(metrics["flowmeter_events_total{topic=\"a\",type=\"tombstone\"}"] == 1)
        #expect(metrics["flowmeter_records_consumed_total{topic=\"a\"}"] == 8)
        #expect(metrics["flowmeter_records_consumed_total{topic=\"b\"}"] == 1)
    }

    @Test func eventTimeFallsBackToCloudEventTimeThenReceiveTime() {
        var engine = Self.engine()
        // CE time 2023-11-14T22:13:00Z == Dapr.minute; the record timestamp is unusable.
        var noTimestamp = Dapr.event(topic: "a", id: "1", type: "x", at: -1)
        noTimestamp.timestampType = .unknown
        noTimestamp.receivedAtMs = Self.m + 600_000
        engine.feed(noTimestamp)
        engine.feed(
            TestRecord(
                topic: "a",
                timestampMs: 0,
                timestampType: .createTime,
                value: Array("raw".utf8),
                receivedAtMs: Self.m + 300_000
            )
        )
        let delta = engine.takeRollupDelta()
        #expect(delta.events[EventKey(windowStartMs: Self.m, topic: "a", type: "x")]?.events == 1)
        #expect(delta.events[EventKey(windowStartMs: Self.m + 300_000, topic: "a", type: "malformed")]?.events == 1)
        // No valid record timestamp: no delivery observation.
        #expect(Exposition(engine.exposition).total("flowmeter_event_delivery_seconds_count") == 0)
    }

    struct ClassCase: Sendable, CustomStringConvertible {
        var name: String
        var value: [UInt8]?
        var headers: [RecordHeader] = []
        var type: String
        var reason: InvalidReason?
        var description: String { name }
    }

    static let classCases: [ClassCase] = [
        ClassCase(name: "tombstone", value: nil, type: "tombstone", reason: nil),
        ClassCase(name: "malformed", value: Array("{\"id\":".utf8), type: "malformed", reason: .malformedJSON),
        ClassCase(
            name: "raw non-JSON",
            value: Array("hello".utf8),
            headers: [RecordHeader(name: "rawPayload", string: "true")],
            type: "raw",
            reason: .rawNonJSON
        ),
        ClassCase(name: "non-object", value: Array("42".utf8), type: "raw", reason: .nonObjectJSON),
        ClassCase(
            name: "object without specversion",
            value: Array("{\"a\":1}".utf8),
            type: "raw",
            reason: .missingSpecversion
        ),
        ClassCase(
            name: "CloudEvent without type",
            value: Array("{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"s\"}".utf8),
            type: "unknown",
            reason: .missingType
        ),
        ClassCase(
            name: "CloudEvent without id",
            value: Array("{\"specversion\":\"1.0\",\"type\":\"t\",\"source\":\"s\"}".utf8),
            type: "t",
            reason: .missingID
        ),
        ClassCase(
            name: "unsupported specversion",
            value: Array("{\"specversion\":\"0.3\",\"id\":\"1\",\"type\":\"t\",\"source\":\"s\"}".utf8),
            type: "t",
            reason: .unsupportedSpecversion
        ),
        ClassCase(name: "valid", value: Dapr.cloudEvent(id: "1", type: "t", topic: "a"), type: "t", reason: nil),
    ]

    @Test(arguments: classCases)
    func classifiesTypeLabelAndInvalidReason(_ testCase: ClassCase) {
        var engine = Self.engine()
        engine.feed(TestRecord(topic: "a", timestampMs: Self.m, headers: testCase.headers, value: testCase.value))
        let metrics = Exposition(engine.exposition)
        #expect(metrics["flowmeter_events_total{topic=\"a\",type=\"\(testCase.type)\"}"] == 1)
        #expect(metrics.total("flowmeter_events_total") == 1)
        let delta = engine.takeRollupDelta()
        if let reason = testCase.reason {
            #expect(metrics["flowmeter_events_invalid_total{topic=\"a\",reason=\"\(reason.rawValue)\"}"] == 1)
            #expect(delta.invalid == [InvalidKey(windowStartMs: Self.m, topic: "a", reason: reason): 1])
        } else {
            #expect(metrics.total("flowmeter_events_invalid_total") == 0)
            #expect(delta.invalid.isEmpty)
        }
    }

    @Test func everyRecordCountsExactlyOnce() {
        var engine = Self.engine(flows: [FlowDefinition(name: "f", from: "a", to: "b")])
        var generator = SeededGenerator(state: 7)
        var expectedPerTopic: [String: Int] = [:]
        for index in 0..<500 {
            let topic = ["a", "b", "a.dlq.sub", "c"][Int.random(in: 0..<4, using: &generator)]
            let at = Self.m + Int64(index) * 700
            let record: TestRecord
            switch Int.random(in: 0..<6, using: &generator) {
            case 0: record = TestRecord(topic: topic, timestampMs: at, value: nil)
            case 1: record = TestRecord(topic: topic, timestampMs: at, value: Array("{oops".utf8))
            case 2: record = TestRecord(topic: topic, timestampMs: at, value: Array("[]".utf8))
            case 3:
                // Redelivery of a small set of ids.
                record = Dapr.event(topic: topic, id: "dup-\(index % 5)", at: at, trace: index % 5)
            default:
                let original = Dapr.event(topic: "a", id: "e\(index)", type: "t\(index % 3)", at: at, trace: index)
                record =
                    topic.hasSuffix(".dlq.sub") ? Dapr.deadLetterCopy(of: original, on: topic, at: at + 3) : original
            }
            expectedPerTopic[record.topic, default: 0] += 1
            engine.feed(record)
        }
        let metrics = Exposition(engine.exposition)
        #expect(metrics.total("flowmeter_events_total") == 500)
        #expect(engine.recordsProcessed == 500)
        for (topic, count) in expectedPerTopic {
            #expect(metrics.total("flowmeter_events_total") { $0.contains("topic=\"\(topic)\"") } == Double(count))
            #expect(metrics["flowmeter_records_consumed_total{topic=\"\(topic)\"}"] == Double(count))
        }
        let delta = engine.takeRollupDelta()
        #expect(delta.events.values.reduce(0) { $0 + $1.events } == 500)
    }

    @Test func countsDecoderFlags() {
        var engine = Self.engine()
        let value = Dapr.cloudEvent(id: "1", type: "t", topic: "elsewhere")
        let headers = [RecordHeader(name: "h", string: "1"), RecordHeader(name: "h", string: "2")]
        engine.feed(TestRecord(topic: "a", timestampMs: Self.m, headers: headers, value: value))
        engine.feed(TestRecord(topic: "a", timestampMs: Self.m, value: value))
        let metrics = Exposition(engine.exposition)
        #expect(metrics["flowmeter_event_flags_total{topic=\"a\",flag=\"topic_mismatch\"}"] == 2)
        #expect(metrics["flowmeter_event_flags_total{topic=\"a\",flag=\"duplicate_header\"}"] == 1)
    }

    @Test func deliveryDelayIsReceiveTimeMinusRecordTimestamp() {
        var engine = Self.engine()
        for (offset, delay) in [(0, 3), (1, 700), (2, -50), (3, 45_000)] as [(Int64, Int64)] {
            var record = Dapr.event(topic: "a", id: "\(offset)", at: Self.m + offset)
            record.receivedAtMs = Self.m + offset + delay
            engine.feed(record)
        }
        let metrics = Exposition(engine.exposition)
        let name = "flowmeter_event_delivery_seconds"
        #expect(metrics["\(name)_bucket{topic=\"a\",le=\"0.001\"}"] == 1)  // -50 clamps to 0
        #expect(metrics["\(name)_bucket{topic=\"a\",le=\"0.005\"}"] == 2)
        #expect(metrics["\(name)_bucket{topic=\"a\",le=\"1\"}"] == 3)
        #expect(metrics["\(name)_bucket{topic=\"a\",le=\"30\"}"] == 3)
        #expect(metrics["\(name)_bucket{topic=\"a\",le=\"60\"}"] == 4)
        #expect(metrics["\(name)_count{topic=\"a\"}"] == 4)
        #expect(metrics["\(name)_sum{topic=\"a\"}"] == 45.703)
    }

    // MARK: Cardinality

    @Test func typesOverTheLimitCountAsOther() {
        var engine = Self.engine { $0.maxTypesPerTopic = 2 }
        let types = ["t1", "t2", "t3", "t1", "t4", String(repeating: "x", count: 201), "bad\u{01}type"]
        for (index, type) in types.enumerated() {
            engine.feed(Dapr.event(topic: "a", id: "\(index)", type: type, at: Self.m))
        }
        // Fixed labels are outside the limit.
        engine.feed(TestRecord(topic: "a", timestampMs: Self.m, value: nil))
        let metrics = Exposition(engine.exposition)
        #expect(metrics["flowmeter_events_total{topic=\"a\",type=\"t1\"}"] == 2)
        #expect(metrics["flowmeter_events_total{topic=\"a\",type=\"t2\"}"] == 1)
        #expect(metrics["flowmeter_events_total{topic=\"a\",type=\"other\"}"] == 4)
        #expect(metrics["flowmeter_events_total{topic=\"a\",type=\"tombstone\"}"] == 1)
        #expect(metrics.total("flowmeter_events_total") == 8)
        let delta = engine.takeRollupDelta()
        #expect(Set(delta.events.keys.map(\.type)) == ["t1", "t2", "other", "tombstone"])
        // Long or control-character types never become labels, even under the limit.
        var roomy = Self.engine()
        roomy.feed(Dapr.event(topic: "a", id: "1", type: String(repeating: "y", count: 201), at: Self.m))
        roomy.feed(Dapr.event(topic: "a", id: "2", type: "ok\u{7F}", at: Self.m))
        roomy.feed(Dapr.event(topic: "a", id: "3", type: String(repeating: "z", count: 200), at: Self.m))
        let roomyMetrics = Exposition(roomy.exposition)
        #expect(roomyMetrics["flowmeter_events_total{topic=\"a\",type=\"other\"}"] == 2)
        #expect(roomyMetrics["flowmeter_events_total{topic=\"a\",type=\"\(String(repeating: "z", count: 200))\"}"] == 1)
    }

    // MARK: Duplicates

    @Test func duplicatesAreCountedAndNotDoubleMatched() {
        var engine = Self.engine(flows: [FlowDefinition(name: "f", from: "a", to: "b")])
        let request = Dapr.event(topic: "a", id: "r1", at: Self.m, trace: 1)
        engine.feed(request)
        var redelivered = request
        redelivered.timestampMs = Self.m + 10
        engine.feed(redelivered)
        #expect(engine.pendingFlowRequests == 1)
        engine.feed(Dapr.event(topic: "b", id: "s1", at: Self.m + 100, trace: 1))
        engine.feed(Dapr.event(topic: "b", id: "s2", at: Self.m + 200, trace: 1))
        let metrics = Exposition(engine.exposition)
        #expect(metrics["flowmeter_events_duplicate_total{topic=\"a\"}"] == 1)
        #expect(metrics["flowmeter_events_total{topic=\"a\",type=\"com.learnflow.test\"}"] == 2)
        #expect(metrics["flowmeter_flow_latency_seconds_count{flow=\"f\"}"] == 1)
        #expect(metrics["flowmeter_flow_latency_seconds_sum{flow=\"f\"}"] == 0.1)
        #expect(engine.unmatchedResponses == 1)
        let flows = engine.takeRollupDelta().flows
        #expect(flows[FlowKey(windowStartMs: Self.m, flow: "f")]?.completed == 1)
    }

    /// Ids over 15 bytes reach the engine as bytes, not strings (see `AnalysisEngine.process`): duplicates and
    /// the distinct originals of dead letters are still told apart by the whole id.
    @Test func longIDsCountDuplicatesAndDeadLetterOriginals() throws {
        var engine = Self.engine()
        let first = "3f2c9a1e-0b7d-4c55-a9e1-6d2f0c8b7e41"
        let second = "3f2c9a1e-0b7d-4c55-a9e1-6d2f0c8b7e42"  // the last byte differs
        for id in [first, second, first] { engine.feed(Dapr.event(topic: "a", id: id, at: Self.m)) }
        // Headerless copies on a DLQ topic: the original is known by its id only.
        for id in [first, first, second] {
            engine.feed(Dapr.headerlessDeadLetter(id: id, from: "b", on: "b.dlq.sub", at: Self.m + 2_000))
        }
        let delta = engine.takeRollupDelta()
        let counts = try #require(
            delta.deadLetters[DeadLetterKey(windowStartMs: Self.m, topic: "b", deadLetterTopic: "b.dlq.sub")]
        )
        #expect(counts.copies == 3)
        #expect(counts.distinctOriginals == 2)
        let metrics = Exposition(engine.exposition)
        #expect(metrics["flowmeter_events_duplicate_total{topic=\"a\"}"] == 1)
        #expect(metrics["flowmeter_events_duplicate_total{topic=\"b.dlq.sub\"}"] == 1)
    }

    @Test func duplicateWindowIsBounded() {
        var engine = Self.engine { $0.duplicateWindow = 2 }
        for id in ["1", "2", "3", "1", "3"] { engine.feed(Dapr.event(topic: "a", id: id, at: Self.m)) }
        // "1" was forgotten when "3" arrived; "3" is still remembered.
        #expect(Exposition(engine.exposition)["flowmeter_events_duplicate_total{topic=\"a\"}"] == 1)
    }

    // MARK: Flows

    @Test func flowLatencyCountsAndHistogram() throws {
        var engine = Self.engine(flows: [FlowDefinition(name: "grading", from: "a", to: "b")])
        let latencies: [Int64] = [0, 4, 120, 480, 501, 2_600, 59_000]
        for (index, _) in latencies.enumerated() {
            engine.feed(Dapr.event(topic: "a", id: "q\(index)", at: Self.m + Int64(index), trace: index + 1))
        }
        #expect(engine.pendingFlowRequests == latencies.count)
        for (index, latency) in latencies.enumerated() {
            engine.feed(
                Dapr.event(topic: "b", id: "s\(index)", at: Self.m + Int64(index) + latency, trace: index + 1)
            )
        }
        #expect(engine.pendingFlowRequests == 0)
        let metrics = Exposition(engine.exposition)
        let name = "flowmeter_flow_latency_seconds"
        let expectedBuckets: [(String, Double)] = [
            ("0.001", 1), ("0.0025", 1), ("0.005", 2), ("0.01", 2), ("0.1", 2), ("0.25", 3), ("0.5", 4),
            ("1", 5), ("2.5", 5), ("5", 6), ("30", 6), ("60", 7), ("600", 7), ("+Inf", 7),
        ]
        for (le, count) in expectedBuckets {
            #expect(metrics["\(name)_bucket{flow=\"grading\",le=\"\(le)\"}"] == count, "le=\(le)")
        }
        #expect(metrics["\(name)_count{flow=\"grading\"}"] == 7)
        #expect(metrics["\(name)_sum{flow=\"grading\"}"] == 62.705)
        let counts = try #require(engine.takeRollupDelta().flows[FlowKey(windowStartMs: Self.m, flow: "grading")])
        #expect(counts.completed == 7)
        #expect(counts.incomplete == 0 && counts.negative == 0 && counts.evicted == 0)
        #expect(counts.latency.count == 7)
        #expect(counts.latency.max == 59_000)
        #expect(counts.latency.quantile(0.5) == LatencySketchProbe.reported(480))
    }

    @Test(arguments: [1, 2, 3, 4, 5] as [UInt64])
    func flowLatencyQuantilesAreWithinOnePercentOfExactValues(seed: UInt64) throws {
        var generator = SeededGenerator(state: seed)
        let count = 2_000
        var engine = Self.engine(
            flows: [FlowDefinition(name: "f", from: "a", to: "b", timeout: .seconds(7_200))]
        )
        var latencies: [Int64] = []
        var responses: [TestRecord] = []
        for index in 0..<count {
            let start = Self.m + Int64(index) * 20
            // Log-uniform over 1 ms … 1 h.
            let latency = Int64(pow(10, Double.random(in: 0...log10(3_600_000), using: &generator)).rounded())
            latencies.append(latency)
            engine.feed(Dapr.event(topic: "a", id: "q\(index)", at: start, trace: index + 1))
            responses.append(Dapr.event(topic: "b", id: "s\(index)", at: start + latency, trace: index + 1))
        }
        responses.shuffle(using: &generator)
        engine.feed(responses)
        let delta = engine.takeRollupDelta()
        #expect(delta.flows.count == 1)
        let counts = try #require(delta.flows[FlowKey(windowStartMs: Self.m, flow: "f")])
        #expect(counts.completed == Int64(count))
        #expect(counts.incomplete == 0 && counts.negative == 0)
        let sorted = latencies.sorted().map(Double.init)
        for q in [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0] {
            let exact = sorted[Int((q * Double(count - 1)).rounded(.down))]
            let estimate = try #require(counts.latency.quantile(q))
            #expect(abs(estimate - exact) <= exact * 0.01 + 1e-9, "seed=\(seed) q=\(q) exact=\(exact) got \(estimate)")
        }
        // The histogram saw the same values.
        let metrics = Exposition(engine.exposition)
        #expect(metrics["flowmeter_flow_latency_seconds_count{flow=\"f\"}"] == Double(count))
        let withinHalfSecond = latencies.filter { $0 <= 500 }.count
        #expect(metrics["flowmeter_flow_latency_seconds_bucket{flow=\"f\",le=\"0.5\"}"] == Double(withinHalfSecond))
    }

    @Test func requestsTimeOutByTheEventTimeClock() {
        var engine = Self.engine(flows: [FlowDefinition(name: "f", from: "a", to: "b", timeout: .seconds(10))])
        engine.feed(Dapr.event(topic: "a", id: "q1", at: Self.m + 1_000, trace: 1))
        engine.feed(Dapr.event(topic: "a", id: "q2", at: Self.m + 5_000, trace: 2))
        // Any record moves the clock: 10.999 s after q1 it is still pending.
        engine.feed(Dapr.event(topic: "c", id: "x", at: Self.m + 10_999))
        #expect(engine.pendingFlowRequests == 2)
        engine.feed(Dapr.event(topic: "c", id: "y", at: Self.m + 11_000))
        #expect(engine.pendingFlowRequests == 1)
        // A response at the timeout is too late: its request already counted as incomplete.
        engine.feed(Dapr.event(topic: "b", id: "s2", at: Self.m + 15_000, trace: 2))
        #expect(engine.pendingFlowRequests == 0)
        #expect(engine.unmatchedResponses == 1)
        let metrics = Exposition(engine.exposition)
        #expect(metrics["flowmeter_flow_incomplete_total{flow=\"f\"}"] == 2)
        #expect(metrics["flowmeter_flow_latency_seconds_count{flow=\"f\"}"] == 0)
        #expect(
            engine.takeRollupDelta().flows == [FlowKey(windowStartMs: Self.m, flow: "f"): FlowCounts(incomplete: 2)]
        )
    }

    @Test func requestsTimeOutByAdvance() {
        var engine = Self.engine(flows: [FlowDefinition(name: "f", from: "a", to: "b", timeout: .seconds(30))])
        engine.feed(Dapr.event(topic: "a", id: "q1", at: Self.m + 1_000, trace: 1))
        engine.advance(nowMs: Self.m + 30_999)
        #expect(engine.pendingFlowRequests == 1)
        engine.advance(nowMs: Self.m)  // never backwards
        #expect(engine.flowClockMs == Self.m + 30_999)
        engine.advance(nowMs: Self.m + 31_000)
        #expect(engine.pendingFlowRequests == 0)
        #expect(Exposition(engine.exposition)["flowmeter_flow_incomplete_total{flow=\"f\"}"] == 1)
    }

    @Test func outOfOrderRequestsExpireOnTime() {
        var engine = Self.engine(flows: [FlowDefinition(name: "f", from: "a", to: "b", timeout: .seconds(10))])
        engine.feed(Dapr.event(topic: "a", id: "late", at: Self.m + 50_000, trace: 1))
        engine.feed(Dapr.event(topic: "a", id: "early", at: Self.m + 45_000, trace: 2))
        engine.advance(nowMs: Self.m + 55_000)
        #expect(engine.pendingFlowRequests == 1)
        engine.advance(nowMs: Self.m + 60_000)
        #expect(engine.pendingFlowRequests == 0)
    }

    @Test func oldestRequestsAreEvictedBeyondTheBound() {
        var engine = Self.engine(flows: [FlowDefinition(name: "f", from: "a", to: "b")]) {
            $0.maxPendingFlowRequests = 2
        }
        for index in 1...3 {
            engine.feed(Dapr.event(topic: "a", id: "q\(index)", at: Self.m + Int64(index), trace: index))
        }
        #expect(engine.pendingFlowRequests == 2)
        engine.feed(Dapr.event(topic: "b", id: "s1", at: Self.m + 100, trace: 1))
        engine.feed(Dapr.event(topic: "b", id: "s3", at: Self.m + 100, trace: 3))
        #expect(engine.unmatchedResponses == 1)
        #expect(engine.pendingFlowRequests == 1)
        let metrics = Exposition(engine.exposition)
        #expect(metrics["flowmeter_flow_evicted_total{flow=\"f\"}"] == 1)
        #expect(metrics["flowmeter_flow_latency_seconds_count{flow=\"f\"}"] == 1)
        let counts = engine.takeRollupDelta().flows[FlowKey(windowStartMs: Self.m, flow: "f")]
        #expect(counts?.evicted == 1)
        #expect(counts?.completed == 1)
    }

    @Test func negativeLatencyIsCountedAndExcluded() {
        var engine = Self.engine(flows: [FlowDefinition(name: "f", from: "a", to: "b")])
        engine.feed(Dapr.event(topic: "a", id: "q1", at: Self.m + 5_000, trace: 1))
        engine.feed(Dapr.event(topic: "b", id: "s1", at: Self.m + 4_990, trace: 1))
        #expect(engine.pendingFlowRequests == 0)
        let metrics = Exposition(engine.exposition)
        #expect(metrics["flowmeter_flow_negative_latency_total{flow=\"f\"}"] == 1)
        #expect(metrics["flowmeter_flow_latency_seconds_count{flow=\"f\"}"] == 0)
        let counts = engine.takeRollupDelta().flows[FlowKey(windowStartMs: Self.m, flow: "f")]
        #expect(counts == FlowCounts(negative: 1))
    }

    static let correlations: [Correlation] = [.dataPath(["submission", "id"]), .header("correlationId")]

    @Test(arguments: correlations)
    func correlatesByDataPathOrHeader(_ correlation: Correlation) {
        var engine = Self.engine(flows: [FlowDefinition(name: "f", from: "a", to: "b", correlation: correlation)])
        func record(topic: String, id: String, at: Int64, key: String) -> TestRecord {
            // Different traces on purpose: only the configured key may match.
            Dapr.event(
                topic: topic,
                id: id,
                at: at,
                trace: Int(at % 1000) + 1,
                data: "{\"submission\":{\"id\":\"\(key)\"}}",
                headers: [
                    RecordHeader(name: "correlationId", string: "other"),
                    RecordHeader(name: "correlationId", string: key),
                ]
            )
        }
        engine.feed(record(topic: "a", id: "q1", at: Self.m + 1, key: "k1"))
        engine.feed(record(topic: "a", id: "q2", at: Self.m + 2, key: "k2"))
        engine.feed(record(topic: "a", id: "q3", at: Self.m + 3, key: "k1"))
        // The oldest request with the key is completed first.
        engine.feed(record(topic: "b", id: "s1", at: Self.m + 101, key: "k1"))
        engine.feed(record(topic: "b", id: "s2", at: Self.m + 302, key: "k2"))
        engine.feed(record(topic: "b", id: "s3", at: Self.m + 403, key: "k9"))
        #expect(engine.pendingFlowRequests == 1)
        #expect(engine.unmatchedResponses == 1)
        let metrics = Exposition(engine.exposition)
        #expect(metrics["flowmeter_flow_latency_seconds_count{flow=\"f\"}"] == 2)
        #expect(metrics["flowmeter_flow_latency_seconds_sum{flow=\"f\"}"] == 0.4)
    }

    @Test func rawRecordsCorrelateByHeaderTraceparent() {
        var engine = Self.engine(flows: [FlowDefinition(name: "f", from: "a", to: "b")])
        let headers = [RecordHeader(name: "traceparent", string: Dapr.traceparent(9))]
        engine.feed(TestRecord(topic: "a", timestampMs: Self.m, headers: headers, value: Array("{\"x\":1}".utf8)))
        engine.feed(TestRecord(topic: "b", timestampMs: Self.m + 42, headers: headers, value: Array("{\"y\":1}".utf8)))
        #expect(Exposition(engine.exposition)["flowmeter_flow_latency_seconds_sum{flow=\"f\"}"] == 0.042)
    }

    @Test func twoFlowsShareAFromTopic() {
        var engine = Self.engine(flows: [
            FlowDefinition(name: "to-b", from: "a", to: "b"),
            FlowDefinition(name: "to-c", from: "a", to: "c", fromType: "wanted"),
        ])
        engine.feed(Dapr.event(topic: "a", id: "q1", type: "wanted", at: Self.m, trace: 1))
        engine.feed(Dapr.event(topic: "a", id: "q2", type: "ignored", at: Self.m, trace: 2))
        #expect(engine.pendingFlowRequests == 3)
        engine.feed(Dapr.event(topic: "b", id: "s1", at: Self.m + 100, trace: 1))
        engine.feed(Dapr.event(topic: "c", id: "s2", at: Self.m + 300, trace: 1))
        engine.feed(Dapr.event(topic: "c", id: "s3", at: Self.m + 300, trace: 2))
        #expect(engine.pendingFlowRequests == 1)
        let metrics = Exposition(engine.exposition)
        #expect(metrics["flowmeter_flow_latency_seconds_sum{flow=\"to-b\"}"] == 0.1)
        #expect(metrics["flowmeter_flow_latency_seconds_sum{flow=\"to-c\"}"] == 0.3)
        #expect(metrics["flowmeter_flow_latency_seconds_count{flow=\"to-c\"}"] == 1)
    }

    @Test func deadLetterCopiesAreNeitherRequestsNorResponses() {
        var engine = Self.engine(flows: [FlowDefinition(name: "f", from: "a", to: "b")])
        let request = Dapr.event(topic: "a", id: "q1", at: Self.m, trace: 1)
        // A copy on the request topic itself: the __topic and __offset headers make it a DLQ record.
        engine.feed(Dapr.deadLetterCopy(of: request, on: "a", at: Self.m + 5))
        #expect(engine.pendingFlowRequests == 0)
        #expect(
            Exposition(engine.exposition)["flowmeter_deadletter_events_total{topic=\"a\",dead_letter_topic=\"a\"}"] == 1
        )
    }

    // MARK: Dead letters

    @Test func deadLettersLinkToTheListedSourceAndOriginalWindow() throws {
        var engine = Self.engine(deadLetterTopics: [
            DeadLetterTopic(topic: "grades.failed.progress", sourceTopic: "a", subscriber: "progress-agent"),
            DeadLetterTopic(topic: "grades.failed.course", sourceTopic: "a", subscriber: "course-agent"),
        ])
        var originals: [TestRecord] = []
        for index in 0..<4 {
            var original = Dapr.event(
                topic: "a",
                id: "o\(index)",
                at: Self.m + 50_000 + Int64(index),
                offset: Int64(index)
            )
            original.partition = 1
            originals.append(original)
        }
        engine.feed(originals)
        // Both subscribers dead-letter original 0, in the next minute; without the __topic header, the listed
        // source names the topic.
        let first = Dapr.deadLetterCopy(
            of: originals[0],
            on: "grades.failed.progress",
            at: Self.m + 62_000,
            withOriginTopicHeader: false
        )
        let second = Dapr.deadLetterCopy(
            of: originals[0],
            on: "grades.failed.course",
            at: Self.m + 70_000,
            withOriginTopicHeader: false
        )
        engine.feed([first, second])
        let delta = engine.takeRollupDelta()
        let progress = try #require(
            delta.deadLetters[
                DeadLetterKey(windowStartMs: Self.m, topic: "a", deadLetterTopic: "grades.failed.progress")
            ]
        )
        let course = try #require(
            delta.deadLetters[DeadLetterKey(windowStartMs: Self.m, topic: "a", deadLetterTopic: "grades.failed.course")]
        )
        #expect(delta.deadLetters.count == 2)
        #expect(progress.copies + course.copies == 2)
        #expect(progress.distinctOriginals + course.distinctOriginals == 1)
        #expect(progress.delay.max == 12_000)
        #expect(course.delay.max == 20_000)
        // Ratio of the original window: distinct originals ÷ events of topic "a" in that window = 1/4.
        let events = delta.events.filter { $0.key.topic == "a" && $0.key.windowStartMs == Self.m }.values
            .reduce(0) { $0 + $1.events }
        #expect(Double(progress.distinctOriginals + course.distinctOriginals) / Double(events) == 0.25)
        // The copies count under their DLQ topic in events_total, and as dead letters of "a".
        let metrics = Exposition(engine.exposition)
        #expect(metrics["flowmeter_events_total{topic=\"grades.failed.course\",type=\"com.learnflow.test\"}"] == 1)
        #expect(
            metrics["flowmeter_deadletter_events_total{topic=\"a\",dead_letter_topic=\"grades.failed.course\"}"] == 1
        )
        #expect(
            metrics["flowmeter_deadletter_events_total{topic=\"a\",dead_letter_topic=\"grades.failed.progress\"}"] == 1
        )
        #expect(metrics["flowmeter_deadletter_delay_seconds_sum{topic=\"a\"}"] == 32)
        #expect(metrics["flowmeter_deadletter_delay_seconds_bucket{topic=\"a\",le=\"10\"}"] == 0)
        #expect(metrics["flowmeter_deadletter_delay_seconds_bucket{topic=\"a\",le=\"30\"}"] == 2)
        // DLQ copies carry the original id by design: not duplicates of anything.
        #expect(metrics.total("flowmeter_events_duplicate_total") == 0)
    }

    @Test func deadLetterSourceFromTheTopicHeader() throws {
        var engine = Self.engine()
        let original = Dapr.event(topic: "b", id: "o1", at: Self.m + 1_000, offset: 77)
        engine.feed(Dapr.deadLetterCopy(of: original, on: "b.dlq.sub", at: Self.m + 181_000))
        // Redelivered copy of the same original into the same DLQ topic: a copy, not a new original.
        engine.feed(Dapr.deadLetterCopy(of: original, on: "b.dlq.sub", at: Self.m + 182_000))
        // No headers at all and not listed: the CloudEvent topic attribute names the source.
        engine.feed(Dapr.headerlessDeadLetter(id: "o2", from: "b", on: "b.dlq.sub", at: Self.m + 183_000))
        let delta = engine.takeRollupDelta()
        let counts = try #require(
            delta.deadLetters[DeadLetterKey(windowStartMs: Self.m, topic: "b", deadLetterTopic: "b.dlq.sub")]
        )
        // Two copies of o1 (one original) plus the headerless o2, whose window comes from its CloudEvent time
        // (Dapr.minute) and which has no delay.
        #expect(counts.copies == 3)
        #expect(counts.distinctOriginals == 2)
        #expect(counts.delay.count == 2)
        // Delays 180 s and 181 s.
        let fastest = try #require(counts.delay.quantile(0))
        #expect(abs(fastest - 180_000) <= 1_800)
        #expect(counts.delay.max == 181_000)
        #expect(delta.deadLetters.count == 1)
        #expect(
            delta.events[EventKey(windowStartMs: Self.m + 180_000, topic: "b.dlq.sub", type: "com.learnflow.test")]?
                .events == 2
        )
        let metrics = Exposition(engine.exposition)
        #expect(metrics["flowmeter_deadletter_events_total{topic=\"b\",dead_letter_topic=\"b.dlq.sub\"}"] == 3)
        #expect(metrics["flowmeter_deadletter_delay_seconds_count{topic=\"b\"}"] == 2)
        #expect(metrics["flowmeter_events_duplicate_total{topic=\"b.dlq.sub\"}"] == 1)
    }

    @Test func emptyTopicHeaderFallsBackToTheCloudEventTopic() {
        var engine = Self.engine()
        var copy = Dapr.deadLetterCopy(of: Dapr.event(topic: "b", id: "o1", at: Self.m), on: "b.dlq.x", at: Self.m + 9)
        copy.headers = copy.headers.map { $0.name == "__topic" ? RecordHeader(name: "__topic", string: "") : $0 }
        engine.feed(copy)
        let metrics = Exposition(engine.exposition)
        #expect(metrics["flowmeter_deadletter_events_total{topic=\"b\",dead_letter_topic=\"b.dlq.x\"}"] == 1)
    }

    @Test func originalTopicsPerDeadLetterTopicAreCapped() {
        var engine = Self.engine { $0.maxDeadLetterTopicsPerTopic = 2 }
        for (index, origin) in ["a", "b", "c", "d"].enumerated() {
            let original = Dapr.event(topic: origin, id: "o\(index)", at: Self.m, offset: Int64(index))
            engine.feed(Dapr.deadLetterCopy(of: original, on: "shared.dlq", at: Self.m + 1))
        }
        let metrics = Exposition(engine.exposition)
        #expect(metrics["flowmeter_deadletter_events_total{topic=\"a\",dead_letter_topic=\"shared.dlq\"}"] == 1)
        #expect(metrics["flowmeter_deadletter_events_total{topic=\"b\",dead_letter_topic=\"shared.dlq\"}"] == 1)
        #expect(metrics["flowmeter_deadletter_events_total{topic=\"other\",dead_letter_topic=\"shared.dlq\"}"] == 2)
        let delta = engine.takeRollupDelta()
        let other = delta.deadLetters[
            DeadLetterKey(windowStartMs: Self.m, topic: "other", deadLetterTopic: "shared.dlq")
        ]
        #expect(other?.copies == 2)
        #expect(other?.distinctOriginals == 2)
    }

    @Test func deadLetterTopicLabelsAreCappedPerTopic() {
        var engine = Self.engine { $0.maxDeadLetterTopicsPerTopic = 1 }
        let original = Dapr.event(topic: "a", id: "o1", at: Self.m)
        engine.feed(Dapr.deadLetterCopy(of: original, on: "a.dlq.one", at: Self.m + 1))
        engine.feed(Dapr.deadLetterCopy(of: original, on: "a.dlq.two", at: Self.m + 2))
        engine.feed(Dapr.deadLetterCopy(of: original, on: "a.dlq.three", at: Self.m + 3))
        let metrics = Exposition(engine.exposition)
        #expect(metrics["flowmeter_deadletter_events_total{topic=\"a\",dead_letter_topic=\"a.dlq.one\"}"] == 1)
        #expect(metrics["flowmeter_deadletter_events_total{topic=\"a\",dead_letter_topic=\"other\"}"] == 2)
        let delta = engine.takeRollupDelta()
        #expect(
            delta.deadLetters[DeadLetterKey(windowStartMs: Self.m, topic: "a", deadLetterTopic: "other")]?.copies == 2
        )
    }

    // MARK: Deltas

    @Test func takeRollupDeltaResetsAndMergeIsAdditive() throws {
        let flows = [FlowDefinition(name: "f", from: "a", to: "b")]
        var batches: [[TestRecord]] = [[], []]
        var generator = SeededGenerator(state: 99)
        for index in 0..<300 {
            let at = Self.m + Int64(index) * 900
            let record: TestRecord
            switch index % 4 {
            case 0: record = Dapr.event(topic: "a", id: "q\(index)", at: at, trace: index + 1)
            case 1:
                record = Dapr.event(
                    topic: "b",
                    id: "s\(index)",
                    at: at + Int64.random(in: 0...5_000, using: &generator),
                    trace: index
                )
            case 2:
                record = Dapr.deadLetterCopy(
                    of: Dapr.event(topic: "a", id: "d\(index)", at: at - 500),
                    on: "a.dlq.x",
                    at: at
                )
            default: record = TestRecord(topic: "a", timestampMs: at, value: Array("{x".utf8))
            }
            batches[index < 150 ? 0 : 1].append(record)
        }
        var split = Self.engine(flows: flows)
        split.feed(batches[0])
        var merged = split.takeRollupDelta()
        #expect(!merged.isEmpty)
        #expect(split.takeRollupDelta().isEmpty)
        split.feed(batches[1])
        merged.merge(split.takeRollupDelta())
        split.advance(nowMs: Self.m + 10_000_000)
        merged.merge(split.takeRollupDelta())

        var whole = Self.engine(flows: flows)
        whole.feed(batches[0] + batches[1])
        whole.advance(nowMs: Self.m + 10_000_000)
        let expected = whole.takeRollupDelta()
        #expect(merged.events == expected.events)
        #expect(merged.invalid == expected.invalid)
        #expect(Set(merged.flows.keys) == Set(expected.flows.keys))
        for (key, counts) in expected.flows {
            let other = try #require(merged.flows[key])
            #expect(other.completed == counts.completed && other.incomplete == counts.incomplete)
            #expect(other.latency.counts == counts.latency.counts && other.latency.sum == counts.latency.sum)
        }
        #expect(Set(merged.deadLetters.keys) == Set(expected.deadLetters.keys))
        for (key, counts) in expected.deadLetters {
            let other = try #require(merged.deadLetters[key])
            #expect(other.copies == counts.copies && other.distinctOriginals == counts.distinctOriginals)
            #expect(other.delay.counts == counts.delay.counts && other.delay.zeroCount == counts.delay.zeroCount)
        }
        // Every request resolved once.
        let resolved = expected.flows.values.reduce(0) { $0 + $1.completed + $1.incomplete + $1.negative + $1.evicted }
        #expect(resolved == 75)
    }

    // MARK: Exposition

    static let metricNames: [(String, String)] = [
        ("flowmeter_events_total", "counter"), ("flowmeter_events_invalid_total", "counter"),
        ("flowmeter_event_flags_total", "counter"), ("flowmeter_events_duplicate_total", "counter"),
        ("flowmeter_event_delivery_seconds", "histogram"), ("flowmeter_flow_latency_seconds", "histogram"),
        ("flowmeter_flow_incomplete_total", "counter"), ("flowmeter_flow_evicted_total", "counter"),
        ("flowmeter_flow_negative_latency_total", "counter"), ("flowmeter_deadletter_events_total", "counter"),
        ("flowmeter_deadletter_delay_seconds", "histogram"), ("flowmeter_records_consumed_total", "counter"),
    ]

    @Test func everyMetricHasHelpAndTypeEvenWithoutSeries() {
        let text = Self.engine().exposition
        for (name, type) in Self.metricNames {
            #expect(text.contains("# HELP \(name) "), "\(name)")
            #expect(text.contains("# TYPE \(name) \(type)\n"), "\(name)")
        }
        #expect(Exposition(text).samples.isEmpty)
        // Configured flows have series from the start.
        let withFlow = Exposition(Self.engine(flows: [FlowDefinition(name: "f", from: "a", to: "b")]).exposition)
        #expect(withFlow["flowmeter_flow_incomplete_total{flow=\"f\"}"] == 0)
        #expect(withFlow["flowmeter_flow_latency_seconds_bucket{flow=\"f\",le=\"+Inf\"}"] == 0)
    }

    @Test func histogramBucketsAreCumulativeAndInfEqualsCount() throws {
        var engine = Self.engine()
        var generator = SeededGenerator(state: 3)
        for index in 0..<400 {
            var record = Dapr.event(topic: ["a", "b"][index % 2], id: "\(index)", at: Self.m)
            record.receivedAtMs = Self.m + Int64.random(in: -10...900_000, using: &generator)
            engine.feed(record)
        }
        let metrics = Exposition(engine.exposition)
        for topic in ["a", "b"] {
            var previous = -1.0
            for le in SecondsHistogram.leLabels {
                let value = try #require(
                    metrics["flowmeter_event_delivery_seconds_bucket{topic=\"\(topic)\",le=\"\(le)\"}"]
                )
                #expect(value >= previous)
                previous = value
            }
            #expect(previous == metrics["flowmeter_event_delivery_seconds_count{topic=\"\(topic)\"}"])
            #expect(previous == 200)
        }
    }

    @Test func labelValuesAreEscapedAndSeriesSorted() {
        var engine = Self.engine()
        engine.feed(Dapr.event(topic: "b", id: "1", type: "say \"hi\" \\ now", at: Self.m))
        engine.feed(Dapr.event(topic: "a", id: "2", type: "zeta", at: Self.m))
        engine.feed(Dapr.event(topic: "a", id: "3", type: "alpha", at: Self.m))
        let metrics = Exposition(engine.exposition)
        #expect(metrics["flowmeter_events_total{topic=\"b\",type=\"say \\\"hi\\\" \\\\ now\"}"] == 1)
        let events = metrics.order.filter { $0.hasPrefix("flowmeter_events_total{") }
        #expect(
            events == [
                "flowmeter_events_total{topic=\"a\",type=\"alpha\"}",
                "flowmeter_events_total{topic=\"a\",type=\"zeta\"}",
                "flowmeter_events_total{topic=\"b\",type=\"say \\\"hi\\\" \\\\ now\"}",
            ]
        )
        #expect(escapeLabelValue("a\nb") == "a\\nb")
    }

    @Test func formatsSecondsExactly() {
        #expect(formatSeconds(milliseconds: 0) == "0")
        #expect(formatSeconds(milliseconds: 1) == "0.001")
        #expect(formatSeconds(milliseconds: 1_230) == "1.23")
        #expect(formatSeconds(milliseconds: 62_705) == "62.705")
        #expect(formatSeconds(milliseconds: 5_000) == "5")
    }

    /// Writes a sample exposition with every kind of series for `promtool check metrics`
    /// (`$TMPDIR/flowmeter-engine-sample.prom`).
    @Test func writesASampleExpositionForPromtool() throws {
        var engine = Self.engine(
            flows: [FlowDefinition(name: "grading", from: "a", to: "b", timeout: .seconds(1))],
            deadLetterTopics: [DeadLetterTopic(topic: "a.failed", sourceTopic: "a")]
        )
        let request = Dapr.event(topic: "a", id: "1", type: "q\"uote", at: Self.m, trace: 1)
        engine.feed(request)
        engine.feed(request)
        engine.feed(Dapr.event(topic: "b", id: "2", at: Self.m + 250, trace: 1))
        engine.feed(Dapr.event(topic: "a", id: "3", at: Self.m + 300, trace: 3))
        engine.feed(Dapr.deadLetterCopy(of: request, on: "a.failed", at: Self.m + 4_000))
        engine.feed(TestRecord(topic: "a", timestampMs: Self.m, value: Array("{".utf8)))
        let twice = [RecordHeader(name: "h", string: "1"), RecordHeader(name: "h", string: "2")]
        engine.feed(TestRecord(topic: "b", timestampMs: Self.m, headers: twice, value: nil))
        engine.advance(nowMs: Self.m + 60_000)
        let text = engine.exposition
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("flowmeter-engine-sample.prom")
        try text.write(to: url, atomically: true, encoding: .utf8)
        #expect(text.hasSuffix("\n"))
        #expect(!text.contains("\n\n"))
    }
}

/// What a ``LatencySketch`` reports for a single value.
enum LatencySketchProbe {
    static func reported(_ milliseconds: Double) -> Double? {
        var sketch = LatencySketch()
        sketch.record(milliseconds)
        return sketch.quantile(0.5)
    }
}
