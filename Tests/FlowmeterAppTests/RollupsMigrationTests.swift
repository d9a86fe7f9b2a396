import FlowmeterApp
import Foundation
import Postgres
import Testing

@Suite(.serialized)
struct RollupsMigrationTests {
    @Test func migratesFromEmptyAndRerunsAsNoOp() throws {
        try RollupsTestDatabase.withFreshDatabase { url in
            let connection = try PQConnection.connect(url: url, logger: RollupsTestDatabase.logger)
            defer { connection.close() }

            let first = try SchemaMigrator.migrate(connection, logger: RollupsTestDatabase.logger)
            #expect(first == MigrationResult(version: 4, applied: [1, 2, 3, 4]))
            #expect(first.description == "schema flowmeter at version 4 (applied: 1, 2, 3, 4)")
            #expect(SchemaMigrator.latestVersion == 4)

            let second = try SchemaMigrator.migrate(connection, logger: RollupsTestDatabase.logger)
            #expect(second == MigrationResult(version: 4, applied: []))
            #expect(second.description == "schema flowmeter at version 4 (already up to date)")

            let versions = try connection.query("SELECT version FROM flowmeter.schema_migrations ORDER BY version")
            #expect(try versions.map { try $0.int64(0) } == [1, 2, 3, 4])

            for relation in [
                "flowmeter.event_counts_1m", "flowmeter.flow_latency_1m", "flowmeter.deadletters_1m",
                "flowmeter.consumer_lag", "flowmeter.invalid_1m", "flowmeter.consumer_offsets",
                "flowmeter.pending_flows", "flowmeter.flow_clock", "flowmeter.early_responses",
                "flowmeter.repartition_marks",
            ] {
                let found = try connection.query("SELECT to_regclass($1) IS NOT NULL AS found", [.string(relation)])
                #expect(try found[0].bool("found") == true, "\(relation) missing")
            }
            for function in [
                "flowmeter.quantile(flowmeter.sketch, float8)", "flowmeter.quantile(flowmeter.merged_sketch, float8)",
                "flowmeter.merge_sketch(flowmeter.sketch)", "flowmeter.merge_sketch(flowmeter.merged_sketch)",
            ] {
                let found = try connection.query(
                    "SELECT to_regprocedure($1) IS NOT NULL AS found",
                    [.string(function)]
                )
                #expect(try found[0].bool("found") == true, "\(function) missing")
            }
        }
    }

    @Test func viewsHaveTheContractColumns() throws {
        try RollupsTestDatabase.withMigratedDatabase { connection, _ in
            let expected: [String: [String]] = [
                "flowmeter.event_counts_1m": ["window_start", "topic", "type", "events", "bytes"],
                "flowmeter.flow_latency_1m": [
                    "window_start", "flow", "completed", "incomplete", "p50_ms", "p95_ms", "p99_ms", "max_ms", "sketch",
                ],
                "flowmeter.deadletters_1m": [
                    "window_start", "topic", "events", "dead_lettered", "ratio", "p95_delay_ms", "delay_sketch",
                ],
                "flowmeter.consumer_lag": [
                    "sampled_at", "group_id", "topic", "partition", "committed_offset", "log_start_offset",
                    "end_offset", "lag_messages", "lag_seconds", "status",
                ],
                "flowmeter.invalid_1m": ["window_start", "topic", "reason", "events"],
            ]
            for (relation, columns) in expected {
                let rows = try connection.query("SELECT * FROM \(relation) LIMIT 0")
                #expect(Array(rows.columns.map(\.name).prefix(columns.count)) == columns, "\(relation)")
            }
            let lagIndex = try connection.query(
                """
                SELECT count(*) AS n FROM pg_indexes
                WHERE schemaname = 'flowmeter' AND tablename = 'consumer_lag'
                    AND indexdef LIKE '%(group_id, sampled_at)%'
                """
            )
            #expect(try lagIndex[0].int64("n") == 1)
        }
    }

    @Test func concurrentMigrationsBothSucceedAndApplyOnce() throws {
        try RollupsTestDatabase.withFreshDatabase { url in
            let connections = try (0..<2).map { _ in
                try PQConnection.connect(url: url, logger: RollupsTestDatabase.logger)
            }
            defer { for connection in connections { connection.close() } }
            let bodies: [@Sendable () throws -> MigrationResult] = connections.map { connection in
                { try SchemaMigrator.migrate(connection, logger: RollupsTestDatabase.logger) }
            }
            let results = onThreads(bodies)
            let outcomes = try results.map { try $0.get() }
            #expect(outcomes.allSatisfy { $0.version == 4 })
            #expect(outcomes.flatMap(\.applied) == [1, 2, 3, 4])

            let versions = try connections[0].query("SELECT version FROM flowmeter.schema_migrations ORDER BY version")
            #expect(try versions.map { try $0.int64(0) } == [1, 2, 3, 4])
        }
    }
}
