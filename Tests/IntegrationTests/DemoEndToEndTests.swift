import FlowmeterCore
import Foundation
import Logging
import Postgres
import Testing

/// `flowmeter demo` as a process: the embedded broker on loopback TCP (kcat lists its topics), the simulator
/// and the analyzer in one process, `/metrics` with events of every LearnFlow topic, the three flows' latency
/// histograms and the simulated groups' lag (one of them stalling); with PostgreSQL, rollups in the database.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct DemoEndToEndTests {
    /// The bootstrap string the demo prints (`kafka      <bootstrap>   (try: kcat -L -b …)`).
    static func bootstrap(of demo: FlowmeterProcess) async throws -> String {
        let end = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < end {
            if let match = demo.output.firstMatch(of: /kafka +(\S+)/) { return String(match.1) }
            if !demo.process.isRunning { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw HarnessError.unexpected("no bootstrap line; stdout: \(demo.output)\nstderr: \(demo.log)")
    }

    @Test func demoRunsBrokerSimulatorAndAnalyzerTogether() async throws {
        let kcat = try Harness.kcat()
        let promtool = try Harness.promtool()
        let port = try Harness.freePort()
        let demo = try FlowmeterProcess(arguments: [
            "demo", "--http", "127.0.0.1:\(port)", "--duration", "90s", "--seed", "3", "--learners", "10", "--rate",
            "250", "--failure-rate", "0.05", "--lag-interval", "500ms", "--stall-group", "progress-agent:6s",
        ])
        let bootstrap = try await Self.bootstrap(of: demo)
        #expect(demo.output.contains("metrics    http://127.0.0.1:\(port)/metrics"))
        #expect(demo.output.contains("postgres   skipped: no --postgres or FLOWMETER_POSTGRES_URL"))

        // An independent client sees the embedded broker's topics over TCP.
        let listing = try Harness.run(kcat, ["-L", "-b", bootstrap])
        #expect(listing.status == 0, "\(listing.stderr)")
        for topic in LearnFlowCatalog.allTopics {
            #expect(listing.stdout.contains("topic \"\(topic)\""), "\(topic) not listed")
        }

        let ownGroup = try #require(
            demo.output.firstMatch(of: /analyzer +group (flowmeter-demo-\d+),/).map { String($0.1) }
        )
        let http = HTTPProbe(port: port)
        try await http.waitUntilReady(timeout: .seconds(60), daemon: demo)
        var metrics = Metrics(text: "")
        var missing: [String] = []
        let end = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < end {
            metrics = Metrics(text: try await http.get("/metrics").body)
            missing = []
            for topic in LearnFlowCatalog.topics
            where metrics.samples.allSatisfy({
                $0.name != "flowmeter_events_total" || $0.labels["topic"] != topic || $0.value == 0
            }) {
                missing.append("events of \(topic)")
            }
            for flow in ["lesson", "grading", "submission-to-progress"]
            where (metrics.value("flowmeter_flow_latency_seconds_count", ["flow": flow]) ?? 0) == 0 {
                missing.append("latency of \(flow)")
            }
            for group in LearnFlowCatalog.groupNames + [ownGroup]
            where !metrics.samples.contains(where: {
                $0.name == "flowmeter_consumergroup_lag_messages" && $0.labels["group"] == group
            }) {
                missing.append("lag of \(group)")
            }
            let stalled =
                (metrics.value("flowmeter_consumergroup_status", ["group": "progress-agent", "status": "stalled"]) ?? 0)
                + (metrics.value("flowmeter_consumergroup_status", ["group": "progress-agent", "status": "stopped"])
                    ?? 0)
            if stalled != 1 { missing.append("progress-agent stalled") }
            if missing.isEmpty { break }
            try await Task.sleep(for: .milliseconds(500))
        }
        #expect(missing.isEmpty, "still missing: \(missing)\nstdout:\n\(demo.output.suffix(3000))")
        // Dead letters of the simulated failures, linked to their topics; the other groups keep up.
        #expect(metrics.sum("flowmeter_deadletter_events_total") > 0)
        #expect(metrics.value("flowmeter_consumergroup_status", ["group": "exercise-agent", "status": "ok"]) == 1)
        let lint = try Harness.run(promtool, ["check", "metrics"], input: metrics.text)
        #expect(lint.status == 0, "promtool: \(lint.stdout)\(lint.stderr)")

        // The summary on standard output (plain lines: not a terminal).
        let output = demo.output
        #expect(output.contains("flowmeter demo  "))
        #expect(output.contains("grading"))
        #expect(output.contains("progress-agent"))
        #expect(!output.contains("\u{1B}["), "no ANSI escapes when standard output is not a terminal")

        kill(demo.process.processIdentifier, SIGTERM)
        #expect(await demo.waitForExit(timeout: .seconds(40)) == 0, "\(demo.log)")
        #expect(demo.output.contains("demo stopped: produced"))
    }

    @Test func demoWithPostgresWritesRollups() async throws {
        let base = try Self.postgresURL()
        let database = "flowmeter_demo_" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        let admin = try PQConnection.connect(url: base, logger: quietLogger)
        defer { admin.close() }
        try admin.execute("CREATE DATABASE \(database)")
        defer { _ = try? admin.execute("DROP DATABASE \(database) WITH (FORCE)") }
        let url = try #require(base.firstMatch(of: /^(.*\/)[^\/?]+(\?.*)?$/).map { "\($0.1)\(database)\($0.2 ?? "")" })

        let port = try Harness.freePort()
        let demo = try FlowmeterProcess(arguments: [
            "demo", "--postgres", url, "--http", "127.0.0.1:\(port)", "--duration", "15s", "--seed", "5", "--learners",
            "10", "--rate", "200", "--flush-interval", "1s",
        ])
        #expect(await demo.waitForExit(timeout: .seconds(90)) == 0, "stdout: \(demo.output)\nstderr: \(demo.log)")
        #expect(demo.output.contains("postgres   postgresql://flowmeter:***@"), "\(demo.output)")
        #expect(!demo.output.contains(":flowmeter@"), "the password is never shown")
        #expect(demo.output.contains("all rollups flushed to PostgreSQL ("))
        #expect(demo.output.contains("postgres: last flush"))

        let connection = try PQConnection.connect(url: url, logger: quietLogger)
        defer { connection.close() }
        let rows = try connection.query(
            "select topic, sum(events)::int8 from flowmeter.event_counts_1m group by topic order by topic"
        )
        var events: [String: Int64] = [:]
        for row in rows {
            events[try row.string(0) ?? ""] = try row.int64(1) ?? 0
        }
        for topic in LearnFlowCatalog.topics where topic != LearnFlowCatalog.courseCompleted {
            #expect((events[topic] ?? 0) > 0, "no rollup rows for \(topic): \(events)")
        }
        let flows = try connection.query("select distinct flow from flowmeter.flow_latency_1m order by flow")
        #expect(flows.map { $0[0] } == ["grading", "lesson", "submission-to-progress"])
    }

    static func postgresURL() throws -> String {
        guard let url = ProcessInfo.processInfo.environment["FLOWMETER_TEST_POSTGRES_URL"], !url.isEmpty else {
            let message =
                "FLOWMETER_TEST_POSTGRES_URL is not set: start a server with `scripts/postgres.sh start /tmp/fm-pg` and "
                + "`export FLOWMETER_TEST_POSTGRES_URL=$(scripts/postgres.sh url /tmp/fm-pg)` (scripts/test.sh does)"
            Issue.record(Comment(rawValue: message))
            throw HarnessError.missing("PostgreSQL")
        }
        return url
    }
}
