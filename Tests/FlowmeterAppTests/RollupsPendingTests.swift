import FlowmeterApp
import FlowmeterCore
import Foundation
import Kafka
import Postgres
import Testing

/// The pending flow requests (schema version 2) and early responses (version 3) stored with the rollups.
@Suite(.serialized)
struct RollupsPendingTests {
    static let logger = RollupsTestDatabase.logger

    static func request(
        flow: String = "grading",
        topic: String = "learnflow.exercise",
        partition: Int32 = 0,
        offset: Int64,
        key: String = "trace",
        timestampMs: Int64 = recentWindow(minutesAgo: 2) + 1_500,
        deadlineMs: Int64? = nil,
        sequence: UInt64
    ) -> PendingFlowRequest {
        PendingFlowRequest(
            flow: flow,
            topic: topic,
            partition: partition,
            offset: offset,
            correlationKey: key,
            timestampMs: timestampMs,
            windowStartMs: windowStart(ofEventTimeMs: timestampMs),
            deadlineMs: deadlineMs ?? timestampMs + 30_000,
            sequence: sequence
        )
    }

    /// Applies only version 1, as a database created before version 2 existed.
    static func migrateToVersion1(_ connection: PQConnection) throws {
        try connection.execute("CREATE SCHEMA flowmeter")
        try connection.execute(
            """
            CREATE TABLE flowmeter.schema_migrations (
                version integer PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        let version1 = try #require(SchemaMigrator.migrations.first { $0.version == 1 })
        try connection.transaction { transaction in
            for statement in version1.statements { try transaction.execute(statement) }
            try transaction.execute("INSERT INTO flowmeter.schema_migrations (version) VALUES (1)")
        }
    }

    @Test func version2AppliesOnTopOfVersion1AndRerunsAsNoOp() throws {
        try RollupsTestDatabase.withFreshDatabase { url in
            let connection = try PQConnection.connect(url: url, logger: Self.logger)
            defer { connection.close() }
            try Self.migrateToVersion1(connection)
            let writer = RollupWriter(connection: connection, group: "flowmeter", logger: Self.logger)
            // A version-1 writer's data survives the upgrade.
            try connection.execute(
                """
                INSERT INTO flowmeter.consumer_offsets (group_id, topic, partition, next_offset)
                VALUES ('flowmeter', 't', 0, 42)
                """
            )

            let upgrade = try SchemaMigrator.migrate(connection, logger: Self.logger)
            #expect(upgrade == MigrationResult(version: 4, applied: [2, 3, 4]))
            let again = try SchemaMigrator.migrate(connection, logger: Self.logger)
            #expect(again == MigrationResult(version: 4, applied: []))
            #expect(try writer.storedOffsets(topics: ["t"]) == [TopicPartition("t", 0): 42])
            #expect(try writer.loadPending().isEmpty)
            #expect(try writer.loadEarlyResponses().isEmpty)
            #expect(try writer.storedFlowClockMs() == nil)

            let columns = try connection.query("SELECT * FROM flowmeter.pending_flows LIMIT 0").columns.map(\.name)
            #expect(
                columns == [
                    "group_id", "flow", "request_topic", "request_partition", "request_offset", "correlation_key",
                    "request_ts_ms", "window_start", "deadline_ms", "sequence",
                ]
            )
            let primaryKey = try connection.query(
                """
                SELECT array_agg(a.attname ORDER BY k.ord)::text AS columns
                FROM pg_index AS i
                CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k (attnum, ord)
                JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                WHERE i.indrelid = 'flowmeter.pending_flows'::regclass AND i.indisprimary
                """
            )
            #expect(
                try primaryKey[0].string("columns")
                    == "{group_id,request_topic,request_partition,request_offset,flow}"
            )
        }
    }

    @Test func pendingChangesAreAppliedWithTheRollupsAndOffsets() throws {
        try RollupsTestDatabase.withMigratedDatabase { connection, _ in
            let writer = RollupWriter(connection: connection, group: "flowmeter", logger: Self.logger)
            let window = recentWindow(minutesAgo: 2)
            let first = [
                Self.request(offset: 10, key: "k \"quoted\" \\ {brace}, comma", sequence: 0),
                Self.request(flow: "progress", offset: 10, key: "k2", sequence: 1),
                Self.request(
                    flow: "tópico",
                    topic: "learnflow.chat",
                    partition: 3,
                    offset: Int64.max - 1,
                    key: "",
                    timestampMs: window + 59_999,
                    deadlineMs: .max,
                    sequence: UInt64(1) << 40
                ),
            ]
            let counts = try writer.write(
                RollupDelta(events: [EventKey(windowStartMs: window, topic: "t", type: "x"): EventCounts(events: 1)]),
                nextOffsets: [PartitionOffset(topic: "learnflow.exercise", partition: 0, nextOffset: 11)],
                pending: PendingFlowChanges(added: first, flowClockMs: window + 2_000)
            )
            #expect(counts == RollupWriteCounts(events: 1, offsets: 1, pendingAdded: 3))
            #expect(try writer.loadPending() == first)
            #expect(try writer.storedFlowClockMs() == window + 2_000)

            // Deletes and inserts together; an already stored request is left as it is (not counted), and a request
            // listed twice is stored once.
            let added = Self.request(partition: 1, offset: 3, sequence: 2)
            let second = try writer.write(
                RollupDelta(),
                nextOffsets: [PartitionOffset(topic: "learnflow.exercise", partition: 1, nextOffset: 4)],
                pending: PendingFlowChanges(
                    added: [added, first[1], added],
                    removed: [first[0].key, PendingFlowKey(flow: "never", topic: "t", partition: 0, offset: 0)],
                    flowClockMs: window + 3_000
                )
            )
            #expect(second == RollupWriteCounts(offsets: 1, pendingAdded: 1, pendingRemoved: 1))
            #expect(try writer.loadPending() == [first[1], added, first[2]])
            #expect(try writer.storedFlowClockMs() == window + 3_000)

            // A write without a clock keeps the stored one; the default is no pending change at all.
            try writer.write(RollupDelta(), nextOffsets: [])
            try writer.write(RollupDelta(), nextOffsets: [], pending: PendingFlowChanges(removed: [added.key]))
            #expect(try writer.loadPending() == [first[1], first[2]])
            #expect(try writer.storedFlowClockMs() == window + 3_000)

            // Sequences round-trip through bigint by bit pattern.
            let huge = Self.request(offset: 99, sequence: UInt64.max - 1)
            try writer.write(RollupDelta(), nextOffsets: [], pending: PendingFlowChanges(added: [huge]))
            #expect(Set(try writer.loadPending()) == [first[1], first[2], huge])
            try writer.write(RollupDelta(), nextOffsets: [], pending: PendingFlowChanges(removed: [huge.key]))

            // Groups are separate.
            let stranger = RollupWriter(connection: connection, group: "other", logger: Self.logger)
            #expect(try stranger.loadPending().isEmpty)
            #expect(try stranger.storedFlowClockMs() == nil)
            try stranger.write(RollupDelta(), nextOffsets: [], pending: PendingFlowChanges(removed: [first[1].key]))
            #expect(try writer.loadPending() == [first[1], first[2]])
        }
    }

    @Test func aFailedWriteLeavesPendingRequestsUntouched() throws {
        try RollupsTestDatabase.withMigratedDatabase { connection, _ in
            let writer = RollupWriter(connection: connection, group: "flowmeter", logger: Self.logger)
            let stored = [Self.request(offset: 1, sequence: 0), Self.request(offset: 2, sequence: 1)]
            try writer.write(
                RollupDelta(),
                nextOffsets: [PartitionOffset(topic: "t", partition: 0, nextOffset: 3)],
                pending: PendingFlowChanges(added: stored, flowClockMs: 1_000)
            )
            // The offsets statement violates `next_offset >= 0`: neither deletes nor inserts nor the clock stay.
            let error = #expect(throws: PQError.self) {
                try writer.write(
                    RollupDelta(),
                    nextOffsets: [PartitionOffset(topic: "t", partition: 1, nextOffset: -1)],
                    pending: PendingFlowChanges(
                        added: [Self.request(offset: 7, sequence: 2)],
                        removed: [stored[0].key],
                        flowClockMs: 9_000
                    )
                )
            }
            #expect(error?.sqlState == "23514")
            #expect(try writer.loadPending() == stored)
            #expect(try writer.storedFlowClockMs() == 1_000)
            #expect(try writer.storedOffsets(topics: ["t"]) == [TopicPartition("t", 0): 3])
        }
    }

    @Test func anEngineRestoredFromLoadPendingContinuesTheFlows() throws {
        try RollupsTestDatabase.withMigratedDatabase { connection, _ in
            let writer = RollupWriter(connection: connection, group: "flowmeter", logger: Self.logger)
            let analyzers = AnalyzerSet(
                topics: [.name("a"), .name("b")],
                flows: [
                    FlowDefinition(name: "f", from: "a", to: "b", correlation: .header("cid"), timeout: .seconds(60))
                ]
            )
            let window = recentWindow(minutesAgo: 5)
            func feed(_ engine: inout AnalysisEngine, topic: String, offset: Int64, cid: String, at time: Int64) {
                let value = Array("{}".utf8)
                value.withUnsafeBytes { buffer in
                    engine.process(
                        topic: topic,
                        partition: 2,
                        offset: offset,
                        timestampMs: time,
                        timestampType: .createTime,
                        headers: [RecordHeader(name: "cid", string: cid)],
                        key: nil,
                        value: buffer,
                        receivedAtMs: time
                    )
                }
            }
            var engine = AnalysisEngine(analyzers: analyzers)
            feed(&engine, topic: "a", offset: 0, cid: "x", at: window + 1_000)
            feed(&engine, topic: "a", offset: 1, cid: "y", at: window + 2_000)
            feed(&engine, topic: "a", offset: 2, cid: "x", at: window + 3_000)
            feed(&engine, topic: "b", offset: 0, cid: "y", at: window + 4_000)
            let changes = engine.takePendingChanges()
            try writer.write(engine.takeRollupDelta(), nextOffsets: [], pending: changes)
            let loaded = try writer.loadPending()
            #expect(loaded == changes.added)
            #expect(loaded.map(\.offset) == [0, 2])

            var restored = AnalysisEngine(analyzers: analyzers)
            restored.restorePending(loaded, flowClockMs: try #require(try writer.storedFlowClockMs()))
            #expect(restored.pendingFlowRequests == 2)
            #expect(restored.flowClockMs == window + 4_000)
            feed(&restored, topic: "b", offset: 1, cid: "x", at: window + 5_000)
            let delta = restored.takeRollupDelta()
            #expect(delta.flows[FlowKey(windowStartMs: window, flow: "f")]?.completed == 1)
            #expect(delta.flows[FlowKey(windowStartMs: window, flow: "f")]?.latency.max == 4_000)
            try writer.write(delta, nextOffsets: [], pending: restored.takePendingChanges())
            #expect(try writer.loadPending().map(\.offset) == [2])
        }
    }

    static func early(
        flow: String = "grading",
        topic: String = "learnflow.graded",
        partition: Int32 = 0,
        offset: Int64,
        key: String = "trace",
        timestampMs: Int64 = recentWindow(minutesAgo: 2) + 1_500,
        sequence: UInt64
    ) -> EarlyFlowResponse {
        EarlyFlowResponse(
            flow: flow,
            topic: topic,
            partition: partition,
            offset: offset,
            correlationKey: key,
            timestampMs: timestampMs,
            deadlineMs: timestampMs > .max - 30_000 ? .max : timestampMs + 30_000,
            sequence: sequence
        )
    }

    @Test func earlyResponsesAreWrittenWithTheRollupsAndLoadedInOrder() throws {
        try RollupsTestDatabase.withMigratedDatabase { connection, _ in
            let writer = RollupWriter(connection: connection, group: "flowmeter", logger: Self.logger)
            let window = recentWindow(minutesAgo: 2)
            let first = [
                Self.early(offset: 7, key: "a", sequence: 3),
                Self.early(partition: 1, offset: 2, key: "b", sequence: 1),
                Self.early(flow: "progress", offset: 7, key: "a", timestampMs: .max - 1, sequence: 2),
            ]
            let counts = try writer.write(
                RollupDelta(),
                nextOffsets: [PartitionOffset(topic: "learnflow.graded", partition: 0, nextOffset: 8)],
                pending: PendingFlowChanges(
                    added: [Self.request(offset: 4, sequence: 0)],
                    flowClockMs: window + 2_000,
                    earlyAdded: first
                )
            )
            #expect(counts == RollupWriteCounts(offsets: 1, pendingAdded: 1, earlyAdded: 3))
            #expect(try writer.loadEarlyResponses() == [first[1], first[2], first[0]])
            #expect(try writer.loadPending().map(\.offset) == [4])

            // Removed, re-added (left as stored) and added (listed twice, stored once) in one write; another group
            // sees nothing.
            let added = Self.early(offset: 9, key: "c", sequence: 4)
            let second = try writer.write(
                RollupDelta(),
                nextOffsets: [],
                pending: PendingFlowChanges(earlyAdded: [added, first[0], added], earlyRemoved: [first[1].key])
            )
            #expect(second == RollupWriteCounts(earlyAdded: 1, earlyRemoved: 1))
            #expect(try writer.loadEarlyResponses() == [first[2], first[0], added])
            let stranger = RollupWriter(connection: connection, group: "other", logger: Self.logger)
            #expect(try stranger.loadEarlyResponses().isEmpty)

            // A failing write stores none of it.
            #expect(throws: PQError.self) {
                try writer.write(
                    RollupDelta(),
                    nextOffsets: [PartitionOffset(topic: "", partition: 0, nextOffset: -1)],
                    pending: PendingFlowChanges(earlyRemoved: [first[0].key, added.key])
                )
            }
            #expect(try writer.loadEarlyResponses() == [first[2], first[0], added])
        }
    }

    @Test func anEngineRestoredWithEarlyResponsesMatchesTheirRequests() throws {
        try RollupsTestDatabase.withMigratedDatabase { connection, _ in
            let writer = RollupWriter(connection: connection, group: "flowmeter", logger: Self.logger)
            let analyzers = AnalyzerSet(
                topics: [.name("a"), .name("b")],
                flows: [
                    FlowDefinition(name: "f", from: "a", to: "b", correlation: .header("cid"), timeout: .seconds(60))
                ]
            )
            let window = recentWindow(minutesAgo: 5)
            func feed(_ engine: inout AnalysisEngine, topic: String, offset: Int64, cid: String, at time: Int64) {
                let value = Array("{}".utf8)
                value.withUnsafeBytes { buffer in
                    engine.process(
                        topic: topic,
                        partition: 1,
                        offset: offset,
                        timestampMs: time,
                        timestampType: .createTime,
                        headers: [RecordHeader(name: "cid", string: cid)],
                        key: nil,
                        value: buffer,
                        receivedAtMs: time
                    )
                }
            }
            // The responses are read first (a replay): they wait for their requests.
            var engine = AnalysisEngine(analyzers: analyzers)
            feed(&engine, topic: "b", offset: 0, cid: "x", at: window + 4_000)
            feed(&engine, topic: "b", offset: 1, cid: "y", at: window + 5_000)
            feed(&engine, topic: "a", offset: 0, cid: "y", at: window + 2_000)
            let changes = engine.takePendingChanges()
            #expect(changes.earlyAdded.map(\.offset) == [0])
            try writer.write(engine.takeRollupDelta(), nextOffsets: [], pending: changes)
            let loaded = try writer.loadEarlyResponses()
            #expect(loaded == changes.earlyAdded)

            var restored = AnalysisEngine(analyzers: analyzers)
            restored.restorePending(
                try writer.loadPending(),
                flowClockMs: try #require(try writer.storedFlowClockMs()),
                earlyResponses: loaded
            )
            #expect(restored.pendingEarlyResponses == 1)
            feed(&restored, topic: "a", offset: 1, cid: "x", at: window + 1_000)
            let delta = restored.takeRollupDelta()
            #expect(delta.flows[FlowKey(windowStartMs: window, flow: "f")]?.completed == 1)
            #expect(delta.flows[FlowKey(windowStartMs: window, flow: "f")]?.latency.max == 3_000)
            let after = restored.takePendingChanges()
            #expect(after.earlyRemoved == [loaded[0].key])
            try writer.write(delta, nextOffsets: [], pending: after)
            #expect(try writer.loadEarlyResponses().isEmpty)
        }
    }
}
