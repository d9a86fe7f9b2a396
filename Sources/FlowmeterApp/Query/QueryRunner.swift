import Foundation
public import Logging
public import Postgres

/// Runs `flowmeter query` against the contract views of DESIGN.md 3.4.
///
/// Every statement is parameterized: the range is `$1`, `$2` and each filter is `($n::text is null or col = $n)`.
/// Rows are aggregated over the range, one per group key; latency quantiles come from the sketches merged over the
/// range (`flowmeter.quantile(flowmeter.merge_sketch(sketch), q)`), so they keep the sketch's 1% accuracy whatever
/// the range.
public enum QueryRunner {
    /// Runs `request` and returns its rows.
    ///
    /// - Parameters:
    ///   - request: The kind, the range and the filters.
    ///   - connection: An open connection to a database migrated to ``SchemaMigrator/latestVersion``.
    /// - Returns: The columns and rows; for `events`, also a totals row.
    /// - Throws: A ``PQError`` if the query fails (for instance when the schema is missing).
    public static func run(_ request: QueryRequest, connection: PQConnection) throws(PQError) -> QueryResult {
        let range: [PQValue] = [timestamp(request.since), timestamp(request.until)]
        switch request.kind {
        case .events:
            return try events(connection.query(eventsSQL, range + [text(request.topic)]), request: request)
        case .flows:
            return try flows(connection.query(flowsSQL, range + [text(request.flow)]))
        case .deadletters:
            return try deadLetters(connection.query(deadLettersSQL, range + [text(request.topic)]))
        case .lag:
            return try lag(connection.query(lagSQL, range + [text(request.group), text(request.topic)]))
        }
    }

    /// Connects to PostgreSQL, runs `request` and closes the connection.
    ///
    /// - Parameters:
    ///   - request: The kind, the range and the filters.
    ///   - url: A libpq connection string.
    ///   - logger: Receives the connection's events.
    /// - Returns: The columns and rows.
    /// - Throws: A ``PQError`` if connecting or the query fails; its description never contains the password.
    public static func run(_ request: QueryRequest, url: String, logger: Logger) throws(PQError) -> QueryResult {
        let connection = try PQConnection.connect(url: url, logger: logger)
        defer { connection.close() }
        return try run(request, connection: connection)
    }

    /// A one-line description of a failure, for `error: …`, with a hint when the schema looks missing.
    public static func describe(_ error: PQError) -> String {
        // 42P01 undefined table, 3F000 undefined schema, 42883 undefined function.
        guard let state = error.sqlState, ["42P01", "3F000", "42883"].contains(state) else { return "\(error)" }
        return "\(error) (is the schema there? run `flowmeter migrate` first)"
    }

    // MARK: - events

    static let eventsSQL = """
        select topic, type, sum(events)::int8 as events, sum(bytes)::int8 as bytes
        from flowmeter.event_counts_1m
        where window_start >= $1 and window_start < $2 and ($3::text is null or topic = $3::text)
        group by topic, type
        order by topic, type
        """

    private static func events(_ rows: PQRows, request: QueryRequest) throws(PQError) -> QueryResult {
        let seconds = request.until.timeIntervalSince(request.since)
        var result: [[QueryCell]] = []
        var totalEvents: Int64 = 0
        var totalBytes: Int64 = 0
        for row in rows {
            let events = try row.int64("events") ?? 0
            let bytes = try row.int64("bytes") ?? 0
            totalEvents += events
            totalBytes += bytes
            result.append([
                .text(try row.string("topic") ?? ""), .text(try row.string("type") ?? ""), .integer(events),
                .integer(bytes), .decimal(Double(events) / seconds, places: 2),
            ])
        }
        return QueryResult(
            columns: [
                QueryColumn("topic", numeric: false), QueryColumn("type", numeric: false),
                QueryColumn("events", numeric: true), QueryColumn("bytes", numeric: true),
                QueryColumn("events_per_s", numeric: true),
            ],
            rows: result,
            totals: [
                .text("total"), .text(""), .integer(totalEvents), .integer(totalBytes),
                .decimal(Double(totalEvents) / seconds, places: 2),
            ]
        )
    }

    // MARK: - flows

    static let flowsSQL = """
        select flow, completed, incomplete, negative, evicted,
            flowmeter.quantile(merged, 0.5) as p50_ms,
            flowmeter.quantile(merged, 0.95) as p95_ms,
            flowmeter.quantile(merged, 0.99) as p99_ms,
            case when flowmeter.sketch_count(merged) > 0 then (merged).max_ms end as max_ms
        from (
            select flow, sum(completed)::int8 as completed, sum(incomplete)::int8 as incomplete,
                sum(negative)::int8 as negative, sum(evicted)::int8 as evicted,
                flowmeter.merge_sketch(sketch) as merged
            from flowmeter.flow_latency_1m
            where window_start >= $1 and window_start < $2 and ($3::text is null or flow = $3::text)
            group by flow
        ) as flows
        order by flow
        """

    private static func flows(_ rows: PQRows) throws(PQError) -> QueryResult {
        var result: [[QueryCell]] = []
        for row in rows {
            result.append([
                .text(try row.string("flow") ?? ""),
                integer(try row.int64("completed")), integer(try row.int64("incomplete")),
                integer(try row.int64("negative")), integer(try row.int64("evicted")),
                milliseconds(try row.double("p50_ms")), milliseconds(try row.double("p95_ms")),
                milliseconds(try row.double("p99_ms")), milliseconds(try row.double("max_ms")),
            ])
        }
        return QueryResult(
            columns: [QueryColumn("flow", numeric: false)]
                + ["completed", "incomplete", "negative", "evicted", "p50_ms", "p95_ms", "p99_ms", "max_ms"]
                .map { QueryColumn($0, numeric: true) },
            rows: result
        )
    }

    // MARK: - deadletters

    static let deadLettersSQL = """
        select topic, events, dead_lettered,
            case when events = 0 then null else dead_lettered::float8 / events end as ratio,
            flowmeter.quantile(merged, 0.95) as p95_delay_ms,
            copies
        from (
            select topic, sum(events)::int8 as events, sum(dead_lettered)::int8 as dead_lettered,
                flowmeter.merge_sketch(delay_sketch) as merged, sum(copies)::int8 as copies
            from flowmeter.deadletters_1m
            where window_start >= $1 and window_start < $2 and ($3::text is null or topic = $3::text)
            group by topic
        ) as topics
        -- A dead-letter topic's own copies are events of that topic; it is listed only if something of it was
        -- dead-lettered in turn.
        where dead_lettered > 0
            or not exists (select 1 from flowmeter.rollup_deadletters d where d.dead_letter_topic = topics.topic)
        order by dead_lettered desc, topic
        """

    private static func deadLetters(_ rows: PQRows) throws(PQError) -> QueryResult {
        var result: [[QueryCell]] = []
        for row in rows {
            result.append([
                .text(try row.string("topic") ?? ""), integer(try row.int64("events")),
                integer(try row.int64("dead_lettered")), (try row.double("ratio")).map(QueryCell.ratio) ?? .null,
                milliseconds(try row.double("p95_delay_ms")), integer(try row.int64("copies")),
            ])
        }
        return QueryResult(
            columns: [QueryColumn("topic", numeric: false)]
                + ["events", "dead_lettered", "ratio", "p95_delay_ms", "copies"].map { QueryColumn($0, numeric: true) },
            rows: result
        )
    }

    // MARK: - lag

    static let lagSQL = """
        select distinct on (group_id, topic, partition)
            group_id, topic, partition, committed_offset, log_start_offset, end_offset, lag_messages, lag_seconds,
            status, (extract(epoch from sampled_at) * 1000000)::int8 as sampled_at_us
        from flowmeter.consumer_lag
        where sampled_at >= $1 and sampled_at < $2
            and ($3::text is null or group_id = $3::text) and ($4::text is null or topic = $4::text)
        order by group_id, topic, partition, sampled_at desc
        """

    private static func lag(_ rows: PQRows) throws(PQError) -> QueryResult {
        var result: [[QueryCell]] = []
        for row in rows {
            let sampledAt = try row.int64("sampled_at_us").map { QueryCell.time(date(microseconds: $0)) } ?? .null
            result.append([
                .text(try row.string("group_id") ?? ""), .text(try row.string("topic") ?? ""),
                integer(try row.int64("partition")), integer(try row.int64("committed_offset")),
                integer(try row.int64("log_start_offset")), integer(try row.int64("end_offset")),
                integer(try row.int64("lag_messages")),
                (try row.double("lag_seconds")).map { .decimal($0, places: 1) } ?? .null,
                .text(try row.string("status") ?? ""), sampledAt,
            ])
        }
        return QueryResult(
            columns: [QueryColumn("group_id", numeric: false), QueryColumn("topic", numeric: false)]
                + ["partition", "committed_offset", "log_start_offset", "end_offset", "lag_messages", "lag_seconds"]
                .map { QueryColumn($0, numeric: true) }
                + [QueryColumn("status", numeric: false), QueryColumn("sampled_at", numeric: false)],
            rows: result
        )
    }

    // MARK: - Helpers

    private static func integer(_ value: Int64?) -> QueryCell { value.map(QueryCell.integer) ?? .null }

    private static func milliseconds(_ value: Double?) -> QueryCell { value.map { .decimal($0, places: 1) } ?? .null }

    private static func text(_ value: String?) -> PQValue { value.map(PQValue.string) ?? .null }

    /// `date` as a `timestamptz` parameter, to the microsecond.
    static func timestamp(_ date: Date) -> PQValue {
        .timestamp(microsecondsSinceEpoch: Int64((date.timeIntervalSince1970 * 1_000_000).rounded(.down)))
    }

    private static func date(microseconds: Int64) -> Date {
        Date(timeIntervalSince1970: Double(microseconds / 1_000_000) + Double(microseconds % 1_000_000) / 1_000_000)
    }
}
