import FlowmeterApp
import FlowmeterCore
import Foundation
import Kafka
import Postgres
import Testing

@Suite(.serialized)
struct RollupsWriterTests {
    // MARK: - Reading back

    private func storedEvents(_ connection: PQConnection) throws -> [EventKey: EventCounts] {
        var result: [EventKey: EventCounts] = [:]
        let rows = try connection.query(
            """
            SELECT (extract(epoch FROM window_start) * 1000)::int8 AS ms, topic, type, events, bytes
            FROM flowmeter.event_counts_1m
            """
        )
        for row in rows {
            let key = EventKey(
                windowStartMs: try row.requiredInt("ms"),
                topic: try row.requiredString("topic"),
                type: try row.requiredString("type")
            )
            result[key] = EventCounts(events: try row.requiredInt("events"), bytes: try row.requiredInt("bytes"))
        }
        return result
    }

    private func storedFlows(_ connection: PQConnection) throws -> [FlowKey: FlowCounts] {
        var result: [FlowKey: FlowCounts] = [:]
        let rows = try connection.query(
            """
            SELECT (extract(epoch FROM window_start) * 1000)::int8 AS ms, flow, completed, incomplete, negative,
                evicted, \(sketchColumns("sketch", as: "latency"))
            FROM flowmeter.flow_latency_1m
            """
        )
        for row in rows {
            let key = FlowKey(windowStartMs: try row.requiredInt("ms"), flow: try row.requiredString("flow"))
            result[key] = FlowCounts(
                completed: try row.requiredInt("completed"),
                incomplete: try row.requiredInt("incomplete"),
                negative: try row.requiredInt("negative"),
                evicted: try row.requiredInt("evicted"),
                latency: try #require(try row.sketch("latency"))
            )
        }
        return result
    }

    private func storedDeadLetters(_ connection: PQConnection) throws -> [DeadLetterKey: DeadLetterCounts] {
        var result: [DeadLetterKey: DeadLetterCounts] = [:]
        let rows = try connection.query(
            """
            SELECT (extract(epoch FROM window_start) * 1000)::int8 AS ms, topic, dead_letter_topic, copies,
                distinct_originals, \(sketchColumns("delay", as: "delay"))
            FROM flowmeter.rollup_deadletters
            """
        )
        for row in rows {
            let key = DeadLetterKey(
                windowStartMs: try row.requiredInt("ms"),
                topic: try row.requiredString("topic"),
                deadLetterTopic: try row.requiredString("dead_letter_topic")
            )
            result[key] = DeadLetterCounts(
                copies: try row.requiredInt("copies"),
                distinctOriginals: try row.requiredInt("distinct_originals"),
                delay: try #require(try row.sketch("delay"))
            )
        }
        return result
    }

    private func storedInvalid(_ connection: PQConnection) throws -> [InvalidKey: Int64] {
        var result: [InvalidKey: Int64] = [:]
        let rows = try connection.query(
            """
            SELECT (extract(epoch FROM window_start) * 1000)::int8 AS ms, topic, reason, events
            FROM flowmeter.invalid_1m
            """
        )
        for row in rows {
            let key = InvalidKey(
                windowStartMs: try row.requiredInt("ms"),
                topic: try row.requiredString("topic"),
                reason: try #require(InvalidReason(rawValue: try row.requiredString("reason")))
            )
            result[key] = try row.requiredInt("events")
        }
        return result
    }

    /// `delta` with every sketch rebuilt as the database returns it.
    private func normalizedDelta(_ delta: RollupDelta) -> RollupDelta {
        var delta = delta
        for (key, value) in delta.flows { delta.flows[key]!.latency = normalized(value.latency) }
        for (key, value) in delta.deadLetters { delta.deadLetters[key]!.delay = normalized(value.delay) }
        return delta
    }

    // MARK: - Data

    private func randomLatencies(_ count: Int, using generator: inout some RandomNumberGenerator) -> [Double] {
        (0..<count).map { _ in
            switch Int.random(in: 0..<20, using: &generator) {
            case 0: 0
            case 1: Double.random(in: 1...10, using: &generator)
            default: (exp(Double.random(in: 0...12, using: &generator))).rounded()
            }
        }
    }

    private func randomDelta(
        windows: [Int64],
        using generator: inout some RandomNumberGenerator
    ) -> RollupDelta {
        var delta = RollupDelta()
        for window in windows {
            for topic in ["learnflow.grading", "learnflow.progress", "tópico \"quoted\" \\ back"] {
                for type in ["grade.requested", "grade.completed"] {
                    delta.events[EventKey(windowStartMs: window, topic: topic, type: type)] = EventCounts(
                        events: Int64.random(in: 1...1000, using: &generator),
                        bytes: Int64.random(in: 0...1_000_000, using: &generator)
                    )
                }
                delta.invalid[InvalidKey(windowStartMs: window, topic: topic, reason: .malformedJSON)] =
                    Int64.random(in: 1...5, using: &generator)
                delta.deadLetters[
                    DeadLetterKey(windowStartMs: window, topic: topic, deadLetterTopic: topic + ".dlq")
                ] = DeadLetterCounts(
                    copies: Int64.random(in: 1...9, using: &generator),
                    distinctOriginals: Int64.random(in: 1...3, using: &generator),
                    delay: makeSketch(randomLatencies(20, using: &generator))
                )
            }
            for flow in ["grading", "progress"] {
                delta.flows[FlowKey(windowStartMs: window, flow: flow)] = FlowCounts(
                    completed: 200,
                    incomplete: Int64.random(in: 0...5, using: &generator),
                    negative: Int64.random(in: 0...2, using: &generator),
                    evicted: Int64.random(in: 0...2, using: &generator),
                    latency: makeSketch(randomLatencies(200, using: &generator))
                )
            }
        }
        return delta
    }

    // MARK: - Tests

    @Test func deltasOfTwoWritersSumExactly() throws {
        try RollupsTestDatabase.withMigratedDatabase { connection, url in
            var generator = SplitMix64(seed: 1)
            let first = randomDelta(
                windows: [recentWindow(minutesAgo: 3), recentWindow(minutesAgo: 2)],
                using: &generator
            )
            let second = randomDelta(
                windows: [recentWindow(minutesAgo: 2), recentWindow(minutesAgo: 1)],
                using: &generator
            )
            let other = try PQConnection.connect(url: url, logger: RollupsTestDatabase.logger)
            defer { other.close() }
            let writers = [connection, other].map {
                RollupWriter(connection: $0, group: "flowmeter", logger: RollupsTestDatabase.logger)
            }
            let results = onThreads([
                { @Sendable in
                    try writers[0].write(first, nextOffsets: [PartitionOffset(topic: "a", partition: 0, nextOffset: 5)])
                },
                { @Sendable in
                    try writers[1].write(
                        second,
                        nextOffsets: [PartitionOffset(topic: "a", partition: 1, nextOffset: 7)]
                    )
                },
            ])
            let counts = try results.map { try $0.get() }
            #expect(counts[0].events == first.events.count)
            #expect(counts[0].flows == first.flows.count)
            #expect(counts[1].deadLetters == second.deadLetters.count)
            #expect(counts[1].invalid == second.invalid.count)
            #expect(counts[1].offsets == 1)

            var expected = first
            expected.merge(second)
            expected = normalizedDelta(expected)
            #expect(try storedEvents(connection) == expected.events)
            #expect(try storedInvalid(connection) == expected.invalid)
            let flows = try storedFlows(connection)
            #expect(flows.count == expected.flows.count)
            for (key, value) in expected.flows {
                #expect(flows[key] == value, "\(key)")
            }
            let deadLetters = try storedDeadLetters(connection)
            #expect(deadLetters.count == expected.deadLetters.count)
            for (key, value) in expected.deadLetters {
                #expect(deadLetters[key] == value, "\(key)")
            }
            let offsets = try writers[0].storedOffsets(for: [TopicPartition("a", 0), TopicPartition("a", 1)])
            #expect(offsets == [TopicPartition("a", 0): 5, TopicPartition("a", 1): 7])
        }
    }

    @Test func sqlQuantilesOfMergedSketchesMatchSwiftAndTheExactValues() throws {
        try RollupsTestDatabase.withMigratedDatabase { connection, _ in
            var generator = SplitMix64(seed: 2)
            let writer = RollupWriter(connection: connection, group: "flowmeter", logger: RollupsTestDatabase.logger)
            var all: [Double] = []
            var merged = LatencySketch()
            for minutesAgo in Int64(1)...12 {
                for _ in 0..<2 {
                    let values = randomLatencies(Int.random(in: 50...400, using: &generator), using: &generator)
                    let sketch = makeSketch(values)
                    all += values
                    merged.merge(sketch)
                    let key = FlowKey(windowStartMs: recentWindow(minutesAgo: minutesAgo), flow: "grading")
                    try writer.write(
                        RollupDelta(flows: [key: FlowCounts(completed: Int64(values.count), latency: sketch)]),
                        nextOffsets: []
                    )
                }
            }
            // A flow outside the query.
            try writer.write(
                RollupDelta(flows: [
                    FlowKey(windowStartMs: recentWindow(minutesAgo: 1), flow: "progress"): FlowCounts(
                        completed: 1,
                        latency: makeSketch([1e7])
                    )
                ]),
                nextOffsets: []
            )
            let sorted = all.sorted()
            for q in [0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1] {
                let rows = try connection.query(
                    """
                    SELECT flowmeter.quantile(flowmeter.merge_sketch(sketch), $1) AS value
                    FROM flowmeter.flow_latency_1m
                    WHERE flow = 'grading' AND window_start >= now() - interval '1 day'
                    """,
                    [.double(q)]
                )
                let sql = try rows[0].requiredDouble("value")
                let exact = sorted[Int((q * Double(sorted.count - 1)).rounded(.down))]
                #expect(abs(sql - exact) <= 0.01 * exact, "q=\(q): SQL \(sql), exact \(exact)")
                #expect(sql == merged.quantile(q), "q=\(q)")
            }
            // The documented query, verbatim.
            let p99 = try connection.query(
                """
                select flowmeter.quantile(flowmeter.merge_sketch(sketch), 0.99) from flowmeter.flow_latency_1m where \
                flow = 'grading' and window_start >= now() - interval '1 day'
                """
            )
            #expect(try p99[0].double(0) == merged.quantile(0.99))

            let mergedRow = try connection.query(
                """
                SELECT \(sketchColumns("flowmeter.merge_sketch(sketch)", as: "m"))
                FROM flowmeter.flow_latency_1m WHERE flow = 'grading'
                """
            )
            let sqlMerged = try #require(try mergedRow[0].sketch("m"))
            #expect(sqlMerged.counts == normalized(merged).counts)
            #expect(sqlMerged.offset == normalized(merged).offset)
            #expect(sqlMerged.zeroCount == merged.zeroCount)
            #expect(sqlMerged.count == merged.count)
            #expect(sqlMerged.max == merged.max)
            #expect(abs(sqlMerged.sum - merged.sum) <= 1e-9 * merged.sum)

            // Per-row percentiles in the view follow Swift's rule too.
            let perWindow = try connection.query(
                """
                SELECT p50_ms, p95_ms, p99_ms, max_ms, \(sketchColumns("sketch", as: "s"))
                FROM flowmeter.flow_latency_1m WHERE flow = 'grading'
                """
            )
            for row in perWindow {
                let sketch = try #require(try row.sketch("s"))
                #expect(try row.double("p50_ms") == sketch.quantile(0.5))
                #expect(try row.double("p95_ms") == sketch.quantile(0.95))
                #expect(try row.double("p99_ms") == sketch.quantile(0.99))
                #expect(try row.double("max_ms") == sketch.max)
            }
        }
    }

    @Test func mergeFoldsLikeSwiftBeyondAThousandBuckets() throws {
        try RollupsTestDatabase.withMigratedDatabase { connection, _ in
            let writer = RollupWriter(connection: connection, group: "flowmeter", logger: RollupsTestDatabase.logger)
            let parts = [makeSketch([1, 2, 3]), makeSketch([5e8, 7e8]), makeSketch([40_000, 1e9])]
            var merged = LatencySketch()
            for (minutesAgo, sketch) in parts.enumerated() {
                merged.merge(sketch)
                let key = FlowKey(windowStartMs: recentWindow(minutesAgo: Int64(minutesAgo + 1)), flow: "wide")
                try writer.write(RollupDelta(flows: [key: FlowCounts(completed: 1, latency: sketch)]), nextOffsets: [])
            }
            let rows = try connection.query(
                """
                SELECT \(sketchColumns("flowmeter.merge_sketch(sketch)", as: "m"))
                FROM flowmeter.flow_latency_1m WHERE flow = 'wide'
                """
            )
            let sqlMerged = try #require(try rows[0].sketch("m"))
            #expect(merged.counts.count == LatencySketch.maxBuckets)
            #expect(sqlMerged.offset == normalized(merged).offset)
            #expect(sqlMerged.counts == normalized(merged).counts)
            for q in [0, 0.3, 0.5, 0.9, 1] {
                #expect(sqlMerged.quantile(q) == merged.quantile(q))
            }
        }
    }

    @Test func storedSketchesStayWithinFourKilobytes() throws {
        try RollupsTestDatabase.withMigratedDatabase { connection, _ in
            let writer = RollupWriter(connection: connection, group: "flowmeter", logger: RollupsTestDatabase.logger)
            // Every bucket from 1 ms to 1 h, each with a large count.
            var span = LatencySketch()
            var value = 1.0
            while value <= 3_600_000 {
                span.record(value)
                value *= LatencySketch.gamma
            }
            span.record(3_600_000)
            let spanCounts = span.counts.map { _ in Int64.random(in: 1_000_000...2_000_000_000) }
            let dense = LatencySketch(offset: span.offset, counts: spanCounts, zeroCount: 5, sum: 1e12, max: 3_600_000)
            #expect(dense.counts.count >= 756)
            // The widest sketch Swift keeps: 1000 buckets.
            let widest = LatencySketch(
                offset: 10,
                counts: (0..<LatencySketch.maxBuckets).map { _ in Int64.random(in: 1_000_000...2_000_000_000) },
                zeroCount: 1 << 40,
                sum: 1.5e15,
                max: 1e9
            )
            try writer.write(
                RollupDelta(flows: [
                    FlowKey(windowStartMs: recentWindow(minutesAgo: 1), flow: "span"): FlowCounts(latency: dense),
                    FlowKey(windowStartMs: recentWindow(minutesAgo: 1), flow: "widest"): FlowCounts(latency: widest),
                ]),
                nextOffsets: []
            )
            let rows = try connection.query(
                """
                SELECT flow, pg_column_size(latency) AS stored, pg_column_size(latency::text) AS text_size
                FROM flowmeter.rollup_flows ORDER BY flow
                """
            )
            #expect(rows.count == 2)
            for row in rows {
                let flow = try row.requiredString("flow")
                #expect(try row.requiredInt("stored") <= 4096, "\(flow)")
            }
            let flows = try storedFlows(connection)
            #expect(flows[FlowKey(windowStartMs: recentWindow(minutesAgo: 1), flow: "span")]?.latency == dense)
            #expect(flows[FlowKey(windowStartMs: recentWindow(minutesAgo: 1), flow: "widest")]?.latency == widest)
        }
    }

    /// Repartition marks are stored with the write, only ever raised (by offset, then hop index), per group and shard.
    @Test func repartitionMarksRiseAndNeverFall() throws {
        try RollupsTestDatabase.withMigratedDatabase { connection, _ in
            let writer = RollupWriter(connection: connection, group: "flowmeter", logger: RollupsTestDatabase.logger)
            let other = RollupWriter(connection: connection, group: "other", logger: RollupsTestDatabase.logger)
            let a = TopicPartition("exercise.submitted", 1)
            let b = TopicPartition("exercise.graded", 0)
            func stored(_ writer: RollupWriter, _ shards: [Int32]) throws -> Set<RepartitionMark> {
                Set(try writer.repartitionMarks(shards: shards))
            }
            try writer.write(
                RollupDelta(),
                nextOffsets: [],
                marks: [
                    RepartitionMark(shard: 0, source: a, offset: 10, index: 1),
                    RepartitionMark(shard: 0, source: a, offset: 7, index: 0),
                    RepartitionMark(shard: 3, source: b, offset: 5, index: 0),
                ]
            )
            #expect(
                try stored(writer, [0, 3]) == [
                    RepartitionMark(shard: 0, source: a, offset: 10, index: 1),
                    RepartitionMark(shard: 3, source: b, offset: 5, index: 0),
                ]
            )
            try writer.write(
                RollupDelta(),
                nextOffsets: [],
                marks: [
                    RepartitionMark(shard: 0, source: a, offset: 10, index: 0),
                    RepartitionMark(shard: 3, source: b, offset: 5, index: 2),
                ]
            )
            #expect(try stored(writer, [0]) == [RepartitionMark(shard: 0, source: a, offset: 10, index: 1)])
            #expect(try stored(writer, [3]) == [RepartitionMark(shard: 3, source: b, offset: 5, index: 2)])
            #expect(try stored(writer, [1, 2]).isEmpty)
            #expect(try stored(other, [0, 3]).isEmpty)
        }
    }

    @Test func aFailedWriteStoresNeitherRollupsNorOffsets() throws {
        try RollupsTestDatabase.withMigratedDatabase { connection, _ in
            let writer = RollupWriter(connection: connection, group: "flowmeter", logger: RollupsTestDatabase.logger)
            let window = recentWindow(minutesAgo: 1)
            let key = EventKey(windowStartMs: window, topic: "t", type: "x")
            let flowKey = FlowKey(windowStartMs: window, flow: "f")
            try writer.write(
                RollupDelta(
                    events: [key: EventCounts(events: 3, bytes: 30)],
                    flows: [flowKey: FlowCounts(completed: 1, latency: makeSketch([12]))]
                ),
                nextOffsets: [PartitionOffset(topic: "t", partition: 0, nextOffset: 10)]
            )
            // The offsets statement comes last and violates `next_offset >= 0`.
            let error = #expect(throws: PQError.self) {
                try writer.write(
                    RollupDelta(
                        events: [key: EventCounts(events: 4, bytes: 40)],
                        flows: [flowKey: FlowCounts(completed: 1, latency: makeSketch([99]))]
                    ),
                    nextOffsets: [
                        PartitionOffset(topic: "t", partition: 0, nextOffset: 20),
                        PartitionOffset(topic: "t", partition: 1, nextOffset: -1),
                    ]
                )
            }
            #expect(error?.sqlState == "23514")
            #expect(try storedEvents(connection) == [key: EventCounts(events: 3, bytes: 30)])
            #expect(try storedFlows(connection)[flowKey]?.latency == normalized(makeSketch([12])))
            #expect(try writer.storedOffsets(topics: ["t"]) == [TopicPartition("t", 0): 10])

            // Offsets are set, not added, and may move backwards; other groups are separate.
            try writer.write(RollupDelta(), nextOffsets: [PartitionOffset(topic: "t", partition: 0, nextOffset: 4)])
            #expect(
                try writer.storedOffsets(for: [TopicPartition("t", 0), TopicPartition("t", 9)]) == [
                    TopicPartition("t", 0): 4
                ]
            )
            let stranger = RollupWriter(connection: connection, group: "other", logger: RollupsTestDatabase.logger)
            #expect(try stranger.storedOffsets(topics: ["t"]).isEmpty)
        }
    }

    @Test func retentionDeletesOnlyRowsOlderThanTheCutoffInBatches() throws {
        try RollupsTestDatabase.withMigratedDatabase { connection, _ in
            let writer = RollupWriter(connection: connection, group: "flowmeter", logger: RollupsTestDatabase.logger)
            let cutoffMs = recentWindow(minutesAgo: 24 * 60)
            let old = cutoffMs - 60_000
            let recent = cutoffMs + 60_000
            var delta = RollupDelta()
            for index in 0..<2500 {
                delta.events[EventKey(windowStartMs: old - Int64(index % 50) * 60_000, topic: "t\(index)", type: "x")] =
                    EventCounts(events: 1, bytes: 1)
            }
            // A row exactly at the cutoff is not older than it.
            for window in [cutoffMs, recent] {
                delta.events[EventKey(windowStartMs: window, topic: "t", type: "x")] = EventCounts(events: 1, bytes: 1)
            }
            for window in [old, cutoffMs, recent] {
                delta.flows[FlowKey(windowStartMs: window, flow: "f")] = FlowCounts(latency: makeSketch([5]))
                delta.deadLetters[DeadLetterKey(windowStartMs: window, topic: "t", deadLetterTopic: "t.dlq")] =
                    DeadLetterCounts(copies: 1, distinctOriginals: 1, delay: makeSketch([5]))
                delta.invalid[InvalidKey(windowStartMs: window, topic: "t", reason: .malformedJSON)] = 1
            }
            try writer.write(delta, nextOffsets: [PartitionOffset(topic: "t", partition: 0, nextOffset: 1)])
            for window in [old, recent] {
                try connection.execute(
                    """
                    INSERT INTO flowmeter.consumer_lag (sampled_at, group_id, topic, partition, committed_offset,
                        log_start_offset, end_offset, lag_messages, lag_seconds, status)
                    VALUES ($1, 'g', 't', 0, NULL, 0, 10, 10, 1.5, 'ok')
                    """,
                    [.timestamp(millisecondsSinceEpoch: window)]
                )
            }

            let cutoff = Date(timeIntervalSince1970: Double(cutoffMs) / 1000)
            let deleted = try writer.deleteOlderThan(cutoff, batchSize: 1000)
            #expect(deleted == 2500 + 3 + 1)

            for table in ["rollup_events", "rollup_flows", "rollup_deadletters", "rollup_invalid"] {
                let rows = try connection.query(
                    """
                    SELECT count(*) AS n, min((extract(epoch FROM window_start) * 1000)::int8) AS oldest
                    FROM flowmeter.\(table)
                    """
                )
                #expect(try rows[0].int64("n") == 2, "\(table)")
                #expect(try rows[0].int64("oldest") == cutoffMs, "\(table)")
            }
            let lag = try connection.query("SELECT count(*) AS n FROM flowmeter.consumer_lag")
            #expect(try lag[0].int64("n") == 1)
            #expect(try writer.storedOffsets(topics: ["t"]) == [TopicPartition("t", 0): 1])
            #expect(try writer.deleteOlderThan(cutoff, batchSize: 7) == 0)
        }
    }

    @Test func deadLetterRatioIsDeadLetteredOverEventsAndNullWithoutEvents() throws {
        try RollupsTestDatabase.withMigratedDatabase { connection, _ in
            let writer = RollupWriter(connection: connection, group: "flowmeter", logger: RollupsTestDatabase.logger)
            let first = recentWindow(minutesAgo: 2)
            let second = recentWindow(minutesAgo: 1)
            let delayA = makeSketch([100, 200, 300, 4000])
            let delayB = makeSketch([50, 60_000])
            try writer.write(
                RollupDelta(
                    events: [
                        EventKey(windowStartMs: first, topic: "grading", type: "a"): EventCounts(events: 150, bytes: 1),
                        EventKey(windowStartMs: first, topic: "grading", type: "b"): EventCounts(events: 50, bytes: 1),
                        EventKey(windowStartMs: first, topic: "progress", type: "a"): EventCounts(events: 10, bytes: 1),
                    ],
                    deadLetters: [
                        DeadLetterKey(windowStartMs: first, topic: "grading", deadLetterTopic: "grading.dlq.a"):
                            DeadLetterCounts(copies: 4, distinctOriginals: 3, delay: delayA),
                        DeadLetterKey(windowStartMs: first, topic: "grading", deadLetterTopic: "grading.dlq.b"):
                            DeadLetterCounts(copies: 1, distinctOriginals: 1, delay: delayB),
                        DeadLetterKey(windowStartMs: second, topic: "grading", deadLetterTopic: "grading.dlq.a"):
                            DeadLetterCounts(copies: 2, distinctOriginals: 2, delay: makeSketch([7, 8])),
                    ]
                ),
                nextOffsets: []
            )
            let rows = try connection.query(
                """
                SELECT (extract(epoch FROM window_start) * 1000)::int8 AS ms, topic, events, dead_lettered, ratio,
                    p95_delay_ms, copies
                FROM flowmeter.deadletters_1m ORDER BY window_start, topic
                """
            )
            #expect(rows.count == 3)
            var merged = delayA
            merged.merge(delayB)

            #expect(try rows[0].int64("ms") == first)
            #expect(try rows[0].string("topic") == "grading")
            #expect(try rows[0].int64("events") == 200)
            #expect(try rows[0].int64("dead_lettered") == 4)
            #expect(try rows[0].double("ratio") == 4.0 / 200.0)
            #expect(try rows[0].double("p95_delay_ms") == merged.quantile(0.95))
            #expect(try rows[0].int64("copies") == 5)

            #expect(try rows[1].string("topic") == "progress")
            #expect(try rows[1].int64("dead_lettered") == 0)
            #expect(try rows[1].double("ratio") == 0)
            #expect(try rows[1].double("p95_delay_ms") == nil)

            #expect(try rows[2].int64("ms") == second)
            #expect(try rows[2].int64("events") == 0)
            #expect(try rows[2].int64("dead_lettered") == 2)
            #expect(try rows[2].double("ratio") == nil)
        }
    }
}

/// A small seeded generator, so that failures reproduce.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
