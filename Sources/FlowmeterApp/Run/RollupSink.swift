import FlowmeterCore
import Foundation
import Kafka
import Logging
import Postgres
import Synchronization

/// PostgreSQL as the intake thread uses it: a connection opened lazily and reopened after a failure, the schema
/// migrated on every (re)connect, and the rollup writer.
///
/// - Important: Blocking, and used only from the intake thread (the rebalance handler runs there too).
final class RollupSink {
    /// The statement timeout of the flush connection: `FLOWMETER_PG_STATEMENT_TIMEOUT` (a duration), else 30 s.
    static let statementTimeoutMs: Int64 = {
        guard let text = ProcessInfo.processInfo.environment["FLOWMETER_PG_STATEMENT_TIMEOUT"],
            let duration = DurationSyntax.parse(text)
        else { return 30_000 }
        let (seconds, attoseconds) = duration.components
        return max(1, seconds * 1000 + attoseconds / 1_000_000_000_000_000)
    }()

    private let url: String
    private let group: String
    private let logger: Logger
    private var connection: PQConnection?
    private var writer: RollupWriter?

    init(url: String, group: String, logger: Logger) {
        self.url = url
        self.group = group
        self.logger = logger
    }

    /// The writer on a live connection, connecting and migrating first if needed.
    func ready() throws(PQError) -> RollupWriter {
        if let writer, let connection, connection.isConnected { return writer }
        reset()
        let connection = try PQConnection.connect(url: url, logger: logger)
        do {
            // A hung statement must not stall intake for long; the flush is retried.
            try connection.execute(
                "SELECT set_config('statement_timeout', $1, false)",
                [.string("\(Self.statementTimeoutMs)")]
            )
            let result = try SchemaMigrator.migrate(connection, logger: logger)
            logger.info("PostgreSQL connected", metadata: ["postgres.schema": "\(result)"])
        } catch {
            connection.close()
            throw error
        }
        let writer = RollupWriter(connection: connection, group: group, logger: logger)
        self.connection = connection
        self.writer = writer
        return writer
    }

    /// Drops the connection; the next ``ready()`` reconnects.
    func reset() {
        connection?.close()
        connection = nil
        writer = nil
    }
}

/// The rollup self-metrics: flush duration, failures, rows written, last success, PostgreSQL reachability,
/// unflushed records and whether intake is paused for back-pressure.
final class FlushMetrics: Sendable {
    struct State {
        var durations = Histogram()
        var failures: Int64 = 0
        var rowsWritten: Int64 = 0
        var lastFlushSeconds: Double = 0
        var postgresUp: Bool?
        var postgresProblem: String?
        var unflushedRecords = 0
        var paused = false
        var resyncing = false
        var repartition: RepartitionFigures?
    }

    /// What the flow repartition topic did (absent without flows or without the topic).
    struct RepartitionFigures: Equatable {
        var routing: Bool
        var shards: Int
        var sent: Int64
        var received: Int64
        var duplicates: Int64
        var invalid: Int64
    }

    func repartition(_ figures: RepartitionFigures) {
        state.withLock { $0.repartition = figures }
    }

    struct Histogram {
        static let bounds = LatencyBuckets.seconds
        var counts = [Int64](repeating: 0, count: bounds.count)
        var count: Int64 = 0
        var sum: Double = 0

        mutating func observe(_ seconds: Double) {
            for (index, bound) in Self.bounds.enumerated() where seconds <= bound { counts[index] += 1 }
            count += 1
            sum += seconds
        }
    }

    let state = Mutex(State())

    func flushed(seconds: Double, rows: Int, at time: Double) {
        state.withLock {
            $0.durations.observe(seconds)
            $0.rowsWritten += Int64(rows)
            $0.lastFlushSeconds = time
            $0.postgresUp = true
            $0.postgresProblem = nil
        }
    }

    func failed(_ problem: String) {
        state.withLock {
            $0.failures += 1
            $0.postgresUp = false
            $0.postgresProblem = problem
        }
    }

    func postgres(up: Bool, problem: String?) {
        state.withLock {
            $0.postgresUp = up
            $0.postgresProblem = up ? nil : problem
        }
    }

    func backlog(unflushed: Int, paused: Bool, resyncing: Bool) {
        state.withLock {
            $0.unflushedRecords = unflushed
            $0.paused = paused
            $0.resyncing = resyncing
        }
    }

    /// Why rollups hold readiness back; empty when they do not.
    func notReadyReasons() -> [String] {
        state.withLock { state in
            guard state.postgresUp != true else { return [] }
            var reason = "PostgreSQL unreachable: \(state.postgresProblem ?? "not connected yet")"
            reason += "; \(state.unflushedRecords) records unflushed"
            if state.paused { reason += "; intake paused until a flush succeeds" }
            if state.resyncing { reason += "; waiting to read stored offsets" }
            return [reason]
        }
    }

    func write(into text: inout String) {
        let state = self.state.withLock { $0 }
        text += "# HELP flowmeter_rollup_flush_seconds Duration of successful rollup flushes to PostgreSQL.\n"
        text += "# TYPE flowmeter_rollup_flush_seconds histogram\n"
        for (index, label) in LatencyBuckets.labels.dropLast().enumerated() {
            text += "flowmeter_rollup_flush_seconds_bucket{le=\"\(label)\"} \(state.durations.counts[index])\n"
        }
        text += "flowmeter_rollup_flush_seconds_bucket{le=\"+Inf\"} \(state.durations.count)\n"
        text += "flowmeter_rollup_flush_seconds_sum \(state.durations.sum)\n"
        text += "flowmeter_rollup_flush_seconds_count \(state.durations.count)\n"
        text += "# HELP flowmeter_rollup_flush_failures_total Rollup flushes that failed (retried with backoff).\n"
        text += "# TYPE flowmeter_rollup_flush_failures_total counter\n"
        text += "flowmeter_rollup_flush_failures_total \(state.failures)\n"
        text += "# HELP flowmeter_rollup_rows_written_total Rows upserted into PostgreSQL by rollup flushes.\n"
        text += "# TYPE flowmeter_rollup_rows_written_total counter\n"
        text += "flowmeter_rollup_rows_written_total \(state.rowsWritten)\n"
        text += "# HELP flowmeter_rollup_last_flush_timestamp_seconds Unix time of the last successful flush.\n"
        text += "# TYPE flowmeter_rollup_last_flush_timestamp_seconds gauge\n"
        text += "flowmeter_rollup_last_flush_timestamp_seconds \(state.lastFlushSeconds)\n"
        text += "# HELP flowmeter_rollup_unflushed_records Records analyzed but not yet flushed to PostgreSQL.\n"
        text += "# TYPE flowmeter_rollup_unflushed_records gauge\n"
        text += "flowmeter_rollup_unflushed_records \(state.unflushedRecords)\n"
        text += "# HELP flowmeter_intake_paused 1 while intake is paused because too much is unflushed.\n"
        text += "# TYPE flowmeter_intake_paused gauge\n"
        text += "flowmeter_intake_paused \(state.paused || state.resyncing ? 1 : 0)\n"
        text += "# HELP flowmeter_postgres_up 1 when the last PostgreSQL operation succeeded.\n"
        text += "# TYPE flowmeter_postgres_up gauge\n"
        text += "flowmeter_postgres_up \(state.postgresUp == true ? 1 : 0)\n"
        guard let figures = state.repartition else { return }
        text += "# HELP flowmeter_flow_repartition_routing 1 while this replica routes flow events through the "
        text += "repartition topic (it reads fewer than all partitions of the flows' topics).\n"
        text += "# TYPE flowmeter_flow_repartition_routing gauge\n"
        text += "flowmeter_flow_repartition_routing \(figures.routing ? 1 : 0)\n"
        text +=
            "# HELP flowmeter_flow_repartition_shards Partitions of the repartition topic this replica correlates.\n"
        text += "# TYPE flowmeter_flow_repartition_shards gauge\n"
        text += "flowmeter_flow_repartition_shards \(figures.shards)\n"
        text += "# HELP flowmeter_flow_repartition_records_total Flow hops written to (sent) and read from the "
        text += "repartition topic: correlated (received), skipped as replays (duplicate) or unreadable (invalid).\n"
        text += "# TYPE flowmeter_flow_repartition_records_total counter\n"
        text += "flowmeter_flow_repartition_records_total{direction=\"sent\"} \(figures.sent)\n"
        text += "flowmeter_flow_repartition_records_total{direction=\"received\"} \(figures.received)\n"
        text += "flowmeter_flow_repartition_records_total{direction=\"duplicate\"} \(figures.duplicates)\n"
        text += "flowmeter_flow_repartition_records_total{direction=\"invalid\"} \(figures.invalid)\n"
    }
}
