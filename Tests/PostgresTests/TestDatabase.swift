import Foundation
import Logging
import Postgres
import Synchronization
import Testing

/// The server the tests run against, from `FLOWMETER_TEST_POSTGRES_URL`.
enum TestDatabase {
    static let environmentKey = "FLOWMETER_TEST_POSTGRES_URL"

    /// Thrown (failing the test) when no server is configured: the tests never skip.
    struct MissingServer: Error, CustomStringConvertible {
        var description: String {
            "\(TestDatabase.environmentKey) is not set. These tests need a real PostgreSQL: start one with "
                + "`scripts/postgres.sh start /tmp/fm-pg` and run "
                + "`export \(TestDatabase.environmentKey)=$(scripts/postgres.sh url /tmp/fm-pg)`."
        }
    }

    /// The test server's URL.
    static func url() throws -> String {
        guard let url = ProcessInfo.processInfo.environment[environmentKey], !url.isEmpty else {
            throw MissingServer()
        }
        return url
    }

    /// The parts of a `postgresql://user:password@host:port/database` URL.
    struct URLParts {
        var user: String
        var password: String
        var host: String
        var port: String
        var database: String

        func url(password: String? = nil, port: String? = nil, query: String = "") -> String {
            "postgresql://\(user):\(password ?? self.password)@\(host):\(port ?? self.port)/\(database)\(query)"
        }

        func keywordValue(password: String? = nil) -> String {
            "host=\(host) port=\(port) user=\(user) password=\(password ?? self.password) dbname=\(database)"
        }
    }

    static func urlParts() throws -> URLParts {
        let url = try self.url()
        let pattern = /postgres(?:ql)?:\/\/([^:@\/]+):([^@\/]*)@([^:\/]+):(\d+)\/([^?]+)/
        let match = try #require(
            try pattern.wholeMatch(in: url.split(separator: "?").first.map(String.init) ?? url),
            "\(environmentKey) must look like postgresql://user:password@host:port/database"
        )
        return URLParts(
            user: String(match.1),
            password: String(match.2),
            host: String(match.3),
            port: String(match.4),
            database: String(match.5)
        )
    }

    static func connect(logger: Logger = TestLog().logger) throws -> PQConnection {
        try PQConnection.connect(url: url(), logger: logger)
    }

    /// Runs `body` with a connection whose `search_path` is a fresh schema, dropped afterwards.
    static func withSchema<T>(
        logger: Logger = TestLog().logger,
        _ body: (PQConnection, String) throws -> T
    ) throws -> T {
        let connection = try connect(logger: logger)
        let schema = "pgtest_" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
        try connection.execute("CREATE SCHEMA \(schema)")
        try connection.execute("SET search_path TO \(schema)")
        defer {
            // The test may have broken the connection on purpose: drop the schema on a fresh one.
            if let cleanup = try? connect() {
                _ = try? cleanup.execute("DROP SCHEMA \(schema) CASCADE")
                cleanup.close()
            }
            connection.close()
        }
        return try body(connection, schema)
    }
}

/// A log handler that keeps every record, to inspect what the bridge logs.
final class TestLog: Sendable {
    struct Record: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: Logger.Metadata
    }

    private let storage = Mutex<[Record]>([])

    var records: [Record] { storage.withLock { $0 } }

    var logger: Logger {
        var logger = Logger(label: "flowmeter.postgres.tests") { _ in Handler(log: self) }
        logger.logLevel = .trace
        return logger
    }

    /// Every record, rendered as text (message and metadata).
    var text: String {
        records.map { "\($0.level) \($0.message) \($0.metadata)" }.joined(separator: "\n")
    }

    fileprivate func append(_ record: Record) {
        storage.withLock { $0.append(record) }
    }

    private struct Handler: LogHandler {
        let log: TestLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            log.append(
                Record(
                    level: event.level,
                    message: event.message.description,
                    metadata: metadata.merging(event.metadata ?? [:]) { $1 }
                )
            )
        }
    }
}
