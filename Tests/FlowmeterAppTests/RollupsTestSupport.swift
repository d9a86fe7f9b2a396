import FlowmeterApp
import FlowmeterCore
import Foundation
import Logging
import Postgres
import Synchronization
import Testing

/// A fresh PostgreSQL database per test, on the server from `FLOWMETER_TEST_POSTGRES_URL`.
enum RollupsTestDatabase {
    static let environmentKey = "FLOWMETER_TEST_POSTGRES_URL"

    /// Thrown (failing the test) when no server is configured: the tests never skip.
    struct MissingServer: Error, CustomStringConvertible {
        var description: String {
            "\(RollupsTestDatabase.environmentKey) is not set. These tests need a real PostgreSQL: start one with "
                + "`scripts/postgres.sh start /tmp/fm-pg` and run "
                + "`export \(RollupsTestDatabase.environmentKey)=$(scripts/postgres.sh url /tmp/fm-pg)`."
        }
    }

    static let logger = Logger(label: "flowmeter.rollups.tests") { _ in SwiftLogNoOpLogHandler() }

    static func serverURL() throws -> String {
        guard let url = ProcessInfo.processInfo.environment[environmentKey], !url.isEmpty else {
            throw MissingServer()
        }
        return url
    }

    /// Creates database `fm_test_<random>`, runs `body` with its URL, and drops it.
    static func withFreshDatabase<T>(_ body: (String) throws -> T) throws -> T {
        let url = try serverURL()
        let admin = try PQConnection.connect(url: url, logger: logger)
        defer { admin.close() }
        let name = "fm_test_" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
        try admin.execute("CREATE DATABASE \(name)")
        defer { _ = try? admin.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)") }
        return try body(databaseURL(url, database: name))
    }

    /// Creates a fresh database, migrates it, and runs `body` with a connection to it.
    static func withMigratedDatabase<T>(_ body: (PQConnection, String) throws -> T) throws -> T {
        try withFreshDatabase { url in
            let connection = try PQConnection.connect(url: url, logger: logger)
            defer { connection.close() }
            try SchemaMigrator.migrate(connection, logger: logger)
            return try body(connection, url)
        }
    }

    /// `url` with its database replaced by `database` (URL or keyword/value form).
    static func databaseURL(_ url: String, database: String) -> String {
        guard let scheme = url.range(of: "://") else { return url + " dbname=\(database)" }
        let rest = url[scheme.upperBound...]
        let query = rest.firstIndex(of: "?").map { String(rest[$0...]) } ?? ""
        let authorityEnd = rest.firstIndex(of: "/") ?? rest.firstIndex(of: "?") ?? rest.endIndex
        return String(url[..<authorityEnd]) + "/" + database + query
    }
}

/// Reading rows back.
extension PQRow {
    func requiredInt(_ name: String) throws -> Int64 { try #require(try int64(name), "\(name) is NULL") }
    func requiredString(_ name: String) throws -> String { try #require(try string(name), "\(name) is NULL") }
    func requiredDouble(_ name: String) throws -> Double { try #require(try double(name), "\(name) is NULL") }

    /// A sketch from the columns `<prefix>_offset`, `_zero`, `_sum`, `_max`, `_counts` (an integer array's text).
    func sketch(_ prefix: String) throws -> LatencySketch? {
        guard let countsText = try string("\(prefix)_counts") else { return nil }
        let inner = countsText.dropFirst().dropLast()
        let counts = try inner.isEmpty ? [] : inner.split(separator: ",").map { try #require(Int64($0)) }
        return LatencySketch(
            offset: Int(try requiredInt("\(prefix)_offset")),
            counts: counts,
            zeroCount: try requiredInt("\(prefix)_zero"),
            sum: try requiredDouble("\(prefix)_sum"),
            max: try requiredDouble("\(prefix)_max")
        )
    }
}

/// The SQL select list that reads a sketch expression as the columns ``PQRow/sketch(_:)`` expects.
func sketchColumns(_ expression: String, as prefix: String) -> String {
    """
    (\(expression)).bucket_offset AS \(prefix)_offset, (\(expression)).zero_count AS \(prefix)_zero, \
    (\(expression)).sum_ms AS \(prefix)_sum, (\(expression)).max_ms AS \(prefix)_max, \
    (\(expression)).counts::text AS \(prefix)_counts
    """
}

/// `sketch` rebuilt through its storage initializer, as the database returns it.
func normalized(_ sketch: LatencySketch) -> LatencySketch {
    LatencySketch(
        offset: sketch.offset,
        counts: sketch.counts,
        zeroCount: sketch.zeroCount,
        sum: sketch.sum,
        max: sketch.max
    )
}

/// A sketch of `values`.
func makeSketch(_ values: [Double]) -> LatencySketch {
    var sketch = LatencySketch()
    for value in values { sketch.record(value) }
    return sketch
}

/// Runs `bodies` on threads of their own, started together, and returns their results in order.
func onThreads<T: Sendable>(_ bodies: [@Sendable () throws -> T]) -> [Result<T, any Error>] {
    let results = Mutex<[Int: Result<T, any Error>]>([:])
    let group = DispatchGroup()
    let start = DispatchSemaphore(value: 0)
    for (index, body) in bodies.enumerated() {
        group.enter()
        let thread = Thread {
            start.wait()
            let result = Result { try body() }
            results.withLock { $0[index] = result }
            group.leave()
        }
        thread.start()
    }
    for _ in bodies { start.signal() }
    group.wait()
    return results.withLock { stored in bodies.indices.map { stored[$0]! } }
}

/// The current time's minute window, `minutesAgo` minutes back, in epoch milliseconds.
func recentWindow(minutesAgo: Int64) -> Int64 {
    let now = Int64(Date().timeIntervalSince1970 * 1000)
    return windowStart(ofEventTimeMs: now) - minutesAgo * 60_000
}
