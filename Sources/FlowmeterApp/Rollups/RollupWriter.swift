public import FlowmeterCore
public import Foundation
public import Kafka
public import Logging
public import Postgres

/// How far a shard (a partition of the repartition topic) has taken the hops of one source partition: the position
/// (source offset, hop index) of the last hop taken. Hops at or below it are replays (a source re-read after a
/// crash) and are skipped.
public struct RepartitionMark: Sendable, Hashable {
    public struct Key: Sendable, Hashable {
        public var shard: Int32
        public var source: TopicPartition
    }

    public var shard: Int32
    public var source: TopicPartition
    public var offset: Int64
    public var index: UInt16

    public init(shard: Int32, source: TopicPartition, offset: Int64, index: UInt16) {
        self.shard = shard
        self.source = source
        self.offset = offset
        self.index = index
    }

    public var key: Key { Key(shard: shard, source: source) }

    /// The position of the last hop taken.
    public var position: HopPosition { HopPosition(offset: offset, index: index) }
}

/// The offset of the next record to consume in one partition, stored with the rollups it accounts for.
public struct PartitionOffset: Sendable, Hashable, CustomStringConvertible {
    /// The topic.
    public var topic: String
    /// The partition.
    public var partition: Int32
    /// The offset of the first record not yet accounted for in PostgreSQL.
    public var nextOffset: Int64

    /// Creates a partition offset.
    public init(topic: String, partition: Int32, nextOffset: Int64) {
        self.topic = topic
        self.partition = partition
        self.nextOffset = nextOffset
    }

    /// The topic and partition.
    public var topicPartition: TopicPartition { TopicPartition(topic, partition) }

    public var description: String { "\(topic)[\(partition)]@\(nextOffset)" }
}

/// The rows one ``RollupWriter/write(_:nextOffsets:)`` inserted or updated, per table.
public struct RollupWriteCounts: Sendable, Hashable {
    /// Rows of `flowmeter.event_counts_1m`.
    public var events = 0
    /// Rows of `flowmeter.flow_latency_1m`.
    public var flows = 0
    /// Rows behind `flowmeter.deadletters_1m` (one per window, topic and dead-letter topic).
    public var deadLetters = 0
    /// Rows of `flowmeter.invalid_1m`.
    public var invalid = 0
    /// Rows of `flowmeter.consumer_offsets`.
    public var offsets = 0
    /// Rows inserted into `flowmeter.pending_flows` (already stored ones are left as they are).
    public var pendingAdded = 0
    /// Rows deleted from `flowmeter.pending_flows`.
    public var pendingRemoved = 0
    /// Rows inserted into `flowmeter.early_responses` (already stored ones are left as they are).
    public var earlyAdded = 0
    /// Rows deleted from `flowmeter.early_responses`.
    public var earlyRemoved = 0

    /// Creates counts; all zero by default.
    public init(
        events: Int = 0,
        flows: Int = 0,
        deadLetters: Int = 0,
        invalid: Int = 0,
        offsets: Int = 0,
        pendingAdded: Int = 0,
        pendingRemoved: Int = 0,
        earlyAdded: Int = 0,
        earlyRemoved: Int = 0
    ) {
        self.events = events
        self.flows = flows
        self.deadLetters = deadLetters
        self.invalid = invalid
        self.offsets = offsets
        self.pendingAdded = pendingAdded
        self.pendingRemoved = pendingRemoved
        self.earlyAdded = earlyAdded
        self.earlyRemoved = earlyRemoved
    }

    /// All rows (the flow clock row not included).
    public var total: Int {
        events + flows + deadLetters + invalid + offsets + pendingAdded + pendingRemoved + earlyAdded + earlyRemoved
    }
}

/// Writes rollup deltas and consumed offsets to the `flowmeter` schema, exactly once (STYLE.md §3).
///
/// Every ``write(_:nextOffsets:)`` is one transaction: additive upserts of all the delta's rows (counts add,
/// sketches merge exactly in SQL) and the next offset of every partition given. Either all of it is stored or none
/// of it, so a consumer that seeks to ``storedOffsets(for:)`` on assignment neither loses nor double-counts a
/// record, and replicas writing the same keys sum correctly.
///
/// Each table gets one statement per write, whatever the number of rows: the rows travel as array parameters and
/// are expanded with `unnest`, in key order (so concurrent writers lock shared rows in the same order).
///
/// - Important: Every method blocks the calling thread until PostgreSQL answers; call them off the cooperative
///   thread pool. The schema must be at ``SchemaMigrator/latestVersion``.
public final class RollupWriter: Sendable {
    private let connection: PQConnection
    private let group: String
    private let logger: Logger

    /// Creates a writer.
    ///
    /// - Parameters:
    ///   - connection: The connection to write through; the writer does not close it.
    ///   - group: Flowmeter's consumer group, the key of the stored offsets.
    ///   - logger: Receives a debug record per write and per retention run.
    public init(connection: PQConnection, group: String, logger: Logger) {
        self.connection = connection
        self.group = group
        var logger = logger
        logger[metadataKey: RollupLogKeys.group] = "\(group)"
        self.logger = logger
    }

    // MARK: - Writing

    /// Adds `delta` to the rollups, sets the given partitions' next offsets and applies the pending flow request
    /// changes, in one transaction.
    ///
    /// Offsets are set to exactly the values given (not only forward); partitions not listed keep theirs. When a
    /// partition is listed twice, the last entry wins. Pending requests of this writer's group are deleted (those
    /// in `pending.removed`), then inserted (`pending.added`; a request already stored is left as it is), and the
    /// group's flow clock is set to `pending.flowClockMs` unless that is `Int64.min`. Early responses are applied
    /// the same way to `flowmeter.early_responses` (`pending.earlyRemoved` deleted, then `pending.earlyAdded`
    /// inserted).
    ///
    /// - Parameters:
    ///   - delta: The rollup deltas accumulated since the last write.
    ///   - nextOffsets: The next offset of every partition whose records `delta` accounts for.
    ///   - pending: The engine's ``AnalysisEngine/takePendingChanges()`` taken with `delta`.
    /// - Returns: The rows inserted or updated per table.
    /// - Throws: A ``PQError`` if any statement fails; then nothing was stored (neither rollups nor offsets nor
    ///   pending requests or early responses). A deadlock (`40P01`) or serialization failure is ``PQError/isRetriable``: write the
    ///   same delta and changes again.
    @discardableResult
    public func write(
        _ delta: RollupDelta,
        nextOffsets: [PartitionOffset],
        pending: PendingFlowChanges = .empty,
        marks: [RepartitionMark] = []
    ) throws(PQError) -> RollupWriteCounts {
        let started = ContinuousClock.now
        var statements = RollupStatements(delta: delta, nextOffsets: nextOffsets, pending: pending, group: group)
        statements.marks = RollupStatements.marks(marks, group: group)
        let counts = try runTransaction(connection) { transaction throws(PQError) in
            var counts = RollupWriteCounts()
            if let events = statements.events { counts.events = try transaction.execute(events.sql, events.params) }
            if let flows = statements.flows { counts.flows = try transaction.execute(flows.sql, flows.params) }
            if let deadLetters = statements.deadLetters {
                counts.deadLetters = try transaction.execute(deadLetters.sql, deadLetters.params)
            }
            if let invalid = statements.invalid {
                counts.invalid = try transaction.execute(invalid.sql, invalid.params)
            }
            if let offsets = statements.offsets {
                counts.offsets = try transaction.execute(offsets.sql, offsets.params)
            }
            if let removed = statements.pendingRemoved {
                counts.pendingRemoved = try transaction.execute(removed.sql, removed.params)
            }
            if let added = statements.pendingAdded {
                counts.pendingAdded = try transaction.execute(added.sql, added.params)
            }
            if let removed = statements.earlyRemoved {
                counts.earlyRemoved = try transaction.execute(removed.sql, removed.params)
            }
            if let added = statements.earlyAdded {
                counts.earlyAdded = try transaction.execute(added.sql, added.params)
            }
            if let clock = statements.flowClock { try transaction.execute(clock.sql, clock.params) }
            if let marks = statements.marks { try transaction.execute(marks.sql, marks.params) }
            return counts
        }
        logger.debug(
            "Wrote rollups",
            metadata: [
                RollupLogKeys.rows: "\(counts.total)",
                "rollup.duration": "\(ContinuousClock.now - started)",
                "rollup.rows_by_table": """
                events=\(counts.events) flows=\(counts.flows) dead_letters=\(counts.deadLetters) \
                invalid=\(counts.invalid) offsets=\(counts.offsets) pending_added=\(counts.pendingAdded) \
                pending_removed=\(counts.pendingRemoved) early_added=\(counts.earlyAdded) \
                early_removed=\(counts.earlyRemoved)
                """,
            ]
        )
        return counts
    }

    // MARK: - Offsets

    /// The stored next offsets of this writer's group for the given partitions.
    ///
    /// - Parameter partitions: The partitions to look up, e.g. those just assigned.
    /// - Returns: The next offset of each partition that has one; partitions without one are absent.
    /// - Throws: A ``PQError`` if the query fails.
    public func storedOffsets(for partitions: [TopicPartition]) throws(PQError) -> [TopicPartition: Int64] {
        guard !partitions.isEmpty else { return [:] }
        let rows = try connection.query(
            """
            SELECT o.topic, o.partition, o.next_offset
            FROM flowmeter.consumer_offsets AS o
            JOIN unnest($2::text[], $3::int4[]) AS p (topic, partition)
                ON p.topic = o.topic AND p.partition = o.partition
            WHERE o.group_id = $1::text
            """,
            [
                .string(group),
                .string(SQLArray.text(partitions.map(\.topic))),
                .string(SQLArray.integers(partitions.map { Int64($0.partition) })),
            ]
        )
        return try offsets(in: rows)
    }

    /// The stored next offsets of this writer's group for every partition of the given topics.
    ///
    /// - Parameter topics: The topics.
    /// - Returns: The next offset of each stored partition of those topics.
    /// - Throws: A ``PQError`` if the query fails.
    public func storedOffsets(topics: [String]) throws(PQError) -> [TopicPartition: Int64] {
        guard !topics.isEmpty else { return [:] }
        let rows = try connection.query(
            """
            SELECT topic, partition, next_offset
            FROM flowmeter.consumer_offsets
            WHERE group_id = $1::text AND topic = ANY ($2::text[])
            """,
            [.string(group), .string(SQLArray.text(topics))]
        )
        return try offsets(in: rows)
    }

    private func offsets(in rows: PQRows) throws(PQError) -> [TopicPartition: Int64] {
        var offsets: [TopicPartition: Int64] = [:]
        for row in rows {
            guard let topic = try row.string(0), let partition = try row.int64(1), let offset = try row.int64(2)
            else { continue }
            offsets[TopicPartition(topic, Int32(partition))] = offset
        }
        return offsets
    }

    // MARK: - Repartition marks

    /// The stored de-duplication marks of the given shards (repartition-topic partitions) of this writer's group.
    public func repartitionMarks(shards: [Int32]) throws(PQError) -> [RepartitionMark] {
        guard !shards.isEmpty else { return [] }
        let rows = try connection.query(
            """
            SELECT shard, source_topic, source_partition, last_offset, last_index
            FROM flowmeter.repartition_marks
            WHERE group_id = $1::text AND shard = ANY ($2::int4[])
            """,
            [.string(group), .string(SQLArray.integers(shards.map { Int64($0) }))]
        )
        var marks: [RepartitionMark] = []
        for row in rows {
            guard let shard = try row.int64(0), let topic = try row.string(1), let partition = try row.int64(2),
                let offset = try row.int64(3), let index = try row.int64(4)
            else { continue }
            marks.append(
                RepartitionMark(
                    shard: Int32(truncatingIfNeeded: shard),
                    source: TopicPartition(topic, Int32(truncatingIfNeeded: partition)),
                    offset: offset,
                    index: UInt16(truncatingIfNeeded: index)
                )
            )
        }
        return marks
    }

    // MARK: - Pending flow requests

    /// The pending flow requests stored for this writer's group, in insertion order: pass them to
    /// ``AnalysisEngine/restorePending(_:flowClockMs:earlyResponses:)`` with ``storedFlowClockMs()`` before consuming.
    ///
    /// - Returns: The stored requests, by sequence.
    /// - Throws: A ``PQError`` if the query fails.
    public func loadPending() throws(PQError) -> [PendingFlowRequest] {
        let rows = try connection.query(
            """
            SELECT flow, request_topic, request_partition, request_offset, correlation_key, request_ts_ms,
                (extract(epoch FROM window_start) * 1000)::int8 AS window_ms, deadline_ms, sequence
            FROM flowmeter.pending_flows
            WHERE group_id = $1::text
            ORDER BY sequence, request_topic, request_partition, request_offset, flow
            """,
            [.string(group)]
        )
        var requests: [PendingFlowRequest] = []
        for row in rows {
            guard let flow = try row.string(0), let topic = try row.string(1), let partition = try row.int64(2),
                let offset = try row.int64(3), let key = try row.string(4), let timestamp = try row.int64(5),
                let window = try row.int64(6), let deadline = try row.int64(7), let sequence = try row.int64(8)
            else { continue }
            requests.append(
                PendingFlowRequest(
                    flow: flow,
                    topic: topic,
                    partition: Int32(truncatingIfNeeded: partition),
                    offset: offset,
                    correlationKey: key,
                    timestampMs: timestamp,
                    windowStartMs: window,
                    deadlineMs: deadline,
                    sequence: UInt64(bitPattern: sequence)
                )
            )
        }
        return requests
    }

    /// The early flow responses stored for this writer's group, in insertion order: pass them to
    /// ``AnalysisEngine/restorePending(_:flowClockMs:earlyResponses:)`` with ``loadPending()``.
    ///
    /// - Returns: The stored early responses, by sequence.
    /// - Throws: A ``PQError`` if the query fails.
    public func loadEarlyResponses() throws(PQError) -> [EarlyFlowResponse] {
        let rows = try connection.query(
            """
            SELECT flow, response_topic, response_partition, response_offset, correlation_key, response_ts_ms,
                deadline_ms, sequence
            FROM flowmeter.early_responses
            WHERE group_id = $1::text
            ORDER BY sequence, response_topic, response_partition, response_offset, flow
            """,
            [.string(group)]
        )
        var responses: [EarlyFlowResponse] = []
        for row in rows {
            guard let flow = try row.string(0), let topic = try row.string(1), let partition = try row.int64(2),
                let offset = try row.int64(3), let key = try row.string(4), let timestamp = try row.int64(5),
                let deadline = try row.int64(6), let sequence = try row.int64(7)
            else { continue }
            responses.append(
                EarlyFlowResponse(
                    flow: flow,
                    topic: topic,
                    partition: Int32(truncatingIfNeeded: partition),
                    offset: offset,
                    correlationKey: key,
                    timestampMs: timestamp,
                    deadlineMs: deadline,
                    sequence: UInt64(bitPattern: sequence)
                )
            )
        }
        return responses
    }

    /// The flow clock stored for this writer's group by the last write that had one.
    ///
    /// - Returns: The clock in milliseconds, or `nil` if none is stored.
    /// - Throws: A ``PQError`` if the query fails.
    public func storedFlowClockMs() throws(PQError) -> Int64? {
        let rows = try connection.query(
            "SELECT clock_ms FROM flowmeter.flow_clock WHERE group_id = $1::text",
            [.string(group)]
        )
        guard let row = rows.first else { return nil }
        return try row.int64(0)
    }

    // MARK: - Retention

    /// The tables retention applies to and their time column. `consumer_offsets` is not among them: an idle
    /// partition's offset stays valid however old it is.
    /// One batched delete per retained table: whole statements, so no SQL is ever assembled from strings.
    static let retentionDeletes: [(table: String, sql: String)] = [
        (
            "flowmeter.rollup_events",
            """
            DELETE FROM flowmeter.rollup_events WHERE ctid IN (SELECT ctid FROM flowmeter.rollup_events WHERE window_start < $1 LIMIT $2)
            """
        ),
        (
            "flowmeter.rollup_flows",
            """
            DELETE FROM flowmeter.rollup_flows WHERE ctid IN (SELECT ctid FROM flowmeter.rollup_flows WHERE window_start < $1 LIMIT $2)
            """
        ),
        (
            "flowmeter.rollup_deadletters",
            """
            DELETE FROM flowmeter.rollup_deadletters WHERE ctid IN (SELECT ctid FROM flowmeter.rollup_deadletters WHERE window_start < $1 LIMIT $2)
            """
        ),
        (
            "flowmeter.rollup_invalid",
            """
            DELETE FROM flowmeter.rollup_invalid WHERE ctid IN (SELECT ctid FROM flowmeter.rollup_invalid WHERE window_start < $1 LIMIT $2)
            """
        ),
        (
            "flowmeter.consumer_lag",
            """
            DELETE FROM flowmeter.consumer_lag WHERE ctid IN (SELECT ctid FROM flowmeter.consumer_lag WHERE sampled_at < $1 LIMIT $2)
            """
        ),
    ]

    /// Deletes rollup rows whose window starts before `cutoff`, and lag samples taken before it, in small batches.
    ///
    /// Each batch is its own statement (and transaction), deleting at most `batchSize` rows, so retention never
    /// holds many row locks or a long transaction next to the writers.
    ///
    /// - Parameters:
    ///   - cutoff: Rows strictly older than this are deleted.
    ///   - batchSize: The most rows one statement deletes; at least 1.
    /// - Returns: The number of rows deleted, over all tables.
    /// - Throws: A ``PQError`` if a statement fails; batches deleted before it stay deleted.
    @discardableResult
    public func deleteOlderThan(_ cutoff: Date, batchSize: Int = 1000) throws(PQError) -> Int {
        precondition(batchSize > 0, "batchSize must be positive")
        let microseconds = Int64((cutoff.timeIntervalSince1970 * 1_000_000).rounded(.down))
        var total = 0
        for (table, sql) in Self.retentionDeletes {
            var deleted = 0
            while true {
                let count = try connection.execute(
                    sql,
                    [.timestamp(microsecondsSinceEpoch: microseconds), .int(batchSize)]
                )
                deleted += count
                if count < batchSize { break }
            }
            if deleted > 0 {
                logger.debug(
                    "Deleted old rows",
                    metadata: [RollupLogKeys.table: "\(table)", RollupLogKeys.rows: "\(deleted)"]
                )
            }
            total += deleted
        }
        return total
    }
}

// MARK: - Statements

/// A SQL command and its parameters.
struct SQLCommand {
    var sql: String
    var params: [PQValue]
}

/// The upserts of one write: one command per table, nil when the table gets no rows.
struct RollupStatements {
    var events: SQLCommand?
    var flows: SQLCommand?
    var deadLetters: SQLCommand?
    var invalid: SQLCommand?
    var offsets: SQLCommand?
    var pendingRemoved: SQLCommand?
    var pendingAdded: SQLCommand?
    var earlyRemoved: SQLCommand?
    var earlyAdded: SQLCommand?
    var flowClock: SQLCommand?
    var marks: SQLCommand?

    init(delta: RollupDelta, nextOffsets: [PartitionOffset], pending: PendingFlowChanges = .empty, group: String) {
        events = Self.events(delta.events)
        flows = Self.flows(delta.flows)
        deadLetters = Self.deadLetters(delta.deadLetters)
        invalid = Self.invalid(delta.invalid)
        offsets = Self.offsets(nextOffsets, group: group)
        pendingRemoved = Self.removeKeys(pending.removed, sql: Self.deletePendingSQL, group: group)
        pendingAdded = Self.pendingAdded(pending.added, group: group)
        earlyRemoved = Self.removeKeys(pending.earlyRemoved, sql: Self.deleteEarlySQL, group: group)
        earlyAdded = Self.earlyAdded(pending.earlyAdded, group: group)
        flowClock = Self.flowClock(pending.flowClockMs, group: group)
    }

    static let deletePendingSQL = """
        DELETE FROM flowmeter.pending_flows AS r
        USING unnest($2::text[], $3::int4[], $4::int8[], $5::text[]) AS u (topic, partition, "offset", flow)
        WHERE r.group_id = $1::text AND r.request_topic = u.topic AND r.request_partition = u.partition
            AND r.request_offset = u."offset" AND r.flow = u.flow
        """

    static let deleteEarlySQL = """
        DELETE FROM flowmeter.early_responses AS r
        USING unnest($2::text[], $3::int4[], $4::int8[], $5::text[]) AS u (topic, partition, "offset", flow)
        WHERE r.group_id = $1::text AND r.response_topic = u.topic AND r.response_partition = u.partition
            AND r.response_offset = u."offset" AND r.flow = u.flow
        """

    /// Deletes rows of pending requests or early responses by their record identity (topic, partition, offset,
    /// flow); `sql` is one of the two statements above, the values are parameters.
    private static func removeKeys(_ removed: [PendingFlowKey], sql: String, group: String) -> SQLCommand? {
        guard !removed.isEmpty else { return nil }
        let rows = removed.sorted {
            ($0.topic, $0.partition, $0.offset, $0.flow) < ($1.topic, $1.partition, $1.offset, $1.flow)
        }
        return SQLCommand(
            sql: sql,
            params: [
                .string(group),
                .string(SQLArray.text(rows.map(\.topic))),
                .string(SQLArray.integers(rows.map { Int64($0.partition) })),
                .string(SQLArray.integers(rows.map(\.offset))),
                .string(SQLArray.text(rows.map(\.flow))),
            ]
        )
    }

    /// `rows` sorted by their stored identity (topic, partition, offset, flow), the first of equal ones kept: the
    /// inserts skip identities already stored with `NOT EXISTS`, which (unlike `ON CONFLICT DO NOTHING`, whose
    /// speculative insertion doubled the cost per row) does not see the statement's own rows.
    private static func uniqueByIdentity<Row>(
        _ rows: [Row],
        _ identity: (Row) -> (String, Int32, Int64, String)
    ) -> [Row] {
        let sorted = rows.sorted { identity($0) < identity($1) }
        var unique: [Row] = []
        unique.reserveCapacity(sorted.count)
        for row in sorted where unique.last.map({ identity($0) != identity(row) }) ?? true {
            unique.append(row)
        }
        return unique
    }

    private static func pendingAdded(_ added: [PendingFlowRequest], group: String) -> SQLCommand? {
        guard !added.isEmpty else { return nil }
        let rows = uniqueByIdentity(added) { ($0.topic, $0.partition, $0.offset, $0.flow) }
        return SQLCommand(
            sql: """
                INSERT INTO flowmeter.pending_flows (
                    group_id, flow, request_topic, request_partition, request_offset, correlation_key,
                    request_ts_ms, window_start, deadline_ms, sequence
                )
                SELECT $1::text, u.flow, u.topic, u.partition, u."offset", u.correlation_key, u.ts_ms,
                    timestamptz 'epoch' + u.window_ms * interval '1 millisecond', u.deadline_ms, u.sequence
                FROM unnest(
                    $2::text[], $3::text[], $4::int4[], $5::int8[], $6::text[], $7::int8[], $8::int8[], $9::int8[],
                    $10::int8[]
                ) WITH ORDINALITY AS u (
                    flow, topic, partition, "offset", correlation_key, ts_ms, window_ms, deadline_ms, sequence, ord
                )
                WHERE NOT EXISTS (
                    SELECT 1 FROM flowmeter.pending_flows AS r
                    WHERE r.group_id = $1::text AND r.request_topic = u.topic AND r.request_partition = u.partition
                        AND r.request_offset = u."offset" AND r.flow = u.flow
                )
                ORDER BY u.ord
                """,
            params: [
                .string(group),
                .string(SQLArray.text(rows.map(\.flow))),
                .string(SQLArray.text(rows.map(\.topic))),
                .string(SQLArray.integers(rows.map { Int64($0.partition) })),
                .string(SQLArray.integers(rows.map(\.offset))),
                .string(SQLArray.text(rows.map(\.correlationKey))),
                .string(SQLArray.integers(rows.map(\.timestampMs))),
                .string(SQLArray.integers(rows.map(\.windowStartMs))),
                .string(SQLArray.integers(rows.map(\.deadlineMs))),
                .string(SQLArray.integers(rows.map { Int64(bitPattern: $0.sequence) })),
            ]
        )
    }

    private static func earlyAdded(_ added: [EarlyFlowResponse], group: String) -> SQLCommand? {
        guard !added.isEmpty else { return nil }
        let rows = uniqueByIdentity(added) { ($0.topic, $0.partition, $0.offset, $0.flow) }
        return SQLCommand(
            sql: """
                INSERT INTO flowmeter.early_responses (
                    group_id, flow, response_topic, response_partition, response_offset, correlation_key,
                    response_ts_ms, deadline_ms, sequence
                )
                SELECT $1::text, u.flow, u.topic, u.partition, u."offset", u.correlation_key, u.ts_ms, u.deadline_ms,
                    u.sequence
                FROM unnest(
                    $2::text[], $3::text[], $4::int4[], $5::int8[], $6::text[], $7::int8[], $8::int8[], $9::int8[]
                ) WITH ORDINALITY AS u (
                    flow, topic, partition, "offset", correlation_key, ts_ms, deadline_ms, sequence, ord
                )
                WHERE NOT EXISTS (
                    SELECT 1 FROM flowmeter.early_responses AS r
                    WHERE r.group_id = $1::text AND r.response_topic = u.topic AND r.response_partition = u.partition
                        AND r.response_offset = u."offset" AND r.flow = u.flow
                )
                ORDER BY u.ord
                """,
            params: [
                .string(group),
                .string(SQLArray.text(rows.map(\.flow))),
                .string(SQLArray.text(rows.map(\.topic))),
                .string(SQLArray.integers(rows.map { Int64($0.partition) })),
                .string(SQLArray.integers(rows.map(\.offset))),
                .string(SQLArray.text(rows.map(\.correlationKey))),
                .string(SQLArray.integers(rows.map(\.timestampMs))),
                .string(SQLArray.integers(rows.map(\.deadlineMs))),
                .string(SQLArray.integers(rows.map { Int64(bitPattern: $0.sequence) })),
            ]
        )
    }

    private static func flowClock(_ clockMs: Int64, group: String) -> SQLCommand? {
        guard clockMs != .min else { return nil }
        return SQLCommand(
            sql: """
                INSERT INTO flowmeter.flow_clock AS t (group_id, clock_ms, updated_at)
                VALUES ($1::text, $2::int8, now())
                ON CONFLICT (group_id) DO UPDATE SET clock_ms = excluded.clock_ms, updated_at = excluded.updated_at
                """,
            params: [.string(group), .int64(clockMs)]
        )
    }

    private static func events(_ events: [EventKey: EventCounts]) -> SQLCommand? {
        guard !events.isEmpty else { return nil }
        let rows = events.sorted {
            ($0.key.windowStartMs, $0.key.topic, $0.key.type) < ($1.key.windowStartMs, $1.key.topic, $1.key.type)
        }
        return SQLCommand(
            sql: """
                INSERT INTO flowmeter.rollup_events AS t (window_start, topic, type, events, bytes)
                SELECT timestamptz 'epoch' + u.window_ms * interval '1 millisecond', u.topic, u.type, u.events, u.bytes
                FROM unnest($1::int8[], $2::text[], $3::text[], $4::int8[], $5::int8[])
                    WITH ORDINALITY AS u (window_ms, topic, type, events, bytes, ord)
                ORDER BY u.ord
                ON CONFLICT (window_start, topic, type) DO UPDATE
                SET events = t.events + excluded.events, bytes = t.bytes + excluded.bytes
                """,
            params: [
                .string(SQLArray.integers(rows.map(\.key.windowStartMs))),
                .string(SQLArray.text(rows.map(\.key.topic))),
                .string(SQLArray.text(rows.map(\.key.type))),
                .string(SQLArray.integers(rows.map(\.value.events))),
                .string(SQLArray.integers(rows.map(\.value.bytes))),
            ]
        )
    }

    private static func flows(_ flows: [FlowKey: FlowCounts]) -> SQLCommand? {
        guard !flows.isEmpty else { return nil }
        let rows = flows.sorted { ($0.key.windowStartMs, $0.key.flow) < ($1.key.windowStartMs, $1.key.flow) }
        let sketches = SketchColumns(rows.map(\.value.latency))
        return SQLCommand(
            sql: """
                WITH input AS (
                    SELECT u.*, (sum(u.length) OVER (ORDER BY u.ord) - u.length)::int4 AS start
                    FROM unnest(
                        $1::int8[], $2::text[], $3::int8[], $4::int8[], $5::int8[], $6::int8[],
                        $7::int4[], $8::int8[], $9::float8[], $10::float8[], $11::int4[]
                    ) WITH ORDINALITY AS u (
                        window_ms, flow, completed, incomplete, negative, evicted,
                        bucket_offset, zero_count, sum_ms, max_ms, length, ord
                    )
                )
                INSERT INTO flowmeter.rollup_flows AS t
                    (window_start, flow, completed, incomplete, negative, evicted, latency)
                SELECT
                    timestamptz 'epoch' + i.window_ms * interval '1 millisecond',
                    i.flow, i.completed, i.incomplete, i.negative, i.evicted,
                    flowmeter.sketch_add(NULL, ROW(
                        i.bucket_offset, i.zero_count, i.sum_ms, i.max_ms,
                        ($12::int8[])[i.start + 1:i.start + i.length]::int4[]
                    )::flowmeter.sketch)
                FROM input AS i
                ORDER BY i.ord
                ON CONFLICT (window_start, flow) DO UPDATE
                SET completed = t.completed + excluded.completed,
                    incomplete = t.incomplete + excluded.incomplete,
                    negative = t.negative + excluded.negative,
                    evicted = t.evicted + excluded.evicted,
                    latency = flowmeter.sketch_add(t.latency, excluded.latency)
                """,
            params: [
                .string(SQLArray.integers(rows.map(\.key.windowStartMs))),
                .string(SQLArray.text(rows.map(\.key.flow))),
                .string(SQLArray.integers(rows.map(\.value.completed))),
                .string(SQLArray.integers(rows.map(\.value.incomplete))),
                .string(SQLArray.integers(rows.map(\.value.negative))),
                .string(SQLArray.integers(rows.map(\.value.evicted))),
            ] + sketches.params
        )
    }

    private static func deadLetters(_ deadLetters: [DeadLetterKey: DeadLetterCounts]) -> SQLCommand? {
        guard !deadLetters.isEmpty else { return nil }
        let rows = deadLetters.sorted {
            ($0.key.windowStartMs, $0.key.topic, $0.key.deadLetterTopic)
                < ($1.key.windowStartMs, $1.key.topic, $1.key.deadLetterTopic)
        }
        let sketches = SketchColumns(rows.map(\.value.delay))
        return SQLCommand(
            sql: """
                WITH input AS (
                    SELECT u.*, (sum(u.length) OVER (ORDER BY u.ord) - u.length)::int4 AS start
                    FROM unnest(
                        $1::int8[], $2::text[], $3::text[], $4::int8[], $5::int8[],
                        $6::int4[], $7::int8[], $8::float8[], $9::float8[], $10::int4[]
                    ) WITH ORDINALITY AS u (
                        window_ms, topic, dead_letter_topic, copies, distinct_originals,
                        bucket_offset, zero_count, sum_ms, max_ms, length, ord
                    )
                )
                INSERT INTO flowmeter.rollup_deadletters AS t
                    (window_start, topic, dead_letter_topic, copies, distinct_originals, delay)
                SELECT
                    timestamptz 'epoch' + i.window_ms * interval '1 millisecond',
                    i.topic, i.dead_letter_topic, i.copies, i.distinct_originals,
                    flowmeter.sketch_add(NULL, ROW(
                        i.bucket_offset, i.zero_count, i.sum_ms, i.max_ms,
                        ($11::int8[])[i.start + 1:i.start + i.length]::int4[]
                    )::flowmeter.sketch)
                FROM input AS i
                ORDER BY i.ord
                ON CONFLICT (window_start, topic, dead_letter_topic) DO UPDATE
                SET copies = t.copies + excluded.copies,
                    distinct_originals = t.distinct_originals + excluded.distinct_originals,
                    delay = flowmeter.sketch_add(t.delay, excluded.delay)
                """,
            params: [
                .string(SQLArray.integers(rows.map(\.key.windowStartMs))),
                .string(SQLArray.text(rows.map(\.key.topic))),
                .string(SQLArray.text(rows.map(\.key.deadLetterTopic))),
                .string(SQLArray.integers(rows.map(\.value.copies))),
                .string(SQLArray.integers(rows.map(\.value.distinctOriginals))),
            ] + sketches.params
        )
    }

    private static func invalid(_ invalid: [InvalidKey: Int64]) -> SQLCommand? {
        guard !invalid.isEmpty else { return nil }
        let rows = invalid.sorted {
            ($0.key.windowStartMs, $0.key.topic, $0.key.reason.rawValue)
                < ($1.key.windowStartMs, $1.key.topic, $1.key.reason.rawValue)
        }
        return SQLCommand(
            sql: """
                INSERT INTO flowmeter.rollup_invalid AS t (window_start, topic, reason, events)
                SELECT timestamptz 'epoch' + u.window_ms * interval '1 millisecond', u.topic, u.reason, u.events
                FROM unnest($1::int8[], $2::text[], $3::text[], $4::int8[])
                    WITH ORDINALITY AS u (window_ms, topic, reason, events, ord)
                ORDER BY u.ord
                ON CONFLICT (window_start, topic, reason) DO UPDATE SET events = t.events + excluded.events
                """,
            params: [
                .string(SQLArray.integers(rows.map(\.key.windowStartMs))),
                .string(SQLArray.text(rows.map(\.key.topic))),
                .string(SQLArray.text(rows.map(\.key.reason.rawValue))),
                .string(SQLArray.integers(rows.map(\.value))),
            ]
        )
    }

    /// Raises the stored de-duplication marks of the repartition topic (never lowers them).
    static func marks(_ marks: [RepartitionMark], group: String) -> SQLCommand? {
        guard !marks.isEmpty else { return nil }
        var latest: [RepartitionMark.Key: RepartitionMark] = [:]
        for mark in marks {
            if let known = latest[mark.key], known.position >= mark.position { continue }
            latest[mark.key] = mark
        }
        let rows = latest.values.sorted { ($0.shard, $0.source) < ($1.shard, $1.source) }
        return SQLCommand(
            sql: """
                INSERT INTO flowmeter.repartition_marks AS t (
                    group_id, shard, source_topic, source_partition, last_offset, last_index
                )
                SELECT $1::text, u.shard, u.topic, u.partition, u.last_offset, u.last_index
                FROM unnest($2::int4[], $3::text[], $4::int4[], $5::int8[], $6::int4[])
                    WITH ORDINALITY AS u (shard, topic, partition, last_offset, last_index, ord)
                ORDER BY u.ord
                ON CONFLICT (group_id, shard, source_topic, source_partition) DO UPDATE
                SET last_offset = excluded.last_offset, last_index = excluded.last_index
                WHERE (excluded.last_offset, excluded.last_index) > (t.last_offset, t.last_index)
                """,
            params: [
                .string(group),
                .string(SQLArray.integers(rows.map { Int64($0.shard) })),
                .string(SQLArray.text(rows.map(\.source.topic))),
                .string(SQLArray.integers(rows.map { Int64($0.source.partition) })),
                .string(SQLArray.integers(rows.map(\.offset))),
                .string(SQLArray.integers(rows.map { Int64($0.index) })),
            ]
        )
    }

    private static func offsets(_ nextOffsets: [PartitionOffset], group: String) -> SQLCommand? {
        var latest: [TopicPartition: Int64] = [:]
        for offset in nextOffsets { latest[offset.topicPartition] = offset.nextOffset }
        guard !latest.isEmpty else { return nil }
        let rows = latest.sorted { $0.key < $1.key }
        return SQLCommand(
            sql: """
                INSERT INTO flowmeter.consumer_offsets AS t (group_id, topic, partition, next_offset, updated_at)
                SELECT $1::text, u.topic, u.partition, u.next_offset, now()
                FROM unnest($2::text[], $3::int4[], $4::int8[])
                    WITH ORDINALITY AS u (topic, partition, next_offset, ord)
                ORDER BY u.ord
                ON CONFLICT (group_id, topic, partition) DO UPDATE
                SET next_offset = excluded.next_offset, updated_at = excluded.updated_at
                """,
            params: [
                .string(group),
                .string(SQLArray.text(rows.map(\.key.topic))),
                .string(SQLArray.integers(rows.map { Int64($0.key.partition) })),
                .string(SQLArray.integers(rows.map(\.value))),
            ]
        )
    }
}

/// Sketches as parallel array parameters: offsets, zero counts, sums, maxima, bucket counts per sketch, and all
/// bucket counts concatenated (SQL arrays must be rectangular, so the counts travel flat with their lengths).
struct SketchColumns {
    var params: [PQValue]

    init(_ sketches: [LatencySketch]) {
        var flat: [Int64] = []
        for sketch in sketches { flat.append(contentsOf: sketch.counts) }
        params = [
            .string(SQLArray.integers(sketches.map { Int64($0.offset) })),
            .string(SQLArray.integers(sketches.map(\.zeroCount))),
            .string(SQLArray.doubles(sketches.map(\.sum))),
            .string(SQLArray.doubles(sketches.map(\.max))),
            .string(SQLArray.integers(sketches.map { Int64($0.counts.count) })),
            .string(SQLArray.integers(flat)),
        ]
    }
}

/// PostgreSQL array literals for array parameters (sent as one text parameter each, cast in SQL).
///
/// Built as bytes in one buffer (a flush of a backlog sends arrays of 100,000 elements: building them from one small
/// `String` per element was a sixth of the intake thread's time in a backfill).
enum SQLArray {
    /// `{1,2,3}`.
    static func integers(_ values: [Int64]) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(2 + values.count * 12)
        bytes.append(UInt8(ascii: "{"))
        for (index, value) in values.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            appendDecimal(value, to: &bytes)
        }
        bytes.append(UInt8(ascii: "}"))
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `{1.5,2e-05}`; every finite `Double` reads back exactly (`float8` input is correctly rounded).
    static func doubles(_ values: [Double]) -> String {
        "{" + values.map(text(of:)).joined(separator: ",") + "}"
    }

    /// `{"a","b \"c\""}`: every element quoted, with `"` and `\` escaped.
    static func text(_ values: [String]) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(2 + values.reduce(0) { $0 + $1.utf8.count + 3 })
        bytes.append(UInt8(ascii: "{"))
        for (index, value) in values.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            bytes.append(UInt8(ascii: "\""))
            for byte in value.utf8 {
                if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { bytes.append(UInt8(ascii: "\\")) }
                bytes.append(byte)
            }
            bytes.append(UInt8(ascii: "\""))
        }
        bytes.append(UInt8(ascii: "}"))
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func text(of value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value < 0 ? "-Infinity" : "Infinity" }
        return String(value)
    }

    /// Appends the decimal digits of `value` (with `-` when negative).
    private static func appendDecimal(_ value: Int64, to bytes: inout [UInt8]) {
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        let start = bytes.count
        repeat {
            bytes.append(UInt8(ascii: "0") + UInt8(truncatingIfNeeded: magnitude % 10))
            magnitude /= 10
        } while magnitude > 0
        bytes[start...].reverse()
    }
}
