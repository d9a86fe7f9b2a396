public import Logging
public import Postgres

/// One version of the `flowmeter` schema: SQL commands applied together in one transaction.
public struct SchemaMigration: Sendable {
    /// The version this migration brings the schema to; versions start at 1 and increase by 1.
    public let version: Int
    /// What the migration does, for logs.
    public let summary: String
    /// The commands, each a single SQL statement (libpq's extended protocol runs one command at a time).
    public let statements: [String]
}

/// What ``SchemaMigrator/migrate(_:logger:)`` did.
public struct MigrationResult: Sendable, Hashable, CustomStringConvertible {
    /// The schema's version afterwards.
    public let version: Int
    /// The versions this call applied, in order; empty if the schema was already up to date.
    public let applied: [Int]

    /// Creates a result.
    public init(version: Int, applied: [Int]) {
        self.version = version
        self.applied = applied
    }

    /// E.g. `schema flowmeter at version 1 (applied: 1)` or `schema flowmeter at version 1 (already up to date)`.
    public var description: String {
        let detail =
            applied.isEmpty ? "already up to date" : "applied: \(applied.map(String.init).joined(separator: ", "))"
        return "schema flowmeter at version \(version) (\(detail))"
    }
}

/// Creates and upgrades the `flowmeter` schema (DESIGN.md 3.4).
///
/// Versioned and idempotent: `flowmeter.schema_migrations` records every applied version, and each missing one is
/// applied in a transaction of its own together with its record. Safe to run from several replicas at once: the
/// whole run holds a session-level advisory lock on ``advisoryLockKey``, so concurrent callers wait for each other
/// and the later ones find nothing to do.
///
/// ## The sketch format
///
/// A latency sketch is the composite type `flowmeter.sketch`
/// `(bucket_offset integer, zero_count bigint, sum_ms float8, max_ms float8, counts integer[])`: the dense bucket
/// counts of `LatencySketch` (γ = 1.01/0.99; `counts[k]`, 1-based, counts bucket index `bucket_offset + k − 1`,
/// which reports `2γ^i/(γ+1)` ms), the count of values below 1 ms, and the exact sum and maximum. At most 1000
/// buckets of 4 bytes, so at most 4080 bytes stored. `flowmeter.merge_sketch(sketch)` is an exact aggregate (counts
/// add per bucket index, sums add, maxima take the larger; above 1000 buckets the lowest fold into the lowest kept
/// one, as in Swift) and returns `flowmeter.merged_sketch`, the same layout with `bigint` counts so that merges over
/// any range cannot overflow. `flowmeter.quantile(sketch or merged_sketch, q)` returns milliseconds by Swift's rule:
/// rank `⌊q·(count−1)⌋`, 0 inside the zero bucket, else `min(2γ^i/(γ+1), max_ms)`; NULL when empty or `q` is
/// outside 0…1.
public enum SchemaMigrator {
    /// The key of the advisory lock held while migrating: the bytes of `flowmetr` as a big-endian `bigint`.
    public static let advisoryLockKey: Int64 = 7_380_396_448_080_557_170

    /// The migrations, in version order.
    public static let migrations: [SchemaMigration] = [
        SchemaMigration(version: 1, summary: "rollup tables, views, sketch type and functions", statements: version1),
        SchemaMigration(version: 2, summary: "pending flow requests and the flow clock", statements: version2),
        SchemaMigration(version: 3, summary: "early flow responses", statements: version3),
        SchemaMigration(version: 4, summary: "repartition-topic de-duplication marks", statements: version4),
    ]

    /// The newest version.
    public static var latestVersion: Int { migrations.last?.version ?? 0 }

    /// Connects to PostgreSQL, brings the `flowmeter` schema to ``latestVersion`` and closes the connection.
    ///
    /// - Parameters:
    ///   - url: A libpq connection string.
    ///   - logger: Receives connection events and one record per applied version.
    /// - Returns: The version afterwards and the versions applied.
    /// - Throws: A ``PQError`` if connecting or a command fails.
    public static func migrate(url: String, logger: Logger) throws(PQError) -> MigrationResult {
        let connection = try PQConnection.connect(url: url, logger: logger)
        defer { connection.close() }
        return try migrate(connection, logger: logger)
    }

    /// Brings the `flowmeter` schema to ``latestVersion``.
    ///
    /// Takes a session-level advisory lock on ``advisoryLockKey`` (waiting for any other migrating session), creates
    /// schema `flowmeter` and `flowmeter.schema_migrations(version, applied_at)` if missing, then applies each
    /// missing version in its own transaction, and releases the lock.
    ///
    /// - Parameters:
    ///   - connection: An open connection, not inside a transaction; it is used exclusively during the call.
    ///   - logger: Receives one record per applied version.
    /// - Returns: The version afterwards and the versions applied.
    /// - Throws: A ``PQError`` if a command fails; versions applied before the failure stay applied.
    @discardableResult
    public static func migrate(_ connection: PQConnection, logger: Logger) throws(PQError) -> MigrationResult {
        try connection.execute("SELECT pg_advisory_lock($1)", [.int64(advisoryLockKey)])
        defer {
            do {
                try connection.execute("SELECT pg_advisory_unlock($1)", [.int64(advisoryLockKey)])
            } catch {
                // The lock is released with the session anyway.
                logger.debug("Could not release the migration lock", metadata: [RollupLogKeys.error: "\(error)"])
            }
        }
        // Checked first rather than with IF NOT EXISTS, whose notices would be logged on every start.
        let existing = try connection.query(
            """
            SELECT to_regnamespace('flowmeter') IS NOT NULL AS schema,
                to_regclass('flowmeter.schema_migrations') IS NOT NULL AS migrations
            """
        )
        if try existing[0].bool("schema") != true {
            try connection.execute("CREATE SCHEMA flowmeter")
        }
        if try existing[0].bool("migrations") != true {
            try connection.execute(
                """
                CREATE TABLE flowmeter.schema_migrations (
                    version integer PRIMARY KEY,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """
            )
        }
        let rows = try connection.query("SELECT version FROM flowmeter.schema_migrations")
        var present = Set<Int64>()
        for row in rows {
            if let version = try row.int64(0) { present.insert(version) }
        }
        var applied: [Int] = []
        for migration in migrations where !present.contains(Int64(migration.version)) {
            try runTransaction(connection) { transaction throws(PQError) in
                for statement in migration.statements {
                    try transaction.execute(statement)
                }
                try transaction.execute(
                    "INSERT INTO flowmeter.schema_migrations (version) VALUES ($1)",
                    [.int(migration.version)]
                )
            }
            logger.info(
                "Applied a schema migration",
                metadata: [
                    RollupLogKeys.schemaVersion: "\(migration.version)",
                    RollupLogKeys.summary: "\(migration.summary)",
                ]
            )
            applied.append(migration.version)
        }
        let version = max(present.map { Int($0) }.max() ?? 0, applied.last ?? 0)
        return MigrationResult(version: version, applied: applied)
    }
}

/// Metadata keys the rollup storage logs under.
enum RollupLogKeys {
    static let error = "rollups.error"
    static let schemaVersion = "rollups.schema_version"
    static let summary = "rollups.summary"
    static let group = "rollups.group"
    static let table = "rollups.table"
    static let rows = "rollups.rows"
}

/// Runs `body` in a transaction of `connection`, keeping the error type: the bridge throws only ``PQError``.
func runTransaction<T>(
    _ connection: PQConnection,
    _ body: (PQTransaction) throws(PQError) -> T
) throws(PQError) -> T {
    do {
        return try connection.transaction { transaction in try body(transaction) }
    } catch let error as PQError {
        throw error
    } catch {
        preconditionFailure("PQConnection.transaction threw a non-PQError: \(error)")
    }
}

// MARK: - Version 1

/// Version 1: the sketch types and functions, the rollup tables, the offsets and lag tables, and the contract views.
private let version1: [String] = [
    """
    create type flowmeter.sketch as (
        bucket_offset integer,
        zero_count bigint,
        sum_ms double precision,
        max_ms double precision,
        counts integer[]
    )
    """,
    """
    comment on type flowmeter.sketch is
        'A LatencySketch as stored in one rollup row (at most 4 KiB): logarithmic buckets, '
        'gamma = 1.01/0.99; counts[k] (1-based) counts bucket index bucket_offset + k - 1, '
        'which reports 2*gamma^i/(gamma+1) ms; zero_count counts values below 1 ms; '
        'sum_ms and max_ms are exact. At most 1000 dense buckets.'
    """,
    """
    create type flowmeter.merged_sketch as (
        bucket_offset integer,
        zero_count bigint,
        sum_ms double precision,
        max_ms double precision,
        counts bigint[]
    )
    """,
    """
    comment on type flowmeter.merged_sketch is
        'The result of flowmeter.merge_sketch: a flowmeter.sketch with bigint counts, '
        'so merges over any range cannot overflow.'
    """,
    """
    create function flowmeter.widen_sketch(s flowmeter.sketch) returns flowmeter.merged_sketch
    language sql immutable strict parallel safe
    return row(s.bucket_offset, s.zero_count, s.sum_ms, s.max_ms, s.counts::bigint[])
        ::flowmeter.merged_sketch
    """,
    """
    create function flowmeter.sketch_accumulate(
        state flowmeter.merged_sketch,
        input_offset integer,
        input_zero bigint,
        input_sum double precision,
        input_max double precision,
        input_counts bigint[]
    ) returns flowmeter.merged_sketch
    language plpgsql immutable parallel safe
    as $$
    declare
        counts bigint[];
        state_offset integer;
        state_length integer;
        input_length integer := coalesce(array_length(input_counts, 1), 0);
        position integer;
    begin
        if state is null then
            return row(
                case when input_length = 0 then 0 else input_offset end,
                input_zero, input_sum, input_max,
                case when input_length = 0 then '{}'::bigint[] else input_counts end
            )::flowmeter.merged_sketch;
        end if;
        counts := state.counts;
        state_offset := state.bucket_offset;
        state_length := coalesce(array_length(counts, 1), 0);
        if input_length > 0 then
            if state_length = 0 then
                counts := input_counts;
                state_offset := input_offset;
            else
                if input_offset < state_offset then
                    counts := array_fill(0::bigint, array[state_offset - input_offset]) || counts;
                    state_offset := input_offset;
                    state_length := array_length(counts, 1);
                end if;
                if input_offset + input_length > state_offset + state_length then
                    counts := counts || array_fill(
                        0::bigint, array[input_offset + input_length - state_offset - state_length]
                    );
                end if;
                for position in 1 .. input_length loop
                    if input_counts[position] <> 0 then
                        counts[input_offset - state_offset + position] :=
                            counts[input_offset - state_offset + position] + input_counts[position];
                    end if;
                end loop;
            end if;
        end if;
        return row(
            state_offset,
            state.zero_count + input_zero,
            state.sum_ms + input_sum,
            greatest(state.max_ms, input_max),
            counts
        )::flowmeter.merged_sketch;
    end
    $$
    """,
    """
    create function flowmeter.normalize_sketch(s flowmeter.merged_sketch) returns flowmeter.merged_sketch
    language plpgsql immutable strict parallel safe
    as $$
    declare
        first_nonzero integer;
        last_nonzero integer;
        length integer := coalesce(array_length(s.counts, 1), 0);
        position integer;
        folded bigint := 0;
        lowest integer;
        highest integer;
    begin
        for position in 1 .. length loop
            if s.counts[position] <> 0 then
                if first_nonzero is null then first_nonzero := position; end if;
                last_nonzero := position;
            end if;
        end loop;
        if first_nonzero is null then
            return row(0, s.zero_count, s.sum_ms, s.max_ms, '{}'::bigint[])::flowmeter.merged_sketch;
        end if;
        highest := s.bucket_offset + last_nonzero - 1;
        lowest := s.bucket_offset + first_nonzero - 1;
        if highest - lowest + 1 <= 1000 then
            return row(lowest, s.zero_count, s.sum_ms, s.max_ms, s.counts[first_nonzero:last_nonzero])
                ::flowmeter.merged_sketch;
        end if;
        -- More than 1000 buckets: fold the lowest into the lowest kept one, as LatencySketch does.
        lowest := highest - 999;
        for position in first_nonzero .. lowest - s.bucket_offset + 1 loop
            folded := folded + s.counts[position];
        end loop;
        return row(
            lowest, s.zero_count, s.sum_ms, s.max_ms,
            array[folded] || s.counts[lowest - s.bucket_offset + 2:last_nonzero]
        )::flowmeter.merged_sketch;
    end
    $$
    """,
    """
    create function flowmeter.sketch_add(a flowmeter.sketch, b flowmeter.sketch) returns flowmeter.sketch
    language sql immutable parallel safe
    return (
        select row(m.bucket_offset, m.zero_count, m.sum_ms, m.max_ms, m.counts::integer[])::flowmeter.sketch
        from flowmeter.normalize_sketch(
            flowmeter.sketch_accumulate(
                flowmeter.widen_sketch(a),
                b.bucket_offset, b.zero_count, b.sum_ms, b.max_ms, b.counts::bigint[]
            )
        ) as m
        where m.bucket_offset is not null
    )
    """,
    """
    create function flowmeter.merge_sketch_step(state flowmeter.merged_sketch, input flowmeter.sketch)
    returns flowmeter.merged_sketch
    language sql immutable parallel safe
    return case
        when input is null then state
        else flowmeter.sketch_accumulate(
            state, input.bucket_offset, input.zero_count, input.sum_ms, input.max_ms, input.counts::bigint[]
        )
    end
    """,
    """
    create function flowmeter.merge_sketch_step(
        state flowmeter.merged_sketch, input flowmeter.merged_sketch
    ) returns flowmeter.merged_sketch
    language sql immutable parallel safe
    return case
        when input is null then state
        else flowmeter.sketch_accumulate(
            state, input.bucket_offset, input.zero_count, input.sum_ms, input.max_ms, input.counts
        )
    end
    """,
    """
    create function flowmeter.merge_sketch_combine(a flowmeter.merged_sketch, b flowmeter.merged_sketch)
    returns flowmeter.merged_sketch
    language sql immutable parallel safe
    return case
        when a is null then b
        when b is null then a
        else flowmeter.sketch_accumulate(a, b.bucket_offset, b.zero_count, b.sum_ms, b.max_ms, b.counts)
    end
    """,
    """
    create aggregate flowmeter.merge_sketch(flowmeter.sketch) (
        sfunc = flowmeter.merge_sketch_step,
        stype = flowmeter.merged_sketch,
        finalfunc = flowmeter.normalize_sketch,
        combinefunc = flowmeter.merge_sketch_combine,
        parallel = safe
    )
    """,
    """
    create aggregate flowmeter.merge_sketch(flowmeter.merged_sketch) (
        sfunc = flowmeter.merge_sketch_step,
        stype = flowmeter.merged_sketch,
        finalfunc = flowmeter.normalize_sketch,
        combinefunc = flowmeter.merge_sketch_combine,
        parallel = safe
    )
    """,
    """
    create function flowmeter.quantile(s flowmeter.merged_sketch, q double precision)
    returns double precision
    language plpgsql immutable strict parallel safe
    as $$
    declare
        gamma constant double precision := (1 + 0.01::double precision) / (1 - 0.01::double precision);
        total bigint := s.zero_count;
        rank bigint;
        seen bigint := s.zero_count;
        length integer := coalesce(array_length(s.counts, 1), 0);
        position integer;
    begin
        for position in 1 .. length loop
            total := total + s.counts[position];
        end loop;
        -- NaN sorts above every number in PostgreSQL, so q > 1 also rejects NaN.
        if total <= 0 or q < 0 or q > 1 then
            return null;
        end if;
        rank := floor(q * (total - 1)::double precision)::bigint;
        if rank < s.zero_count then
            return 0;
        end if;
        for position in 1 .. length loop
            seen := seen + s.counts[position];
            if seen > rank then
                return least(
                    2 * power(gamma, (s.bucket_offset + position - 1)::double precision) / (gamma + 1),
                    s.max_ms
                );
            end if;
        end loop;
        return s.max_ms;
    end
    $$
    """,
    """
    create function flowmeter.quantile(s flowmeter.sketch, q double precision) returns double precision
    language sql immutable strict parallel safe
    return flowmeter.quantile(flowmeter.widen_sketch(s), q)
    """,
    """
    create function flowmeter.sketch_count(s flowmeter.merged_sketch) returns bigint
    language sql immutable strict parallel safe
    return s.zero_count + coalesce((select sum(c) from unnest(s.counts) as c), 0)::bigint
    """,
    """
    create function flowmeter.sketch_count(s flowmeter.sketch) returns bigint
    language sql immutable strict parallel safe
    return flowmeter.sketch_count(flowmeter.widen_sketch(s))
    """,
    """
    create table flowmeter.rollup_events (
        window_start timestamptz not null,
        topic text not null,
        type text not null,
        events bigint not null check (events >= 0),
        bytes bigint not null check (bytes >= 0),
        primary key (window_start, topic, type)
    )
    """,
    """
    create index rollup_events_topic on flowmeter.rollup_events (topic, window_start)
    """,
    """
    create table flowmeter.rollup_flows (
        window_start timestamptz not null,
        flow text not null,
        completed bigint not null check (completed >= 0),
        incomplete bigint not null check (incomplete >= 0),
        negative bigint not null check (negative >= 0),
        evicted bigint not null check (evicted >= 0),
        latency flowmeter.sketch not null,
        primary key (window_start, flow)
    )
    """,
    """
    create index rollup_flows_flow on flowmeter.rollup_flows (flow, window_start)
    """,
    """
    create table flowmeter.rollup_deadletters (
        window_start timestamptz not null,
        topic text not null,
        dead_letter_topic text not null,
        copies bigint not null check (copies >= 0),
        distinct_originals bigint not null check (distinct_originals >= 0),
        delay flowmeter.sketch not null,
        primary key (window_start, topic, dead_letter_topic)
    )
    """,
    """
    create index rollup_deadletters_topic on flowmeter.rollup_deadletters (topic, window_start)
    """,
    """
    create table flowmeter.rollup_invalid (
        window_start timestamptz not null,
        topic text not null,
        reason text not null,
        events bigint not null check (events >= 0),
        primary key (window_start, topic, reason)
    )
    """,
    """
    create table flowmeter.consumer_offsets (
        group_id text not null,
        topic text not null,
        partition integer not null check (partition >= 0),
        next_offset bigint not null check (next_offset >= 0),
        updated_at timestamptz not null default now(),
        primary key (group_id, topic, partition)
    )
    """,
    """
    create table flowmeter.consumer_lag (
        sampled_at timestamptz not null,
        group_id text not null,
        topic text not null,
        partition integer not null,
        committed_offset bigint,
        log_start_offset bigint not null,
        end_offset bigint not null,
        lag_messages bigint,
        lag_seconds double precision,
        status text not null
    )
    """,
    """
    create index consumer_lag_group_sampled on flowmeter.consumer_lag (group_id, sampled_at)
    """,
    """
    create index consumer_lag_sampled on flowmeter.consumer_lag (sampled_at)
    """,
    """
    create view flowmeter.event_counts_1m as
    select window_start, topic, type, events, bytes
    from flowmeter.rollup_events
    """,
    """
    create view flowmeter.flow_latency_1m as
    select
        window_start,
        flow,
        completed,
        incomplete,
        flowmeter.quantile(latency, 0.5) as p50_ms,
        flowmeter.quantile(latency, 0.95) as p95_ms,
        flowmeter.quantile(latency, 0.99) as p99_ms,
        case when flowmeter.sketch_count(latency) > 0 then (latency).max_ms end as max_ms,
        latency as sketch,
        negative,
        evicted
    from flowmeter.rollup_flows
    """,
    """
    create view flowmeter.deadletters_1m as
    select
        window_start,
        topic,
        events,
        dead_lettered,
        case when events = 0 then null else dead_lettered::double precision / events end as ratio,
        flowmeter.quantile(delay_sketch, 0.95) as p95_delay_ms,
        delay_sketch,
        copies
    from (
        select
            window_start,
            topic,
            sum(events)::bigint as events,
            sum(dead_lettered)::bigint as dead_lettered,
            flowmeter.merge_sketch(delay) as delay_sketch,
            sum(copies)::bigint as copies
        from (
            select window_start, topic, events, 0 as dead_lettered, 0 as copies, null::flowmeter.sketch as delay
            from flowmeter.rollup_events
            union all
            select window_start, topic, 0, distinct_originals, copies, delay
            from flowmeter.rollup_deadletters
        ) as facts
        group by window_start, topic
    ) as windows
    """,
    """
    comment on view flowmeter.deadletters_1m is
        'Per minute of the original record timestamp and original topic: every (window_start, topic) that has '
        'events or dead letters. events = records of the topic in the window (all types); dead_lettered = distinct '
        'originals over all its dead-letter topics; ratio = dead_lettered / events, NULL when events = 0 and 0 when '
        'nothing was dead-lettered; delay_sketch (time to dead-letter) is NULL without dead letters. Sum events and '
        'dead_lettered over a range for the ratio of the range.'
    """,
    """
    comment on view flowmeter.flow_latency_1m is
        'Per minute of the request record timestamp and flow: completed and incomplete requests, percentiles and '
        'maximum of the completed requests latency in ms (NULL without completed requests), and the sketch; '
        'negative (response stamped before the request) and evicted (memory bound) follow the contract columns.'
    """,
    """
    comment on function flowmeter.quantile(flowmeter.merged_sketch, double precision) is
        'The q-quantile (0..1) in milliseconds: rank floor(q*(count-1)), within 1% of the exact value; '
        'NULL for an empty sketch or q outside 0..1.'
    """,
    """
    create view flowmeter.invalid_1m as
    select window_start, topic, reason, events
    from flowmeter.rollup_invalid
    """,
]

// MARK: - Version 2

/// Version 2: the flow requests pending at the last write and the flow clock, per consumer group, so that a
/// restarted analyzer resumes flow correlation where the stored offsets resume consumption.
private let version2: [String] = [
    """
    create table flowmeter.pending_flows (
        group_id text not null,
        flow text not null,
        request_topic text not null,
        request_partition integer not null,
        request_offset bigint not null,
        correlation_key text not null,
        request_ts_ms bigint not null,
        window_start timestamptz not null,
        deadline_ms bigint not null,
        sequence bigint not null,
        primary key (group_id, request_topic, request_partition, request_offset, flow)
    )
    """,
    """
    comment on table flowmeter.pending_flows is
        'Flow requests consumed (their offset is stored) whose response had not arrived at the last write, per '
        'consumer group. Written in the same transaction as the rollups and offsets; read back on start. '
        'deadline_ms is the flow-clock time of expiry; sequence orders the requests (FIFO per correlation key).'
    """,
    """
    create table flowmeter.flow_clock (
        group_id text primary key,
        clock_ms bigint not null,
        updated_at timestamptz not null default now()
    )
    """,
    """
    comment on table flowmeter.flow_clock is
        'The analyzer flow clock (largest record timestamp seen, in ms) at the last write, per consumer group: '
        'restored with flowmeter.pending_flows so that expiry resumes exactly.'
    """,
]

// MARK: - Version 3

/// Version 3: the flow responses analyzed before their request (replay reads request and response partitions in
/// parallel) and still waiting for it at the last write, per consumer group.
private let version3: [String] = [
    """
    create table flowmeter.early_responses (
        group_id text not null,
        flow text not null,
        response_topic text not null,
        response_partition integer not null,
        response_offset bigint not null,
        correlation_key text not null,
        response_ts_ms bigint not null,
        deadline_ms bigint not null,
        sequence bigint not null,
        primary key (group_id, response_topic, response_partition, response_offset, flow)
    )
    """,
    """
    comment on table flowmeter.early_responses is
        'Flow responses consumed (their offset is stored) before any request of their flow with their '
        'correlation key, still waiting for it at the last write, per consumer group. Written in the same '
        'transaction as the rollups, offsets and pending_flows; read back on start. deadline_ms is the flow-clock '
        'time at which the response is dropped; sequence orders the responses (FIFO per correlation key).'
    """,
]

// MARK: - Version 4

/// Version 4: how far each shard of the repartition topic (flows across replicas) has taken each source
/// partition's hops, so that hops written again by a replica that re-reads a source partition after a crash are
/// skipped.
private let version4: [String] = [
    """
    create table flowmeter.repartition_marks (
        group_id text not null,
        shard integer not null,
        source_topic text not null,
        source_partition integer not null,
        last_offset bigint not null,
        last_index integer not null,
        primary key (group_id, shard, source_topic, source_partition)
    )
    """,
    """
    comment on table flowmeter.repartition_marks is
        'Per consumer group, repartition-topic partition (shard) and source partition: the position (source '
        'offset, hop index within the record) of the last flow hop the shard took. Written in the same transaction '
        'as the rollups, offsets and pending_flows; hops at or below it are replays and are skipped.'
    """,
]
