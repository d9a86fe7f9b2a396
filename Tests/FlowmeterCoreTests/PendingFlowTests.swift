import Testing

@testable import FlowmeterCore

/// Crash safety of flow correlation: ``AnalysisEngine/takePendingChanges()`` and
/// ``AnalysisEngine/restorePending(_:flowClockMs:)``.
@Suite struct PendingFlowTests {
    static let m = Dapr.minute

    static func engine(
        flows: [FlowDefinition] = [FlowDefinition(name: "f", from: "a", to: "b", timeout: .seconds(10))],
        maxPending: Int = 100_000
    ) -> AnalysisEngine {
        var limits = AnalyzerLimits()
        limits.maxPendingFlowRequests = maxPending
        return AnalysisEngine(
            analyzers: AnalyzerSet(topics: [.name("a"), .name("b")], flows: flows, limits: limits)
        )
    }

    static func request(trace: Int, at time: Int64, offset: Int64, partition: Int32 = 0) -> TestRecord {
        Dapr.event(topic: "a", id: "q\(offset)", at: time, trace: trace, partition: partition, offset: offset)
    }

    static func response(trace: Int, at time: Int64, offset: Int64) -> TestRecord {
        Dapr.event(topic: "b", id: "s\(offset)", at: time, trace: trace, offset: offset)
    }

    static func unsequenced(_ request: PendingFlowRequest) -> PendingFlowRequest {
        var request = request
        request.sequence = 0
        return request
    }

    /// A stored pending set: the changes applied in order.
    struct Store {
        var pending: [PendingFlowKey: PendingFlowRequest] = [:]
        var clockMs: Int64 = .min

        mutating func apply(_ changes: PendingFlowChanges) {
            for key in changes.removed {
                #expect(pending.removeValue(forKey: key) != nil, "removed \(key) was not stored")
            }
            for request in changes.added {
                #expect(pending.updateValue(request, forKey: request.key) == nil, "added \(request) was stored")
            }
            if changes.flowClockMs != .min { clockMs = changes.flowClockMs }
        }

        /// The requests without their sequence (which only orders them).
        var unordered: Set<PendingFlowRequest> { Set(pending.values.map(PendingFlowTests.unsequenced)) }
    }

    static func sketch(_ value: Double) -> LatencySketch {
        var sketch = LatencySketch()
        sketch.record(value)
        return sketch
    }

    // MARK: - Take

    @Test func takeReportsRequestsAddedAndStillPendingAndThoseResolvedSince() {
        var engine = Self.engine()
        engine.feed(Self.request(trace: 1, at: Self.m + 1_000, offset: 7, partition: 2))
        engine.feed(Self.request(trace: 2, at: Self.m + 2_000, offset: 8, partition: 2))
        let first = engine.takePendingChanges()
        #expect(first.removed.isEmpty)
        #expect(first.flowClockMs == Self.m + 2_000)
        #expect(
            first.added.map(Self.unsequenced) == [
                PendingFlowRequest(
                    flow: "f",
                    topic: "a",
                    partition: 2,
                    offset: 7,
                    correlationKey: Dapr.traceID(1),
                    timestampMs: Self.m + 1_000,
                    windowStartMs: Self.m,
                    deadlineMs: Self.m + 11_000,
                    sequence: 0
                ),
                PendingFlowRequest(
                    flow: "f",
                    topic: "a",
                    partition: 2,
                    offset: 8,
                    correlationKey: Dapr.traceID(2),
                    timestampMs: Self.m + 2_000,
                    windowStartMs: Self.m,
                    deadlineMs: Self.m + 12_000,
                    sequence: 0
                ),
            ]
        )
        #expect(first.added[0].sequence < first.added[1].sequence)
        #expect(engine.takePendingChanges() == PendingFlowChanges(flowClockMs: Self.m + 2_000))

        // Completed: removed. Added and completed between two takes: in neither list.
        engine.feed(Self.response(trace: 1, at: Self.m + 3_000, offset: 1))
        engine.feed(Self.request(trace: 3, at: Self.m + 3_500, offset: 9))
        engine.feed(Self.response(trace: 3, at: Self.m + 4_000, offset: 2))
        let second = engine.takePendingChanges()
        #expect(second.added.isEmpty)
        #expect(second.removed == [PendingFlowKey(flow: "f", topic: "a", partition: 2, offset: 7)])
        #expect(engine.pendingFlowRequests == 1)
    }

    @Test func expiredEvictedAndNegativeRequestsAreRemoved() {
        var engine = Self.engine(maxPending: 2)
        for (offset, trace) in [(0, 1), (1, 2), (2, 3)] as [(Int64, Int)] {
            engine.feed(Self.request(trace: trace, at: Self.m + 1_000 + offset, offset: offset))
        }
        // The bound evicted offset 0 before any take: it was never reported.
        let first = engine.takePendingChanges()
        #expect(first.added.map(\.offset) == [1, 2])
        #expect(first.removed.isEmpty)
        // A negative latency consumes offset 1; offset 4 evicts offset 2 (the oldest pending).
        engine.feed(Self.response(trace: 2, at: Self.m + 500, offset: 0))
        engine.feed(Self.request(trace: 4, at: Self.m + 1_500, offset: 3))
        engine.feed(Self.request(trace: 5, at: Self.m + 1_600, offset: 4))
        let second = engine.takePendingChanges()
        #expect(Set(second.removed.map(\.offset)) == [1, 2])
        #expect(second.added.map(\.offset) == [3, 4])
        engine.advance(nowMs: Self.m + 20_000)
        let third = engine.takePendingChanges()
        #expect(Set(third.removed.map(\.offset)) == [3, 4])
        #expect(third.added.isEmpty)
        #expect(third.flowClockMs == Self.m + 20_000)
        let flows = engine.takeRollupDelta().flows[FlowKey(windowStartMs: Self.m, flow: "f")]
        #expect(flows?.evicted == 2)
        #expect(flows?.negative == 1)
        #expect(flows?.incomplete == 2)
    }

    @Test func oneRecordRequestingTwoFlowsIsTwoPendingRequests() {
        var engine = Self.engine(flows: [
            FlowDefinition(name: "to-b", from: "a", to: "b"),
            FlowDefinition(name: "to-c", from: "a", to: "c"),
        ])
        engine.feed(Self.request(trace: 1, at: Self.m, offset: 5))
        let changes = engine.takePendingChanges()
        #expect(
            Set(changes.added.map(\.key)) == [
                PendingFlowKey(flow: "to-b", topic: "a", partition: 0, offset: 5),
                PendingFlowKey(flow: "to-c", topic: "a", partition: 0, offset: 5),
            ]
        )
    }

    @Test func theJournalStaysBoundedWithoutTakes() {
        var correlator = FlowCorrelator(timeoutsMs: [1_000], maxPending: 100)
        for time in 0..<Int64(50_000) {
            correlator.addRequest(flow: 0, key: "k\(time % 7)", timeMs: time) { _ in }
            if time % 3 != 0 { _ = correlator.takeRequest(flow: 0, key: "k\(time % 7)") }
            #expect(correlator.journalEntries <= 2 * correlator.pendingCount + 65)
        }
        // Persisted removals are bounded by the requests pending at the take.
        _ = correlator.takeChanges()
        let persisted = correlator.pendingCount
        correlator.expire(clockMs: .max) { _ in }
        #expect(correlator.journalEntries == persisted)
        #expect(correlator.takeChanges().removed.count == persisted)
        #expect(correlator.journalEntries == 0)
    }

    @Test func restoreIntoAUsedCorrelatorIgnoresItsStaleEntries() {
        var correlator = FlowCorrelator(timeoutsMs: [10], maxPending: 10)
        for time in 0..<Int64(5) {
            correlator.addRequest(flow: 0, key: "old", timeMs: time) { _ in }
            _ = correlator.takeRequest(flow: 0, key: "old")
        }
        // Sequence 2 is stale in the deadline heap (deadline 12); the restored request keeps its own deadline.
        let snapshot = PendingSnapshot(
            request: PendingRequest(flow: 0, key: "k", timeMs: 100),
            origin: RequestOrigin(topic: "a", partition: 0, offset: 9),
            deadlineMs: 110,
            sequence: 2
        )
        correlator.restore([snapshot]) { _ in Issue.record("no eviction expected") }
        correlator.restore([snapshot]) { _ in Issue.record("no eviction expected") }
        #expect(correlator.pendingCount == 1)
        correlator.expire(clockMs: 109) { Issue.record("\($0) expired early") }
        #expect(correlator.takeChanges().added.isEmpty)
        var expired: [PendingRequest] = []
        correlator.expire(clockMs: 110) { expired.append($0) }
        #expect(expired == [snapshot.request])
        #expect(correlator.takeChanges().removed.map(\.origin) == [snapshot.origin])
    }

    // MARK: - Restore

    @Test func restoredRequestsAreNotCountedNorReportedAsAddedAndResolveOnce() {
        var first = Self.engine()
        first.feed(Self.request(trace: 1, at: Self.m + 1_000, offset: 0))
        first.feed(Self.request(trace: 2, at: Self.m + 2_000, offset: 1))
        let stored = first.takePendingChanges()

        var second = Self.engine()
        second.restorePending(stored.added.reversed(), flowClockMs: stored.flowClockMs)
        #expect(second.pendingFlowRequests == 2)
        #expect(second.flowClockMs == Self.m + 2_000)
        #expect(second.takeRollupDelta().isEmpty)
        #expect(second.recordsProcessed == 0)
        #expect(second.takePendingChanges() == PendingFlowChanges(flowClockMs: Self.m + 2_000))
        #expect(Exposition(second.exposition).total("flowmeter_events_total") == 0)

        second.feed(Self.response(trace: 1, at: Self.m + 1_250, offset: 0))
        second.advance(nowMs: Self.m + 12_000)
        #expect(second.pendingFlowRequests == 0)
        #expect(
            second.takeRollupDelta().flows == [
                FlowKey(windowStartMs: Self.m, flow: "f"): FlowCounts(
                    completed: 1,
                    incomplete: 1,
                    latency: Self.sketch(250)
                )
            ]
        )
        let changes = second.takePendingChanges()
        #expect(changes.added.isEmpty)
        #expect(Set(changes.removed) == Set(stored.added.map(\.key)))
        // Restoring the same requests twice adds them once.
        var third = Self.engine()
        third.restorePending(stored.added)
        third.restorePending(stored.added)
        #expect(third.pendingFlowRequests == 2)
        // Sequences only order: two requests with the same one are both restored.
        var fourth = Self.engine()
        fourth.restorePending(
            stored.added.map {
                var request = $0
                request.sequence = 9
                return request
            }
        )
        #expect(fourth.pendingFlowRequests == 2)
    }

    @Test func restoreKeepsFIFOOrderPerKeyAndStoredDeadlines() {
        var first = Self.engine()
        first.feed(Self.request(trace: 1, at: Self.m + 5_000, offset: 0))
        first.feed(Self.request(trace: 1, at: Self.m + 1_000, offset: 1))
        let original = first.takePendingChanges().added
        var stored = original
        // A deadline unlike the flow's timeout (the configuration changed) is kept.
        stored[1].deadlineMs = Self.m + 3_000

        var second = Self.engine()
        second.restorePending(stored.shuffled())
        second.advance(nowMs: Self.m + 3_000)
        #expect(second.pendingFlowRequests == 1)
        second.feed(Self.response(trace: 1, at: Self.m + 6_000, offset: 0))
        let flows = second.takeRollupDelta().flows[FlowKey(windowStartMs: Self.m, flow: "f")]
        #expect(flows?.incomplete == 1)
        #expect(flows?.completed == 1)
        #expect(flows?.latency.max == 1_000)

        // Without the early deadline, the oldest insertion (offset 0) is taken first.
        var third = Self.engine()
        third.restorePending(original.shuffled())
        third.feed(Self.response(trace: 1, at: Self.m + 6_000, offset: 0))
        #expect(third.takeRollupDelta().flows[FlowKey(windowStartMs: Self.m, flow: "f")]?.latency.max == 1_000)
        // New requests come after every restored one.
        third.feed(Self.request(trace: 1, at: Self.m + 500, offset: 2))
        let added = third.takePendingChanges().added
        #expect(added.count == 1)
        #expect(added[0].sequence > stored.map(\.sequence).max()!)
    }

    @Test func restoreRespectsTheBoundAndDropsUnknownFlows() {
        var first = Self.engine(flows: [
            FlowDefinition(name: "f", from: "a", to: "b", timeout: .seconds(10)),
            FlowDefinition(name: "gone", from: "a", to: "c"),
        ])
        for offset in 0..<Int64(3) {
            first.feed(Self.request(trace: Int(offset) + 1, at: Self.m + 60_000 + offset, offset: offset))
        }
        let stored = first.takePendingChanges().added
        #expect(stored.count == 6)

        var second = Self.engine(maxPending: 2)
        second.restorePending(stored)
        #expect(second.pendingFlowRequests == 2)
        let delta = second.takeRollupDelta()
        #expect(delta.flows == [FlowKey(windowStartMs: Self.m + 60_000, flow: "f"): FlowCounts(evicted: 1)])
        #expect(delta.events.isEmpty)
        let changes = second.takePendingChanges()
        #expect(changes.added.isEmpty)
        #expect(
            Set(changes.removed) == [
                PendingFlowKey(flow: "f", topic: "a", partition: 0, offset: 0),
                PendingFlowKey(flow: "gone", topic: "a", partition: 0, offset: 0),
                PendingFlowKey(flow: "gone", topic: "a", partition: 0, offset: 1),
                PendingFlowKey(flow: "gone", topic: "a", partition: 0, offset: 2),
            ]
        )
    }

    // MARK: - Model

    /// One step of a stream: a record, or the wall clock moving the flow clock.
    enum Step {
        case record(TestRecord)
        case advance(Int64)
    }

    static let modelFlows = [
        FlowDefinition(name: "grading", from: "a", to: "b", timeout: .seconds(10)),
        FlowDefinition(name: "progress", from: "a", to: "c", timeout: .seconds(30)),
        FlowDefinition(
            name: "chat",
            from: "d",
            to: "d",
            fromType: "chat.asked",
            toType: "chat.answered",
            correlation: .header("cid"),
            timeout: .seconds(5)
        ),
    ]

    static func modelEngine() -> AnalysisEngine {
        var limits = AnalyzerLimits()
        limits.maxPendingFlowRequests = 24
        return AnalysisEngine(
            analyzers: AnalyzerSet(topics: [.name("a"), .name("b")], flows: modelFlows, limits: limits)
        )
    }

    /// Requests and responses on several topics, partitions and keys, with out-of-order timestamps (late requests,
    /// negative latencies), idle advances, unmatched responses and evictions.
    static func randomStream(count: Int, using generator: inout SeededGenerator) -> [Step] {
        var steps: [Step] = []
        var offsets: [String: Int64] = [:]
        var base = Self.m
        for index in 0..<count {
            base += Int64.random(in: 0...400, using: &generator)
            let time = base + Int64.random(in: -15_000...2_000, using: &generator)
            let partition = Int32.random(in: 0..<3, using: &generator)
            func next(_ topic: String) -> Int64 {
                let key = "\(topic)/\(partition)"
                defer { offsets[key, default: 0] += 1 }
                return offsets[key, default: 0]
            }
            let trace = Int.random(in: 0..<10, using: &generator)
            switch Int.random(in: 0..<20, using: &generator) {
            case 0:
                steps.append(.advance(base + Int64.random(in: 0...20_000, using: &generator)))
            case 1...6:
                let type = ["grade.requested", "progress.asked"].randomElement(using: &generator)!
                steps.append(
                    .record(
                        Dapr.event(
                            topic: "a",
                            id: "a\(index)",
                            type: type,
                            at: time,
                            trace: trace,
                            partition: partition,
                            offset: next("a")
                        )
                    )
                )
            case 7...10:
                let topic = Bool.random(using: &generator) ? "b" : "c"
                steps.append(
                    .record(
                        Dapr.event(
                            topic: topic,
                            id: "\(topic)\(index)",
                            type: "done",
                            at: time,
                            trace: trace,
                            partition: partition,
                            offset: next(topic)
                        )
                    )
                )
            default:
                let type = ["chat.asked", "chat.answered", "chat.other"].randomElement(using: &generator)!
                let cid = "c\(Int.random(in: 0..<6, using: &generator))"
                steps.append(
                    .record(
                        Dapr.event(
                            topic: "d",
                            id: "d\(index)",
                            type: type,
                            at: time,
                            partition: partition,
                            offset: next("d"),
                            headers: [RecordHeader(name: "cid", string: cid)]
                        )
                    )
                )
            }
        }
        return steps
    }

    static func run(_ step: Step, on engine: inout AnalysisEngine) {
        switch step {
        case .record(let record): engine.feed(record)
        case .advance(let now): engine.advance(nowMs: now)
        }
    }

    /// A run killed at random instants and restarted from its store (rollups, position and pending requests
    /// written together at each flush) adds up to exactly the rollups of a run without kills, and its store ends
    /// with exactly the pending requests of that run.
    @Test(arguments: 1...12 as ClosedRange<UInt64>)
    func killedAndRestoredRunsEqualAnUninterruptedRun(seed: UInt64) {
        var generator = SeededGenerator(state: seed)
        let steps = Self.randomStream(count: 3_000, using: &generator)

        var reference = Self.modelEngine()
        for step in steps { Self.run(step, on: &reference) }
        let expected = reference.takeRollupDelta()
        var referenceStore = Store()
        referenceStore.apply(reference.takePendingChanges())

        // The store of the killed run: merged rollups, the position of the next step, the pending requests.
        var storedRollups = RollupDelta()
        var storedPosition = 0
        var store = Store()
        var engine = Self.modelEngine()
        var position = 0
        var untilFlush = Int.random(in: 1...40, using: &generator)
        var kills = 0
        var restoredNonEmpty = 0
        while position < steps.count {
            Self.run(steps[position], on: &engine)
            position += 1
            untilFlush -= 1
            if untilFlush == 0 || position == steps.count {
                storedRollups.merge(engine.takeRollupDelta())
                store.apply(engine.takePendingChanges())
                storedPosition = position
                untilFlush = Int.random(in: 1...40, using: &generator)
            }
            // A kill at any instant: whatever was not flushed is lost; restart from the store.
            if position < steps.count, kills < 60, Int.random(in: 0..<40, using: &generator) == 0 {
                kills += 1
                if !store.pending.isEmpty { restoredNonEmpty += 1 }
                engine = Self.modelEngine()
                engine.restorePending(
                    Array(store.pending.values).shuffled(using: &generator),
                    flowClockMs: store.clockMs
                )
                position = storedPosition
                untilFlush = Int.random(in: 1...40, using: &generator)
            }
        }
        #expect(kills > 10)
        #expect(restoredNonEmpty > 5)
        #expect(storedRollups.events == expected.events)
        #expect(storedRollups.flows == expected.flows)
        #expect(storedRollups == expected)
        #expect(store.unordered == referenceStore.unordered)
        #expect(store.clockMs == reference.flowClockMs)

        // The stream exercises every outcome.
        let totals = expected.flows.values.reduce(into: FlowCounts()) { $0.merge($1) }
        #expect(totals.completed > 100)
        #expect(totals.incomplete > 10)
        #expect(totals.negative > 10)
        #expect(totals.evicted > 0)
        #expect(expected.flows.keys.contains { $0.flow == "chat" })
    }
}
