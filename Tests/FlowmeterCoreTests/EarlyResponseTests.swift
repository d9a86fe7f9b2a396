import Testing

@testable import FlowmeterCore

/// Flow correlation independent of the order in which request and response partitions are read: responses analyzed
/// before their request wait as early responses (``AnalysisEngine/pendingEarlyResponses``).
@Suite struct EarlyResponseTests {
    static let m = Dapr.minute

    static let flows = [
        FlowDefinition(name: "grading", from: "a", to: "b", timeout: .seconds(10)),
        FlowDefinition(name: "progress", from: "a", to: "c", timeout: .seconds(30)),
    ]
    static let timeouts: [String: Int64] = ["grading": 10_000, "progress": 30_000]
    static let responseTopics: [String: String] = ["grading": "b", "progress": "c"]

    static func engine(maxPending: Int = 100_000) -> AnalysisEngine {
        var limits = AnalyzerLimits()
        limits.maxPendingFlowRequests = maxPending
        return AnalysisEngine(
            analyzers: AnalyzerSet(topics: [.name("a"), .name("b"), .name("c")], flows: flows, limits: limits)
        )
    }

    // MARK: - Examples

    @Test func aResponseReadBeforeItsRequestCompletesItWithTheSameLatency() {
        var engine = Self.engine()
        engine.feed(Dapr.event(topic: "b", id: "s1", at: Self.m + 1_300, trace: 1))
        #expect(engine.unmatchedResponses == 1)
        #expect(engine.pendingEarlyResponses == 1)
        engine.feed(Dapr.event(topic: "a", id: "q1", at: Self.m + 1_000, trace: 1))
        #expect(engine.pendingEarlyResponses == 0)
        #expect(engine.earlyResponsesMatched == 1)
        // The request also requests "progress": it waits for that flow's response.
        #expect(engine.pendingFlowRequests == 1)
        let metrics = Exposition(engine.exposition)
        #expect(metrics["flowmeter_flow_latency_seconds_count{flow=\"grading\"}"] == 1)
        #expect(metrics["flowmeter_flow_latency_seconds_sum{flow=\"grading\"}"] == 0.3)
        var sketch = LatencySketch()
        sketch.record(300)
        #expect(
            engine.takeRollupDelta().flows == [
                FlowKey(windowStartMs: Self.m, flow: "grading"): FlowCounts(completed: 1, latency: sketch)
            ]
        )
    }

    @Test func anEarlyResponseStampedBeforeItsRequestIsANegativeLatencyAsInOrder() {
        var inOrder = Self.engine()
        inOrder.feed(Dapr.event(topic: "a", id: "q1", at: Self.m + 5_000, trace: 1))
        inOrder.feed(Dapr.event(topic: "b", id: "s1", at: Self.m + 2_000, trace: 1))
        var early = Self.engine()
        early.feed(Dapr.event(topic: "b", id: "s1", at: Self.m + 2_000, trace: 1))
        early.feed(Dapr.event(topic: "a", id: "q1", at: Self.m + 5_000, trace: 1))
        let expected = [FlowKey(windowStartMs: Self.m, flow: "grading"): FlowCounts(negative: 1)]
        #expect(inOrder.takeRollupDelta().flows == expected)
        #expect(early.takeRollupDelta().flows == expected)
    }

    @Test func earlyResponsesExpireAfterTheTimeoutAndOnlyMatchWithinIt() {
        var engine = Self.engine()
        // Too early for a request at +20 s (the grading timeout is 10 s), and expired when the request moves the clock.
        engine.feed(Dapr.event(topic: "b", id: "s1", at: Self.m + 10_000, trace: 1))
        engine.feed(Dapr.event(topic: "a", id: "q1", at: Self.m + 20_000, trace: 1))
        #expect(engine.earlyResponsesExpired == 1)
        #expect(engine.earlyResponsesMatched == 0)
        // Read early but stamped at the timeout: not a match (in order, the request would expire first).
        engine.feed(Dapr.event(topic: "b", id: "s2", at: Self.m + 30_000, trace: 2))
        engine.feed(Dapr.event(topic: "a", id: "q2", at: Self.m + 20_000, trace: 2))
        #expect(engine.earlyResponsesMatched == 0)
        #expect(engine.pendingEarlyResponses == 1)
        engine.advance(nowMs: Self.m + 40_000)
        #expect(engine.pendingEarlyResponses == 0)
        #expect(engine.earlyResponsesExpired == 2)
        let flows = engine.takeRollupDelta().flows
        #expect(flows[FlowKey(windowStartMs: Self.m, flow: "grading")] == FlowCounts(incomplete: 2))
    }

    @Test func theOldestSuitableEarlyResponseIsTakenAndTheBufferIsBounded() {
        var engine = Self.engine(maxPending: 2)
        engine.feed(Dapr.event(topic: "b", id: "s1", at: Self.m + 1_000, trace: 7))
        engine.feed(Dapr.event(topic: "b", id: "s2", at: Self.m + 2_000, trace: 7))
        engine.feed(Dapr.event(topic: "b", id: "s3", at: Self.m + 3_000, trace: 8))
        // The bound evicted s1 (the oldest).
        #expect(engine.earlyResponsesEvicted == 1)
        #expect(engine.pendingEarlyResponses == 2)
        engine.feed(Dapr.event(topic: "a", id: "q1", at: Self.m + 500, trace: 7))
        let counts = engine.takeRollupDelta().flows[FlowKey(windowStartMs: Self.m, flow: "grading")]
        #expect(counts?.completed == 1)
        #expect(counts?.latency.max == 1_500)
    }

    @Test func earlyResponsesAreJournaledAndRestored() {
        var engine = Self.engine()
        engine.feed(Dapr.event(topic: "b", id: "s1", at: Self.m + 4_000, trace: 1, partition: 1, offset: 5))
        engine.feed(Dapr.event(topic: "c", id: "s2", at: Self.m + 4_000, trace: 1, offset: 9))
        let first = engine.takePendingChanges()
        #expect(first.added.isEmpty && first.removed.isEmpty && first.earlyRemoved.isEmpty)
        #expect(
            first.earlyAdded == [
                EarlyFlowResponse(
                    flow: "grading",
                    topic: "b",
                    partition: 1,
                    offset: 5,
                    correlationKey: Dapr.traceID(1),
                    timestampMs: Self.m + 4_000,
                    deadlineMs: Self.m + 14_000,
                    sequence: 0
                ),
                EarlyFlowResponse(
                    flow: "progress",
                    topic: "c",
                    partition: 0,
                    offset: 9,
                    correlationKey: Dapr.traceID(1),
                    timestampMs: Self.m + 4_000,
                    deadlineMs: Self.m + 34_000,
                    sequence: 1
                ),
            ]
        )
        #expect(!first.isEmpty)

        // Restored: not reported as added; removed once taken; unknown flows dropped and reported as removed.
        var restored = Self.engine()
        var orphan = first.earlyAdded[0]
        orphan.flow = "gone"
        restored.restorePending([], flowClockMs: first.flowClockMs, earlyResponses: first.earlyAdded + [orphan])
        #expect(restored.pendingEarlyResponses == 2)
        #expect(
            restored.takePendingChanges() == PendingFlowChanges(flowClockMs: Self.m + 4_000, earlyRemoved: [orphan.key])
        )
        restored.feed(Dapr.event(topic: "a", id: "q1", at: Self.m + 3_000, trace: 1, offset: 2))
        let second = restored.takePendingChanges()
        #expect(Set(second.earlyRemoved) == Set(first.earlyAdded.map(\.key)))
        #expect(second.earlyAdded.isEmpty && second.added.isEmpty)
        let flows = restored.takeRollupDelta().flows
        #expect(flows[FlowKey(windowStartMs: Self.m, flow: "grading")]?.completed == 1)
        #expect(flows[FlowKey(windowStartMs: Self.m, flow: "progress")]?.completed == 1)
    }

    // MARK: - Order independence (property)

    /// A record of a generated history: its partition (topic and number) and the record.
    struct Item {
        var partition: String
        var record: TestRecord
    }

    /// Generated flows: a request on `a` (two partitions) requesting both flows, and per flow a response on its
    /// topic (`b`: two partitions, `c`: one), or none. Latencies: completed (0 to half the timeout, ties included),
    /// negative (response stamped up to half the timeout before the request), late (at or past the timeout: the
    /// request is incomplete) or missing. Each partition is in timestamp order, with offsets in that order.
    struct History {
        var partitions: [String: [TestRecord]] = [:]
        /// The expected rollups, computed directly from the generated latencies.
        var expected: [FlowKey: FlowCounts] = [:]
        var lastMs: Int64 = 0

        /// Every record in timestamp order (requests before responses at equal times): the canonical merge.
        var canonical: [TestRecord] {
            partitions.keys.sorted().flatMap { partitions[$0]! }.sorted {
                ($0.timestampMs, $0.topic == "a" ? 0 : 1) < ($1.timestampMs, $1.topic == "a" ? 0 : 1)
            }
        }
    }

    static func history(
        count: Int,
        spacing: ClosedRange<Int64>,
        maxLatencyMs: Int64 = .max,
        late: Bool,
        using generator: inout SeededGenerator
    ) -> History {
        var history = History()
        var unsorted: [String: [TestRecord]] = [:]
        var time = Self.m + 60_000
        for index in 0..<count {
            time += Int64.random(in: spacing, using: &generator)
            let requestPartition = "a/\(Int.random(in: 0..<2, using: &generator))"
            unsorted[requestPartition, default: []].append(
                Dapr.event(topic: "a", id: "q\(index)", at: time, trace: index + 1)
            )
            for flow in ["grading", "progress"] {
                let timeout = Self.timeouts[flow]!
                let bound = min(timeout / 2, maxLatencyMs)
                let window = FlowKey(windowStartMs: windowStart(ofEventTimeMs: time), flow: flow)
                var latency: Int64
                switch Int.random(in: 0..<20, using: &generator) {
                case 0...2:
                    history.expected[window, default: FlowCounts()].incomplete += 1
                    continue
                case 3...5:
                    latency = -Int64.random(in: 1...bound, using: &generator)
                    history.expected[window, default: FlowCounts()].negative += 1
                case 6 where late:
                    latency = timeout + Int64.random(in: 0...5_000, using: &generator)
                    history.expected[window, default: FlowCounts()].incomplete += 1
                case 7:
                    latency = 0
                    history.expected[window, default: FlowCounts()].completed += 1
                    history.expected[window, default: FlowCounts()].latency.record(0)
                default:
                    latency = Int64.random(in: 0...bound, using: &generator)
                    history.expected[window, default: FlowCounts()].completed += 1
                    history.expected[window, default: FlowCounts()].latency.record(Double(latency))
                }
                let topic = Self.responseTopics[flow]!
                let partition = topic == "b" ? "b/\(Int.random(in: 0..<2, using: &generator))" : "c/0"
                unsorted[partition, default: []].append(
                    Dapr.event(topic: topic, id: "\(topic)\(index)", at: time + latency, trace: index + 1)
                )
                history.lastMs = max(history.lastMs, time + latency)
            }
            history.lastMs = max(history.lastMs, time)
        }
        for (name, records) in unsorted {
            let number = Int32(name.split(separator: "/")[1])!
            history.partitions[name] = records.sorted { $0.timestampMs < $1.timestampMs }.enumerated().map {
                var record = $0.element
                record.partition = number
                record.offset = Int64($0.offset)
                return record
            }
        }
        return history
    }

    /// Reads the partitions from `positions` on in a random order that keeps each partition's order. With `lag`,
    /// only partitions whose next record is at most `lag` ms after the earliest next record of any partition are
    /// eligible (a consumer reading every partition at a similar pace, as librdkafka does); without it, any.
    static func interleave(
        _ history: History,
        from positions: [String: Int] = [:],
        lag: Int64?,
        using generator: inout SeededGenerator,
        visit: (_ partition: String, _ record: TestRecord) -> Bool
    ) {
        var positions = positions
        let names = history.partitions.keys.sorted()
        // Sometimes a strong bias to one partition (a burst), sometimes uniform.
        let favorite = names.randomElement(using: &generator)!
        let bias = Int.random(in: 0...3, using: &generator)
        while true {
            let heads = names.compactMap { name -> (String, Int64)? in
                let records = history.partitions[name]!
                let position = positions[name, default: 0]
                return position < records.count ? (name, records[position].timestampMs) : nil
            }
            guard let earliest = heads.map(\.1).min() else { return }
            let eligible = heads.filter { lag == nil || $0.1 <= earliest + lag! }.map(\.0)
            let name =
                eligible.contains(favorite) && Int.random(in: 0..<4, using: &generator) < bias
                ? favorite : eligible.randomElement(using: &generator)!
            let position = positions[name, default: 0]
            positions[name] = position + 1
            guard visit(name, history.partitions[name]![position]) else { return }
        }
    }

    static func finish(_ engine: inout AnalysisEngine, _ history: History) -> [FlowKey: FlowCounts] {
        engine.advance(nowMs: history.lastMs + 3_600_000)
        #expect(engine.pendingFlowRequests == 0)
        #expect(engine.pendingEarlyResponses == 0)
        return engine.takeRollupDelta().flows
    }

    /// Within a history shorter than the timeouts (6 s at most against 10 s), any interleaving (responses all first, requests all first,
    /// anything between) gives the rollups of the canonical timestamp merge, which are those computed from the
    /// generated latencies.
    @Test(arguments: 1...8 as ClosedRange<UInt64>)
    func anyInterleavingGivesTheRollupsOfTheTimestampMerge(seed: UInt64) {
        var generator = SeededGenerator(state: seed)
        let history = Self.history(count: 40, spacing: 0...50, maxLatencyMs: 2_000, late: false, using: &generator)
        var canonical = Self.engine()
        for record in history.canonical { canonical.feed(record) }
        let expected = Self.finish(&canonical, history)
        #expect(expected == history.expected)
        let totals = expected.values.reduce(into: FlowCounts()) { $0.merge($1) }
        #expect(totals.completed > 20 && totals.negative > 3 && totals.incomplete > 3)

        // Extremes: every response first, every request first.
        for responsesFirst in [true, false] {
            var engine = Self.engine()
            let records = history.canonical
            for record in records where (record.topic != "a") == responsesFirst { engine.feed(record) }
            for record in records where (record.topic != "a") != responsesFirst { engine.feed(record) }
            #expect(Self.finish(&engine, history) == expected, "responses first: \(responsesFirst)")
        }
        for _ in 0..<30 {
            var engine = Self.engine()
            Self.interleave(history, lag: nil, using: &generator) { _, record in
                engine.feed(record)
                return true
            }
            #expect(Self.finish(&engine, history) == expected)
        }
    }

    /// Over a long history (expiry during the run, late responses), every interleaving whose partitions stay within
    /// a quarter of the shortest timeout of each other gives the rollups of the canonical timestamp merge.
    @Test(arguments: 1...8 as ClosedRange<UInt64>)
    func boundedLagInterleavingsGiveTheRollupsOfTheTimestampMerge(seed: UInt64) {
        var generator = SeededGenerator(state: seed)
        let history = Self.history(count: 600, spacing: 0...400, late: true, using: &generator)
        var canonical = Self.engine()
        for record in history.canonical { canonical.feed(record) }
        let expected = Self.finish(&canonical, history)
        #expect(expected == history.expected)
        #expect(expected.count >= 4)
        for _ in 0..<10 {
            var engine = Self.engine()
            Self.interleave(history, lag: 2_500, using: &generator) { _, record in
                engine.feed(record)
                return true
            }
            #expect(Self.finish(&engine, history) == expected)
        }
    }
}
