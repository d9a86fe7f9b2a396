import Foundation
import Kafka
import Testing

/// Exactly-once rollups, proven on the built binary with a real PostgreSQL and `flowmeter dev-kafka`.
@Suite(.serialized, .timeLimit(.minutes(6)))
struct RollupEndToEndTests {
    static let topics = ["exercise.submitted:3", "exercise.graded:3", "learning.requested:2"]

    func runArguments(_ bootstrap: String, _ url: String) throws -> [String] {
        [
            "run", "--brokers", bootstrap, "--postgres", url, "--from", "earliest", "--http",
            "127.0.0.1:\(try Harness.freePort())", "--flush-interval", "250ms",
            // Small fetches make the stream take a few seconds, so the kills land in the middle of it.
            "--kafka-property", "fetch.wait.max.ms=10", "--kafka-property", "max.partition.fetch.bytes=4096",
            // A killed member leaves the group only when its session times out (librdkafka's default is 45 s).
            "--kafka-property", "session.timeout.ms=6000", "--kafka-property", "heartbeat.interval.ms=500",
        ]
    }

    /// SIGKILL at startup and repeatedly after flushes committed, restart each time: the final rollups equal the
    /// exact expected counts per window, type and flow.
    @Test func killsAtAnyPointNeitherLoseNorDoubleCount() async throws {
        let url = try TestPostgres.freshDatabase("fm_crash")
        let broker = try DevKafkaProcess(arguments: Self.topics.flatMap { ["--topic", $0] })
        let stream = LearnFlowStream(requests: 24_000)
        let total = stream.recordCount(0..<stream.requests)
        // The stream arrives in eight parts, one before each run: every kill lands before the end, however fast
        // the machine consumes, and each run after the first has new records to flush.
        let parts = (0..<8).map { index in
            (index * stream.requests / 8)..<((index + 1) * stream.requests / 8)
        }

        var storedAtKills: [Int64] = []
        var killsAfterFlush = 0
        for round in 0..<7 {
            try Harness.produce(stream.messages(parts[round]), bootstrap: broker.bootstrapServers)
            let daemon = try FlowmeterProcess(arguments: try runArguments(broker.bootstrapServers, url))
            if round == 0 {
                // Before the first flush (the group join alone takes 3 s on the mock).
                try await Task.sleep(for: .milliseconds(1500))
            } else {
                let before = TestPostgres.storedOffsetSum(url)
                let advanced = await Harness.eventually(timeout: .seconds(60)) {
                    TestPostgres.storedOffsetSum(url) > max(before, 0)
                }
                #expect(advanced, "stored offsets did not advance in round \(round): \(daemon.log.suffix(2000))")
                // Right after a flush committed, or a little later: in the middle of the next batch or flush.
                try await Task.sleep(for: .milliseconds(Int.random(in: 0...150)))
                killsAfterFlush += 1
            }
            kill(daemon.process.processIdentifier, SIGKILL)
            daemon.process.waitUntilExit()
            storedAtKills.append(TestPostgres.storedOffsetSum(url))
        }
        print(
            "crash test: SIGKILLed \(storedAtKills.count) times; stored offset sum at each kill \(storedAtKills) of \(total)"
        )
        #expect(storedAtKills.count >= 5)
        #expect(killsAfterFlush >= 3)
        let afterFlush = Array(storedAtKills.dropFirst())
        #expect(afterFlush == afterFlush.sorted() && Set(afterFlush).count == afterFlush.count, "\(storedAtKills)")
        #expect(storedAtKills.last ?? 0 < total, "the kills must land before the end: \(storedAtKills)")
        try Harness.produce(stream.messages(parts[7]), bootstrap: broker.bootstrapServers)

        // The last run finishes the stream; SIGTERM drains.
        let daemon = try FlowmeterProcess(arguments: try runArguments(broker.bootstrapServers, url))
        let expectedFlows = stream.expectedFlows(0..<stream.requests)
        let finished = await Harness.eventually(timeout: .seconds(120)) {
            TestPostgres.storedOffsetSum(url) == total && (try? TestPostgres.flows(url)) == expectedFlows
        }
        #expect(finished, "log: \(daemon.log.suffix(3000))")
        daemon.process.terminate()
        let status = await daemon.waitForExit(timeout: .seconds(30))
        #expect(status == 0, "SIGTERM: \(String(describing: status)); log: \(daemon.log.suffix(3000))")

        #expect(try TestPostgres.events(url) == stream.expectedEvents(0..<stream.requests))
        let flows = try TestPostgres.flows(url)
        #expect(flows == expectedFlows, "\(Self.summary(flows)) expected \(Self.summary(expectedFlows))")
    }

    static func summary(_ flows: [LearnFlowStream.FlowKey: LearnFlowStream.FlowCounts]) -> String {
        var totals: [String: (Int64, Int64)] = [:]
        for (key, counts) in flows {
            totals[key.flow, default: (0, 0)].0 += counts.completed
            totals[key.flow, default: (0, 0)].1 += counts.incomplete
        }
        return totals.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value.0) completed, \($0.value.1) incomplete" }
            .joined(separator: "; ")
    }

    /// PostgreSQL stopped during a run: metrics keep being served, intake pauses at the backlog bound, /readyz
    /// says why; once the server is back, the rollups complete and are exact.
    @Test func postgresOutagePausesWithBoundedMemoryAndLosesNothing() async throws {
        let server = ThrowawayPostgres()
        #expect(try server.start() == 0)
        defer { _ = try? server.stop() }
        let url = try server.url()

        let broker = try DevKafkaProcess(arguments: Self.topics.flatMap { ["--topic", $0] })
        let stream = LearnFlowStream(requests: 6000)
        let port = try Harness.freePort()
        let daemon = try FlowmeterProcess(
            arguments: [
                "run", "--brokers", broker.bootstrapServers, "--postgres", url, "--from", "earliest", "--http",
                "127.0.0.1:\(port)", "--flush-interval", "300ms", "--kafka-property", "fetch.wait.max.ms=10",
            ],
            environment: ["FLOWMETER_MAX_UNFLUSHED_RECORDS": "1000"]
        )
        let http = HTTPProbe(port: port)
        try await http.waitUntilReady(timeout: .seconds(60), daemon: daemon)

        let firstPart = 0..<1000
        try Harness.produce(stream.messages(firstPart), bootstrap: broker.bootstrapServers)
        #expect(
            await Harness.eventually(timeout: .seconds(60)) {
                TestPostgres.storedOffsetSum(url) == stream.recordCount(firstPart)
            }
        )

        #expect(try server.stop() == 0)
        let secondPart = 1000..<stream.requests
        try Harness.produce(stream.messages(secondPart), bootstrap: broker.bootstrapServers)

        // Down: not ready, postgres_up 0, intake paused at the bound; memory stays bounded while it waits.
        var metrics = Metrics(text: "")
        let paused = await Harness.eventually(timeout: .seconds(60)) {
            metrics = Metrics(text: (try? await http.get("/metrics").body) ?? "")
            return metrics.value("flowmeter_intake_paused", [:]) == 1
                && metrics.value("flowmeter_postgres_up", [:]) == 0
                && (metrics.value("flowmeter_rollup_flush_failures_total", [:]) ?? 0) >= 1
        }
        #expect(
            paused,
            "intake never paused with PostgreSQL down: \(metrics.text.suffix(1500)) \(daemon.log.suffix(2000))"
        )
        #expect(metrics.value("flowmeter_postgres_up", [:]) == 0)
        #expect((metrics.value("flowmeter_rollup_flush_failures_total", [:]) ?? 0) >= 1)
        let readiness = try await http.get("/readyz")
        #expect(readiness.status == 503)
        #expect(readiness.body.contains("PostgreSQL unreachable"))
        var backlog: [Double] = []
        var resident: [Int] = []
        for _ in 0..<10 {
            try await Task.sleep(for: .milliseconds(300))
            let sample = Metrics(text: try await http.get("/metrics").body)
            backlog.append(sample.value("flowmeter_rollup_unflushed_records", [:]) ?? -1)
            resident.append(Harness.residentBytes(daemon.process.processIdentifier) ?? 0)
        }
        // Paused at 1,000 unflushed records plus at most the batch that crossed the bound.
        print("outage test: PostgreSQL stopped; paused with unflushed records \(backlog), RSS bytes \(resident)")
        #expect(backlog.allSatisfy { $0 >= 1000 && $0 <= 3000 }, "\(backlog)")
        #expect(Set(backlog).count == 1, "the backlog must not grow while paused: \(backlog)")
        #expect(resident.allSatisfy { $0 > 0 && $0 < 400 * 1024 * 1024 }, "\(resident)")
        #expect(try await http.get("/healthz").status == 200)

        // Back: everything is flushed, exactly.
        #expect(try server.start() == 0)
        let all = 0..<stream.requests
        #expect(
            await Harness.eventually(timeout: .seconds(90)) {
                TestPostgres.storedOffsetSum(url) == stream.recordCount(all)
            },
            "log: \(daemon.log.suffix(3000))"
        )
        #expect(try await http.get("/readyz").status == 200)
        daemon.process.terminate()
        #expect(await daemon.waitForExit(timeout: .seconds(30)) == 0)
        #expect(try TestPostgres.events(url) == stream.expectedEvents(all))
        let flows = try TestPostgres.flows(url)
        #expect(
            flows.filter { $0.key.flow == "grading" } == stream.expectedFlows(all).filter { $0.key.flow == "grading" }
        )
    }

    /// The broker disappears, then SIGTERM: the drain flushes, does not wait forever for the group coordinator,
    /// and the process exits 0 well within a Kubernetes grace period (found by hand: it used to hang in the
    /// synchronous Kafka commit and then in the consumer close until ServiceLifecycle aborted the process).
    @Test func sigtermWhileKafkaIsGoneDrainsAndExits() async throws {
        let url = try TestPostgres.freshDatabase("fm_kafka_gone")
        let broker = try DevKafkaProcess(arguments: Self.topics.flatMap { ["--topic", $0] })
        let stream = LearnFlowStream(requests: 500)
        try Harness.produce(stream.messages(0..<stream.requests), bootstrap: broker.bootstrapServers)
        let daemon = try FlowmeterProcess(arguments: try runArguments(broker.bootstrapServers, url))
        let total = stream.recordCount(0..<stream.requests)
        #expect(await Harness.eventually(timeout: .seconds(60)) { TestPostgres.storedOffsetSum(url) == total })
        kill(broker.process.processIdentifier, SIGKILL)
        broker.process.waitUntilExit()
        try await Task.sleep(for: .seconds(2))
        let started = ContinuousClock.now
        daemon.process.terminate()
        let status = await daemon.waitForExit(timeout: .seconds(25))
        print("Kafka gone, then SIGTERM: exit \(String(describing: status)) after \(ContinuousClock.now - started)")
        #expect(status == 0, "log: \(daemon.log.suffix(3000))")
        #expect(try TestPostgres.events(url) == stream.expectedEvents(0..<stream.requests))
    }
}
