import Foundation
import Kafka
import Logging
import Postgres
import Testing

/// A LearnFlow stream with known timestamps and the rollups it must produce.
///
/// Requests on `exercise.submitted` (two CloudEvent types), their responses on `exercise.graded` at known
/// latencies (all within the flow timeout, so `grading` completes every request), and malformed records on
/// `learning.requested`. `submission-to-progress` gets no responses: all its requests end incomplete once the
/// analyzer is caught up. Timestamps lie 20 minutes in the past, spread over three 1-minute windows.
struct LearnFlowStream {
    let requests: Int
    let base: Int64
    /// When set, requests go to partition `index % partitions` of their topic and responses to the next partition
    /// (`(index + 1) % partitions`): every request and its response are on different partitions, so replicas that
    /// split the partitions read them apart. Otherwise partitions follow the record keys.
    var partitions: Int32?
    /// The index of the first request (its timestamp is `base`).
    var firstIndex = 0
    /// The time the requests are spread over.
    var spanMs: Int64 = 180_000

    /// Live-like records: requests `firstIndex..<firstIndex + requests`, stamped from now over `spanMs`, as traffic
    /// that does not lag behind the wall clock (flow expiry never runs ahead of them).
    init(live requests: Int, firstIndex: Int, spanMs: Int64, partitions: Int32? = nil) {
        self.requests = requests
        self.partitions = partitions
        self.firstIndex = firstIndex
        self.spanMs = spanMs
        base = Int64(Date().timeIntervalSince1970 * 1000)
    }

    /// - Parameter minutesAgo: where the stream starts, in whole minutes before now (0: the current minute, so
    ///   most of it lies ahead of the wall clock, like live traffic does not lag behind it).
    init(requests: Int, minutesAgo: Int64 = 20, partitions: Int32? = nil) {
        self.requests = requests
        self.partitions = partitions
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        base = (now / 60_000 - minutesAgo) * 60_000
    }

    var step: Int64 { max(1, spanMs / Int64(requests)) }
    func requestTime(_ index: Int) -> Int64 { base + Int64(index - firstIndex) * step }
    func latency(_ index: Int) -> Int64 { 5 + Int64((index * 37) % 1900) }
    func requestType(_ index: Int) -> String {
        index % 2 == 0 ? "com.dapr.event.sent" : "io.learnflow.exercise.submitted"
    }
    var malformedEvery: Int { 20 }

    func messages(_ range: Range<Int>) -> [ProducerMessage] {
        var messages: [ProducerMessage] = []
        for index in range {
            let trace = String(format: "%032x", 0xF000_0000 + index)
            messages.append(
                ProducerMessage(
                    topic: "exercise.submitted",
                    partition: partitions.map { Int32(index % Int($0)) },
                    key: Array("learner-\(index % 97)".utf8),
                    value: Array(event(id: "req-\(index)", type: requestType(index), trace: trace).utf8),
                    timestampMs: requestTime(index)
                )
            )
            messages.append(
                ProducerMessage(
                    topic: "exercise.graded",
                    partition: partitions.map { Int32((index + 1) % Int($0)) },
                    key: Array("learner-\(index % 97)".utf8),
                    value: Array(event(id: "resp-\(index)", type: "com.dapr.event.sent", trace: trace).utf8),
                    timestampMs: requestTime(index) + latency(index)
                )
            )
            if index % malformedEvery == 0 {
                messages.append(
                    ProducerMessage(
                        topic: "learning.requested",
                        value: Array("{\"data\":{\"broken\"".utf8),
                        timestampMs: requestTime(index)
                    )
                )
            }
        }
        return messages
    }

    func event(id: String, type: String, trace: String) -> String {
        let traceparent = "00-\(trace)-00f067aa0ba902b7-01"
        return "{\"data\":{\"submissionId\":\"\(id)\",\"code\":\"print(1)\"},\"datacontenttype\":\"application/json\","
            + "\"id\":\"\(id)\",\"pubsubname\":\"pubsub\",\"source\":\"frontend\",\"specversion\":\"1.0\","
            + "\"time\":\"2026-11-29T03:00:00Z\",\"topic\":\"exercise.submitted\",\"traceid\":\"\(traceparent)\","
            + "\"traceparent\":\"\(traceparent)\",\"tracestate\":\"\",\"type\":\"\(type)\"}"
    }

    struct EventKey: Hashable {
        var window: Int64
        var topic: String
        var type: String
    }
    struct FlowKey: Hashable {
        var window: Int64
        var flow: String
    }
    struct FlowCounts: Hashable {
        var completed: Int64
        var incomplete: Int64
    }

    static func window(_ ms: Int64) -> Int64 { ms / 60_000 * 60_000 }

    func expectedEvents(_ range: Range<Int>) -> [EventKey: Int64] {
        var counts: [EventKey: Int64] = [:]
        for index in range {
            counts[
                EventKey(
                    window: Self.window(requestTime(index)),
                    topic: "exercise.submitted",
                    type: requestType(index)
                ),
                default: 0
            ] += 1
            counts[
                EventKey(
                    window: Self.window(requestTime(index) + latency(index)),
                    topic: "exercise.graded",
                    type: "com.dapr.event.sent"
                ),
                default: 0
            ] += 1
            if index % malformedEvery == 0 {
                counts[
                    EventKey(window: Self.window(requestTime(index)), topic: "learning.requested", type: "malformed"),
                    default: 0
                ] += 1
            }
        }
        return counts
    }

    func expectedFlows(_ range: Range<Int>) -> [FlowKey: FlowCounts] {
        var counts: [FlowKey: FlowCounts] = [:]
        for index in range {
            let window = Self.window(requestTime(index))
            counts[FlowKey(window: window, flow: "grading"), default: FlowCounts(completed: 0, incomplete: 0)]
                .completed += 1
            counts[
                FlowKey(window: window, flow: "submission-to-progress"),
                default: FlowCounts(completed: 0, incomplete: 0)
            ].incomplete += 1
        }
        return counts
    }

    func recordCount(_ range: Range<Int>) -> Int64 {
        Int64(range.count * 2 + range.filter { $0 % malformedEvery == 0 }.count)
    }
}

/// A PostgreSQL server of a test's own (`scripts/postgres.sh`), for tests that stop and start it.
///
/// The script runs through posix_spawn and waitpid, not Foundation's Process: its SIGCHLD-driven
/// waitUntilExit was seen to miss the script's exit (a zombie, and a hung test), and with no pipes the server
/// cannot hold any of the test's descriptors open.
struct ThrowawayPostgres {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fm-pg-\(UUID().uuidString)")
    private let script = Harness.repositoryRoot.appendingPathComponent("scripts/postgres.sh").path

    /// Starts (or restarts) the server; returns the script's exit status.
    func start() throws -> Int32 { try Harness.spawnAndWait("/bin/bash", [script, "start", directory.path]) }

    /// Stops the server; returns the script's exit status.
    func stop() throws -> Int32 { try Harness.spawnAndWait("/bin/bash", [script, "stop", directory.path]) }

    /// The libpq URL the script wrote when it started the server.
    func url() throws -> String {
        try String(contentsOf: directory.appendingPathComponent("url"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// PostgreSQL for the integration tests: the server `scripts/test.sh` started, a fresh database per test.
enum TestPostgres {
    static func baseURL() throws -> String {
        guard let url = ProcessInfo.processInfo.environment["FLOWMETER_TEST_POSTGRES_URL"], !url.isEmpty else {
            Issue.record(
                "FLOWMETER_TEST_POSTGRES_URL is not set: run scripts/test.sh, or start one with `scripts/postgres.sh start /tmp/fm-pg` and export FLOWMETER_TEST_POSTGRES_URL=$(scripts/postgres.sh url /tmp/fm-pg)"
            )
            throw HarnessError.missing("PostgreSQL")
        }
        return url
    }

    /// Creates an empty database and returns its URL.
    static func freshDatabase(_ prefix: String) throws -> String {
        let base = try baseURL()
        let name = "\(prefix)_\(UInt32.random(in: 0...UInt32.max))"
        let admin = try PQConnection.connect(url: base, logger: quietLogger)
        defer { admin.close() }
        try admin.execute("CREATE DATABASE \(name)")
        return url(base, database: name)
    }

    static func url(_ base: String, database: String) -> String {
        guard let slash = base.range(of: "/", options: .backwards), base[..<slash.lowerBound].contains("@") else {
            return base + " dbname=\(database)"
        }
        let rest = base[slash.upperBound...]
        let query = rest.firstIndex(of: "?").map { String(rest[$0...]) } ?? ""
        return String(base[..<slash.upperBound]) + database + query
    }

    static func storedOffsetSum(_ url: String) -> Int64 {
        guard let connection = try? PQConnection.connect(url: url, logger: quietLogger) else { return -1 }
        defer { connection.close() }
        guard
            let rows = try? connection.query(
                "SELECT coalesce(sum(next_offset), 0)::bigint FROM flowmeter.consumer_offsets"
            ),
            let value = try? rows.first?.int64(0)
        else { return -1 }
        return value
    }

    static func events(_ url: String) throws -> [LearnFlowStream.EventKey: Int64] {
        let connection = try PQConnection.connect(url: url, logger: quietLogger)
        defer { connection.close() }
        var result: [LearnFlowStream.EventKey: Int64] = [:]
        for row in try connection.query(
            "SELECT (extract(epoch FROM window_start) * 1000)::bigint, topic, type, events FROM flowmeter.event_counts_1m"
        ) {
            let key = LearnFlowStream.EventKey(
                window: try row.int64(0) ?? 0,
                topic: try row.string(1) ?? "",
                type: try row.string(2) ?? ""
            )
            result[key, default: 0] += try row.int64(3) ?? 0
        }
        return result
    }

    static func flows(_ url: String) throws -> [LearnFlowStream.FlowKey: LearnFlowStream.FlowCounts] {
        let connection = try PQConnection.connect(url: url, logger: quietLogger)
        defer { connection.close() }
        var result: [LearnFlowStream.FlowKey: LearnFlowStream.FlowCounts] = [:]
        for row in try connection.query(
            "SELECT (extract(epoch FROM window_start) * 1000)::bigint, flow, completed, incomplete FROM flowmeter.flow_latency_1m"
        ) {
            let key = LearnFlowStream.FlowKey(window: try row.int64(0) ?? 0, flow: try row.string(1) ?? "")
            let counts = LearnFlowStream.FlowCounts(completed: try row.int64(2) ?? 0, incomplete: try row.int64(3) ?? 0)
            if counts.completed != 0 || counts.incomplete != 0 { result[key] = counts }
        }
        return result
    }
}

extension Harness {
    static func produce(_ messages: [ProducerMessage], bootstrap: String) throws {
        let producer = try KafkaProducer(
            config: KafkaClientConfig(bootstrapServers: bootstrap, properties: [("linger.ms", "5")]),
            logger: quietLogger
        )
        defer { producer.close() }
        for message in messages { try producer.send(message) }
        try producer.flush(timeout: .seconds(60))
        guard producer.deliveryCounts.failed == 0 else {
            throw HarnessError.unexpected("\(producer.deliveryCounts.failed) records not delivered")
        }
    }

    /// Polls `condition` every 100 ms until it holds or `timeout` passes.
    static func eventually(timeout: Duration, _ condition: () async throws -> Bool) async rethrows -> Bool {
        let end = ContinuousClock.now + timeout
        while ContinuousClock.now < end {
            if try await condition() { return true }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return try await condition()
    }

    /// Resident memory of a process in bytes (from /proc).
    static func residentBytes(_ pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kb = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        else { return nil }
        return kb * 1024
    }
}
