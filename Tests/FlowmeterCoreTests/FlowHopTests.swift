import Testing

@testable import FlowmeterCore

/// Flows across replicas: the hops an engine hands out while it routes, their encoding, and their correlation on
/// the shard owner's engine.
@Suite struct FlowHopTests {
    static let m = Dapr.minute

    static let analyzers = AnalyzerSet(
        topics: [.name("a"), .name("b"), .name("c")],
        flows: [
            FlowDefinition(name: "ab", from: "a", to: "b", timeout: .seconds(10)),
            FlowDefinition(name: "ac", from: "a", to: "c", timeout: .seconds(10)),
        ]
    )

    /// Requests on `a` (partitions 0–3), responses on `b` for even traces and on `c` for multiples of 3, with
    /// responses that come before their requests, late ones and missing ones.
    static func stream(count: Int, using generator: inout SeededGenerator) -> [TestRecord] {
        var records: [TestRecord] = []
        var offsets: [String: Int64] = [:]
        func next(_ topic: String, _ partition: Int32) -> Int64 {
            defer { offsets["\(topic)/\(partition)", default: 0] += 1 }
            return offsets["\(topic)/\(partition)", default: 0]
        }
        for trace in 1...count {  // trace-id 0 is invalid (W3C)
            let time = m + Int64(trace) * 150
            let partition = Int32(trace % 4)
            var group = [
                Dapr.event(
                    topic: "a",
                    id: "q\(trace)",
                    at: time,
                    trace: trace,
                    partition: partition,
                    offset: next("a", partition)
                )
            ]
            if trace % 2 == 0 {
                let latency = Int64.random(in: -200...12_000, using: &generator)
                let p = Int32((trace + 1) % 4)
                group.append(
                    Dapr.event(
                        topic: "b",
                        id: "b\(trace)",
                        at: time + latency,
                        trace: trace,
                        partition: p,
                        offset: next("b", p)
                    )
                )
            }
            if trace % 3 == 0 {
                let p = Int32((trace + 2) % 4)
                group.append(
                    Dapr.event(
                        topic: "c",
                        id: "c\(trace)",
                        at: time + 700,
                        trace: trace,
                        partition: p,
                        offset: next("c", p)
                    )
                )
            }
            // Responses read before their request now and then (replicas read partitions at their own pace).
            if Int.random(in: 0..<5, using: &generator) == 0 { group.reverse() }
            records += group
        }
        return records
    }

    /// An engine that routes hands out exactly the flow events an in-memory engine correlates; the shard owners'
    /// engines correlating those hops (each its own shards) count exactly what the in-memory engine counts, and
    /// the router counts every event itself.
    @Test func routedHopsCorrelateExactlyLikeInMemory() {
        var generator = SeededGenerator(state: 7)
        let records = Self.stream(count: 3000, using: &generator)
        var memory = AnalysisEngine(analyzers: Self.analyzers, clock: .external)
        var router = AnalysisEngine(analyzers: Self.analyzers, clock: .external)
        router.routesFlows = true
        let shards: Int32 = 3
        var owners = (0..<shards).map { _ in AnalysisEngine(analyzers: Self.analyzers, clock: .external) }
        var hops: [FlowHop] = []
        for record in records {
            memory.feed(record)
            router.feed(record)
            hops += router.takeFlowHops()
        }
        #expect(router.flowHopsWaiting == 0)
        #expect(hops.count == 3000 * 2 + 1500 + 1000, "a request per flow, and every response")
        for hop in hops {
            let bytes = RepartitionCodec.encode(hop)
            let decoded = bytes.withUnsafeBytes { RepartitionCodec.decode($0) }
            #expect(decoded == .hop(hop))
            let taken = owners[Int(hop.shard(partitions: shards))].correlate(hop)
            #expect(taken)
        }
        let end = Self.m + 3000 * 150 + 60_000
        memory.advance(nowMs: end)
        for index in owners.indices { owners[index].advance(nowMs: end) }

        var merged = RollupDelta()
        for index in owners.indices {
            let delta = owners[index].takeRollupDelta()
            #expect(delta.events.isEmpty, "shard owners count no events for hops")
            merged.merge(delta)
        }
        let expected = memory.takeRollupDelta()
        let routed = router.takeRollupDelta()
        #expect(routed.events == expected.events)
        #expect(routed.flows.isEmpty, "a router correlates nothing itself")
        #expect(merged.flows == expected.flows)
        let completed = expected.flows.values.reduce(0) { $0 + $1.completed }
        #expect(completed > 1000)
    }

    /// The index of a hop numbers the flow events of its record: one request record of two flows is two hops.
    @Test func oneRecordOfTwoFlowsIsTwoHopsWithTheirIndex() {
        var router = AnalysisEngine(analyzers: Self.analyzers, clock: .external)
        router.routesFlows = true
        router.feed(Dapr.event(topic: "a", id: "q", at: Self.m, trace: 5, partition: 2, offset: 41))
        let hops = router.takeFlowHops()
        #expect(hops.map(\.flow) == ["ab", "ac"])
        #expect(hops.map(\.index) == [0, 1])
        #expect(hops.allSatisfy { $0.role == .request && $0.topic == "a" && $0.partition == 2 && $0.offset == 41 })
        #expect(hops.allSatisfy { $0.key == Dapr.traceID(5) && $0.timeMs == Self.m })
    }

    /// A replica correlating in memory skips the flow events its shards already took through the repartition
    /// topic (a record read again after the replica that routed it died), and only those.
    @Test func takenHopsAreNotCorrelatedAgainInMemory() {
        let request = Dapr.event(topic: "a", id: "q", at: Self.m, trace: 9, offset: 10)
        let response = Dapr.event(topic: "b", id: "s", at: Self.m + 30, trace: 9, offset: 3)
        // The shard of flow "ab" took the request (index 0) of a[0]@10; "ac" did not.
        let shard = FlowHop.shard(flow: "ab", key: Dapr.traceID(9), partitions: 4)
        var engine = AnalysisEngine(analyzers: Self.analyzers, clock: .external)
        engine.takenFlowHops = TakenFlowHops(
            partitions: 4,
            positions: [TakenFlowHops.Key(shard: shard, topic: "a", partition: 0): HopPosition(offset: 10, index: 0)]
        )
        engine.feed([request, response])
        #expect(engine.takenFlowEventsSkipped == 1)
        #expect(engine.pendingFlowRequests == 1, "the ac request waits; the ab request was taken")
        let flows = engine.takeRollupDelta().flows
        #expect(flows.values.reduce(0) { $0 + $1.completed } == 0)
    }

    @Test func progressMarkersRoundTrip() {
        let marker = FlowProgressMarker(entries: [
            .init(topic: "exercise.submitted", partition: 3, watermarkMs: 1_700_000_000_123),
            .init(topic: "é", partition: 0, watermarkMs: -5),
        ])
        let bytes = RepartitionCodec.encode(marker)
        #expect(bytes.withUnsafeBytes { RepartitionCodec.decode($0) } == .progress(marker))
        let empty = RepartitionCodec.encode(FlowProgressMarker(entries: []))
        #expect(empty.withUnsafeBytes { RepartitionCodec.decode($0) } == .progress(FlowProgressMarker(entries: [])))
    }

    /// Every truncation, an unknown tag, trailing bytes and invalid UTF-8 decode to nil, never trap.
    @Test func malformedValuesDecodeToNil() {
        let hop = FlowHop(
            flow: "grading",
            role: .response,
            key: "k",
            timeMs: 1,
            topic: "t",
            partition: 1,
            offset: 2,
            index: 3
        )
        let bytes = RepartitionCodec.encode(hop)
        for length in 0..<bytes.count {
            #expect(Array(bytes.prefix(length)).withUnsafeBytes { RepartitionCodec.decode($0) } == nil)
        }
        #expect((bytes + [0]).withUnsafeBytes { RepartitionCodec.decode($0) } == nil)
        var unknown = bytes
        unknown[0] = 9
        #expect(unknown.withUnsafeBytes { RepartitionCodec.decode($0) } == nil)
        var role = bytes
        role[1] = 7
        #expect(role.withUnsafeBytes { RepartitionCodec.decode($0) } == nil)
        var utf8 = bytes
        utf8[utf8.count - 1] = 0xFF
        #expect(utf8.withUnsafeBytes { RepartitionCodec.decode($0) } == nil)
        let hugeCount: [UInt8] = [2, 0xFF, 0xFF, 0xFF, 0xFF]
        #expect(hugeCount.withUnsafeBytes { RepartitionCodec.decode($0) } == nil)
    }

    /// The shard function is pinned: pending requests are restored by it, across versions and processes.
    @Test func shardsArePinned() {
        #expect(FlowHop.shard(flow: "grading", key: "4bf92f3577b34da6a3ce929d0e0e4736", partitions: 12) == 2)
        #expect(FlowHop.shard(flow: "lesson", key: "abc", partitions: 12) == 1)
        #expect(FlowHop.shard(flow: "grading", key: "", partitions: 7) == 3)
        #expect(FlowHop.shard(flow: "grading", key: "x", partitions: 1) == 0)
    }
}
