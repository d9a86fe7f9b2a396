import FlowmeterCore
import Foundation
import Kafka
import Postgres
import Testing

/// The resilience suite: the built binary under crashes, PostgreSQL faults, Kafka faults, hostile input and
/// load. Each scenario prints what it injected and what it verified.
@Suite(.serialized, .timeLimit(.minutes(8)))
struct ResilienceTests {
    static let topics = ["exercise.submitted:3", "exercise.graded:3", "learning.requested:2"]

    static func runArguments(_ bootstrap: String, _ url: String, port: Int? = nil) throws -> [String] {
        [
            "run", "--brokers", bootstrap, "--postgres", url, "--from", "earliest", "--http",
            "127.0.0.1:\(try port ?? Harness.freePort())", "--flush-interval", "250ms",
            "--kafka-property", "fetch.wait.max.ms=10", "--kafka-property", "max.partition.fetch.bytes=4096",
            "--kafka-property", "session.timeout.ms=3000", "--kafka-property", "heartbeat.interval.ms=300",
        ]
    }

    /// Waits until everything is stored, stops the daemon with SIGTERM, and compares the rollups with the
    /// exact expectation.
    static func finishAndCompare(
        _ daemon: FlowmeterProcess,
        url: String,
        stream: LearnFlowStream,
        scenario: String,
        flows flowNames: Set<String> = ["grading", "submission-to-progress"]
    ) async throws {
        let all = 0..<stream.requests
        let total = stream.recordCount(all)
        let expectedFlows = stream.expectedFlows(all).filter { flowNames.contains($0.key.flow) }
        let finished = await Harness.eventually(timeout: .seconds(120)) {
            TestPostgres.storedOffsetSum(url) == total && (try? TestPostgres.flows(url)) == expectedFlows
        }
        #expect(
            finished,
            "\(scenario): not complete; stored \(TestPostgres.storedOffsetSum(url)) of \(total); log: \(daemon.log.suffix(2500))"
        )
        daemon.process.terminate()
        let status = await daemon.waitForExit(timeout: .seconds(30))
        #expect(status == 0, "\(scenario): SIGTERM gave \(String(describing: status))")
        if let directory = ProcessInfo.processInfo.environment["FLOWMETER_TEST_KEEP_LOGS"] {
            try? daemon.log.write(toFile: "\(directory)/final.log", atomically: true, encoding: .utf8)
        }
        let events = try TestPostgres.events(url)
        let flows = try TestPostgres.flows(url)
        let expectedEvents = stream.expectedEvents(all)
        let eventDiff = Set(events.keys).union(expectedEvents.keys).filter { events[$0] != expectedEvents[$0] }
            .map { "\($0.topic)/\($0.type)@\($0.window): \(events[$0] ?? 0) vs \(expectedEvents[$0] ?? 0)" }
        let flowDiff = Set(flows.keys).union(expectedFlows.keys).filter { flows[$0] != expectedFlows[$0] }
            .map {
                "\($0.flow)@\($0.window): \(String(describing: flows[$0])) vs \(String(describing: expectedFlows[$0]))"
            }
        #expect(eventDiff.isEmpty, "\(scenario): event counts differ (stored vs expected): \(eventDiff.sorted())")
        #expect(flowDiff.isEmpty, "\(scenario): flow counts differ (stored vs expected): \(flowDiff.sorted())")
        guard eventDiff.isEmpty && flowDiff.isEmpty else { return }
        let eventTotal = events.values.reduce(0, +)
        let completed = flows.values.map(\.completed).reduce(0, +)
        print(
            "\(scenario): verified \(eventTotal) events in \(events.count) (window, topic, type) rows and \(completed) completed flows, exactly as produced"
        )
    }

    // MARK: - 1. Crash consistency

    /// At least 20 SIGKILLs at random moments (during start-up and group joins, mid-batch, mid-flush, right
    /// after a flush), each followed by a restart; the final rollups equal the exact expectation.
    @Test func twentyRandomKills() async throws {
        let url = try TestPostgres.freshDatabase("fm_kills")
        // 90,000 requests: twelve partitions per topic keep each under the mock's 5 MiB retention.
        let broker = try DevKafkaProcess(arguments: [
            "--topic", "exercise.submitted:12", "--topic", "exercise.graded:12", "--topic", "learning.requested:2",
        ])
        let stream = LearnFlowStream(requests: 90_000)
        let total = stream.recordCount(0..<stream.requests)
        // Twelve parts: one before the first run, one in each of the ten mid-stream runs, the last before the
        // final run, so every kill lands before the end however fast the machine consumes.
        let parts = (0..<12).map { index in
            (index * stream.requests / 12)..<((index + 1) * stream.requests / 12)
        }
        try Harness.produce(stream.messages(parts[0]), bootstrap: broker.bootstrapServers)
        var generator = SystemRandomNumberGenerator()
        var kills: [String] = []
        var storedAtKills: [Int64] = []
        for round in 0..<20 {
            let daemon = try FlowmeterProcess(arguments: try Self.runArguments(broker.bootstrapServers, url))
            let before = TestPostgres.storedOffsetSum(url)
            if round % 2 == 0 {
                // During start-up, the group join or the rebalance that follows the previous kill.
                let delay = Int.random(in: 300...3_000, using: &generator)
                try await Task.sleep(for: .milliseconds(delay))
                kills.append("start+\(delay)ms")
            } else {
                try Harness.produce(stream.messages(parts[(round + 1) / 2]), bootstrap: broker.bootstrapServers)
                // Mid-stream: once this process has flushed, then 0-600 ms later (mid-batch or mid-flush).
                let advanced = await Harness.eventually(timeout: .seconds(60)) {
                    TestPostgres.storedOffsetSum(url) > max(before, 0)
                }
                #expect(advanced, "round \(round): no flush: \(daemon.log.suffix(1500))")
                let delay = Int.random(in: 0...600, using: &generator)
                try await Task.sleep(for: .milliseconds(delay))
                kills.append("flush+\(delay)ms")
            }
            kill(daemon.process.processIdentifier, SIGKILL)
            daemon.process.waitUntilExit()
            storedAtKills.append(TestPostgres.storedOffsetSum(url))
            if let directory = ProcessInfo.processInfo.environment["FLOWMETER_TEST_KEEP_LOGS"] {
                try? daemon.log.write(toFile: "\(directory)/kill-\(round).log", atomically: true, encoding: .utf8)
            }
        }
        print(
            "crash suite: \(kills.count) SIGKILLs: \(zip(kills, storedAtKills).map { "\($0.0)→\($0.1)" }.joined(separator: ", ")) (stored offset sum, of \(total))"
        )
        #expect(storedAtKills.last ?? 0 < total, "the stream was consumed before the last kill")
        let afterFlush = storedAtKills.enumerated().filter { $0.offset % 2 == 1 }.map(\.element)
        #expect(afterFlush == afterFlush.sorted() && Set(afterFlush).count == afterFlush.count, "\(storedAtKills)")
        try Harness.produce(stream.messages(parts[11]), bootstrap: broker.bootstrapServers)
        let daemon = try FlowmeterProcess(arguments: try Self.runArguments(broker.bootstrapServers, url))
        try await Self.finishAndCompare(daemon, url: url, stream: stream, scenario: "crash suite")
    }

    // MARK: - 2. PostgreSQL faults

    /// Connections killed mid-run (`pg_terminate_backend`, repeatedly), statement timeouts (a table locked past
    /// the 1 s timeout), the server stopped and restarted: nothing lost or doubled, `/readyz` tells the truth.
    @Test func postgresFaults() async throws {
        let server = ThrowawayPostgres()
        #expect(try server.start() == 0)
        defer { _ = try? server.stop() }
        let url = try server.url()
        let broker = try DevKafkaProcess(arguments: Self.topics.flatMap { ["--topic", $0] })
        let stream = LearnFlowStream(requests: 8_000)
        let port = try Harness.freePort()
        let daemon = try FlowmeterProcess(
            arguments: try Self.runArguments(broker.bootstrapServers, url, port: port),
            environment: ["FLOWMETER_PG_STATEMENT_TIMEOUT": "1s", "FLOWMETER_MAX_UNFLUSHED_RECORDS": "3000"]
        )
        let http = HTTPProbe(port: port)
        try await http.waitUntilReady(timeout: .seconds(60), daemon: daemon)
        func failures() async -> Double {
            Metrics(text: (try? await http.get("/metrics").body) ?? "").sum("flowmeter_rollup_flush_failures_total")
        }
        let parts = [0..<2000, 2000..<4000, 4000..<6000, 6000..<8000]
        try Harness.produce(stream.messages(parts[0]), bootstrap: broker.bootstrapServers)
        #expect(
            await Harness.eventually(timeout: .seconds(60)) {
                TestPostgres.storedOffsetSum(url) == stream.recordCount(parts[0])
            }
        )

        // a) Connections terminated, ten times, while records arrive.
        let admin = try PQConnection.connect(url: url, logger: quietLogger)
        defer { admin.close() }
        try Harness.produce(stream.messages(parts[1]), bootstrap: broker.bootstrapServers)
        var terminated = 0
        for _ in 0..<10 {
            let rows = try admin.query(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::bigint FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
            )
            terminated += Int(try rows.first?.int64(0) ?? 0)
            try await Task.sleep(for: .milliseconds(200))
        }
        let afterKills = await failures()

        // b) A statement timeout: the rollup table locked for 3 s, longer than the 1 s statement timeout.
        try admin.execute("BEGIN")
        try admin.execute("LOCK TABLE flowmeter.rollup_events IN ACCESS EXCLUSIVE MODE")
        try Harness.produce(stream.messages(parts[2]), bootstrap: broker.bootstrapServers)
        try await Task.sleep(for: .seconds(3))
        let duringLock = Metrics(text: (try? await http.get("/metrics").body) ?? "")
        try admin.execute("COMMIT")
        let afterLock = await failures()

        // c) The server stopped for a while, then started again.
        #expect(try server.stop() == 0)
        try Harness.produce(stream.messages(parts[3]), bootstrap: broker.bootstrapServers)
        var readiness = HTTPProbe.Response(status: 0, body: "")
        let notReady = await Harness.eventually(timeout: .seconds(30)) {
            readiness = (try? await http.get("/readyz")) ?? readiness
            return readiness.status == 503 && readiness.body.contains("PostgreSQL unreachable")
        }
        #expect(notReady, "\(readiness)")
        let down = Metrics(text: (try? await http.get("/metrics").body) ?? "")
        #expect(down.value("flowmeter_postgres_up", [:]) == 0)
        try await Task.sleep(for: .seconds(2))
        #expect(try server.start() == 0)
        print(
            "postgres faults: terminated \(terminated) backends (flush failures then \(afterKills)); locked rollup_events 3 s past a 1 s statement timeout (failures \(afterLock), unflushed during the lock \(duringLock.value("flowmeter_rollup_unflushed_records", [:]) ?? -1)); server stopped 2 s (/readyz 503: \(readiness.body.split(separator: "\n").dropFirst().first ?? ""))"
        )
        #expect(afterLock > afterKills || afterKills > 0, "no fault was ever seen by a flush")
        try await Self.finishAndCompare(daemon, url: url, stream: stream, scenario: "postgres faults")
    }

    // MARK: - 3. Kafka faults

    /// Leader moves, injected fetch, commit and coordinator errors, added latency and a broker down and up,
    /// all through the mock cluster's fault injection (`dev-kafka --control`): the pipeline resumes and the
    /// rollups are exact.
    @Test func kafkaFaults() async throws {
        let url = try TestPostgres.freshDatabase("fm_kafka_faults")
        // Live-like timestamps (the stream starts in the current minute) and only the grading flow, whose every
        // request gets its response: see the README's reliability notes for replays of old timestamps.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fm-kf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let analyzers = directory.appendingPathComponent("grading.yaml")
        try """
        topics: [exercise.submitted, exercise.graded, learning.requested]
        flows:
          - name: grading
            from: exercise.submitted
            to: exercise.graded
        """.write(to: analyzers, atomically: true, encoding: .utf8)
        let broker = try DevKafkaProcess(
            arguments: ["--control", "--broker-count", "3"] + Self.topics.flatMap { ["--topic", $0] }
        )
        let stream = LearnFlowStream(requests: 9_000, minutesAgo: 0)
        let parts = [0..<3000, 3000..<6000, 6000..<9000]
        try Harness.produce(stream.messages(parts[0]), bootstrap: broker.bootstrapServers)
        let daemon = try FlowmeterProcess(
            arguments: try Self.runArguments(broker.bootstrapServers, url) + ["--analyzers", analyzers.path]
        )
        #expect(await Harness.eventually(timeout: .seconds(60)) { TestPostgres.storedOffsetSum(url) > 0 })
        var injected: [String] = []
        func inject(_ command: String) throws {
            let answer = try broker.control(command)
            #expect(answer.hasPrefix("ok"), "\(command): \(answer)")
            injected.append(command)
        }
        try inject("leader exercise.submitted 0 2")
        try inject("leader exercise.graded 1 3")
        try inject("errors fetch 6,6,6,6")  // NOT_LEADER_OR_FOLLOWER
        try inject("errors offset-commit 16,16,16")  // NOT_COORDINATOR
        try inject("errors find-coordinator 15,15")  // COORDINATOR_NOT_AVAILABLE
        try inject("errors offset-fetch 15")
        try inject("rtt 1 200")
        try Harness.produce(stream.messages(parts[1]), bootstrap: broker.bootstrapServers)
        try await Task.sleep(for: .seconds(2))
        try inject("rtt 1 0")
        try inject("coordinator flowmeter 3")
        try inject("down 2")
        try await Task.sleep(for: .seconds(3))
        try inject("up 2")
        try inject("leader exercise.submitted 0 1")
        try Harness.produce(stream.messages(parts[2]), bootstrap: broker.bootstrapServers)
        print("kafka faults injected: \(injected.joined(separator: "; "))")
        try await Self.finishAndCompare(daemon, url: url, stream: stream, scenario: "kafka faults", flows: ["grading"])
    }

    // MARK: - 5. Hostile input

    /// A corpus of hostile records through the built binary: no crash, every record counted (by reason where
    /// it is not a valid CloudEvent, exactly as the decoder classifies it), memory bounded.
    @Test func hostileRecordsAreCountedByReason() async throws {
        let broker = try DevKafkaProcess(arguments: [
            "--topic", "exercise.submitted:1", "--topic", "exercise.submitted.dlq.exercise-agent:1",
        ])
        var corpus: [(name: String, value: [UInt8]?, headers: [KafkaHeader])] = []
        func add(_ name: String, _ text: String, headers: [KafkaHeader] = []) {
            corpus.append((name, Array(text.utf8), headers))
        }
        let valid = #""specversion":"1.0","source":"frontend","type":"t","datacontenttype":"application/json""#
        corpus.append(("invalid UTF-8", [0x7B, 0x22, 0x69, 0x64, 0x22, 0x3A, 0x22, 0xFF, 0xFE, 0x22, 0x7D], []))
        corpus.append(
            ("invalid UTF-8 in a member", Array("{\(valid),\"id\":\"".utf8) + [0xC3, 0x28] + Array("\"}".utf8), [])
        )
        add(
            "deeply nested data",
            "{\(valid),\"id\":\"n1\",\"data\":" + String(repeating: "[", count: 100_000)
                + String(repeating: "]", count: 100_000) + "}"
        )
        add("deeply nested, unclosed", String(repeating: "{\"a\":", count: 50_000))
        add("1 MiB value", "{\(valid),\"id\":\"big\",\"data\":\"" + String(repeating: "x", count: 1_000_000) + "\"}")
        add(
            "number out of range",
            "{\(valid),\"id\":\"n2\",\"data\":{\"n\":1e999999,\"m\":-99999999999999999999999999999}}"
        )
        add("id is a number", #"{"specversion":"1.0","source":"s","type":"t","id":5}"#)
        add("type is an array", #"{"specversion":"1.0","source":"s","id":"x","type":[]}"#)
        add("specversion is a number", #"{"specversion":1.0,"source":"s","id":"x","type":"t"}"#)
        add("source is null", #"{"specversion":"1.0","source":null,"id":"x","type":"t"}"#)
        add("time is an object", #"{"specversion":"1.0","source":"s","id":"x","type":"t","time":{}}"#)
        add("duplicated members", #"{"specversion":"1.0","id":"a","id":"b","source":"s","type":"t","type":"u"}"#)
        add("traceparent garbage", "{\(valid),\"id\":\"tp\",\"traceparent\":\"00-zz-\\u0000-ff\"}")
        add(
            "traceparent all zeros",
            "{\(valid),\"id\":\"tp0\",\"traceparent\":\"00-00000000000000000000000000000000-0000000000000000-01\"}"
        )
        add("not JSON", "hello, world")
        add("JSON array", "[1,2,3]")
        add("JSON string", "\"just a string\"")
        add("empty object", "{}")
        add("truncated", "{\(valid),\"id\":\"t\",\"data\":{\"a\":")
        add(
            "double-encoded",
            "\"{\\\"specversion\\\":\\\"1.0\\\",\\\"id\\\":\\\"d\\\",\\\"source\\\":\\\"s\\\",\\\"type\\\":\\\"t\\\"}\""
        )
        add("empty value", "")
        corpus.append(("tombstone", nil, []))
        add(
            "10,000 headers",
            "{\(valid),\"id\":\"h\"}",
            headers: (0..<10_000).map { KafkaHeader(name: "h\($0)", value: Array("v".utf8)) }
        )
        add(
            "binary-mode headers that lie",
            "not json",
            headers: [
                KafkaHeader(name: "ce_specversion", value: Array("9.9".utf8)),
                KafkaHeader(name: "ce_id", value: [0xFF]),
                KafkaHeader(name: "content-type", value: Array("application/cloudevents+json".utf8)),
            ]
        )
        var records = corpus.map {
            ProducerMessage(
                topic: "exercise.submitted",
                value: $0.value,
                headers: $0.headers,
                timestampMs: 1_764_000_000_000
            )
        }
        // Dead-letter copies whose Dapr headers lie.
        for (index, lie) in [
            [
                ("__topic", "no.such.topic"), ("__partition", "-7"), ("__offset", "abc"),
                ("__timestamp", "99999999999999999999"),
            ],
            [("__topic", ""), ("__offset", "-1"), ("__timestamp", "-5")],
            [("__topic", String(repeating: "t", count: 5000)), ("__partition", "2147483648")],
        ].enumerated() {
            records.append(
                ProducerMessage(
                    topic: "exercise.submitted.dlq.exercise-agent",
                    value: Array("{\(valid),\"id\":\"dlq\(index)\"}".utf8),
                    headers: lie.map { KafkaHeader(name: $0.0, value: Array($0.1.utf8)) },
                    timestampMs: 1_764_000_000_000
                )
            )
        }
        let producer = try KafkaProducer(
            config: KafkaClientConfig(
                bootstrapServers: broker.bootstrapServers,
                properties: [("message.max.bytes", "3000000")]
            ),
            logger: quietLogger
        )
        for record in records { try producer.send(record) }
        try producer.flush(timeout: .seconds(60))
        #expect(producer.deliveryCounts.failed == 0)
        producer.close()

        // What the decoder says of each record on the main topic.
        let decoder = CloudEventDecoder()
        var expectedReasons: [String: Int] = [:]
        for (offset, record) in corpus.enumerated() {
            let event = decoder.decode(
                topic: "exercise.submitted",
                partition: 0,
                offset: Int64(offset),
                timestampMs: 1_764_000_000_000,
                headers: record.headers.map { RecordHeader(name: $0.name, value: $0.value) },
                key: nil,
                value: record.value
            )
            // Tombstones are counted as a type of their own, not as invalid CloudEvents.
            if let reason = event.invalidReason, record.value != nil {
                expectedReasons[reason.rawValue, default: 0] += 1
            }
        }

        let port = try Harness.freePort()
        let daemon = try FlowmeterProcess(arguments: [
            "run", "--brokers", broker.bootstrapServers, "--http", "127.0.0.1:\(port)", "--from", "earliest",
            "--kafka-property", "fetch.max.bytes=5000000",
        ])
        let http = HTTPProbe(port: port)
        var metrics = Metrics(text: "")
        let counted = await Harness.eventually(timeout: .seconds(60)) {
            metrics = Metrics(text: (try? await http.get("/metrics").body) ?? "")
            return Int(metrics.sum("flowmeter_events_total")) == records.count
        }
        #expect(
            counted,
            "\(Int(metrics.sum("flowmeter_events_total"))) of \(records.count) counted; \(daemon.log.suffix(2000))"
        )
        #expect(daemon.process.isRunning)
        var reasons: [String: Int] = [:]
        for sample in metrics.samples
        where sample.name == "flowmeter_events_invalid_total" && sample.labels["topic"] == "exercise.submitted" {
            reasons[sample.labels["reason"] ?? "", default: 0] += Int(sample.value)
        }
        #expect(reasons == expectedReasons, "metrics \(reasons) vs decoder \(expectedReasons)")
        let resident = Harness.residentBytes(daemon.process.processIdentifier) ?? 0
        #expect(resident > 0 && resident < 400 * 1024 * 1024, "RSS \(resident)")
        let types = metrics.samples.filter { $0.name == "flowmeter_events_total" }
            .map { "\($0.labels["topic"] ?? "")/\($0.labels["type"] ?? ""): \(Int($0.value))" }
        print(
            "hostile input: \(records.count) records (\(corpus.map(\.name).joined(separator: ", ")), 3 lying DLQ copies); counted \(types); invalid by reason \(reasons.sorted { $0.key < $1.key }); RSS \(resident / 1_048_576) MiB"
        )
        daemon.process.terminate()
        #expect(await daemon.waitForExit(timeout: .seconds(30)) == 0)
    }

    // MARK: - 6. Load

    /// 100,000 distinct CloudEvent types stay bounded by the per-topic limit (the rest count as `other`), and
    /// 12,000 requests without responses against a 2,000 pending limit evict 10,000, counted.
    @Test func cardinalityAttackAndPendingEviction() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fm-load-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let analyzers = directory.appendingPathComponent("load.yaml")
        try """
        topics: [exercise.submitted, exercise.graded]
        flows:
          - name: grading
            from: exercise.submitted
            to: exercise.graded
            timeout: 1h
        limits:
          max_types_per_topic: 100
          max_pending_flow_requests: 2000
        """.write(to: analyzers, atomically: true, encoding: .utf8)
        let broker = try DevKafkaProcess(arguments: [
            // 100,000 small records: spread so no partition passes the mock's 5 MiB retention.
            "--topic", "exercise.submitted:4", "--topic", "exercise.graded:8",
        ])
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        var messages: [ProducerMessage] = []
        for index in 0..<100_000 {
            let body = #"{"specversion":"1.0","id":"c\#(index)","source":"attacker","type":"attack.\#(index)"}"#
            messages.append(ProducerMessage(topic: "exercise.graded", value: Array(body.utf8), timestampMs: now))
        }
        for index in 0..<12_000 {
            let trace = String(format: "%032x", 0xA000_0000 + index)
            messages.append(
                ProducerMessage(
                    topic: "exercise.submitted",
                    value: Array(
                        Dapr.envelope(
                            id: "r\(index)",
                            topic: "exercise.submitted",
                            source: "frontend",
                            trace: trace,
                            data: "{}"
                        )
                        .utf8
                    ),
                    timestampMs: now
                )
            )
        }
        try Harness.produce(messages, bootstrap: broker.bootstrapServers)
        let port = try Harness.freePort()
        let daemon = try FlowmeterProcess(arguments: [
            "run", "--brokers", broker.bootstrapServers, "--http", "127.0.0.1:\(port)", "--from", "earliest",
            "--analyzers", analyzers.path,
        ])
        let http = HTTPProbe(port: port)
        var metrics = Metrics(text: "")
        let done = await Harness.eventually(timeout: .seconds(90)) {
            metrics = Metrics(text: (try? await http.get("/metrics").body) ?? "")
            return Int(metrics.sum("flowmeter_events_total")) == messages.count
        }
        #expect(done, "\(Int(metrics.sum("flowmeter_events_total"))) of \(messages.count); \(daemon.log.suffix(1500))")
        let gradedSeries = metrics.samples.filter {
            $0.name == "flowmeter_events_total" && $0.labels["topic"] == "exercise.graded"
        }
        #expect(gradedSeries.count == 101, "\(gradedSeries.count) series")
        #expect(metrics.value("flowmeter_events_total", ["topic": "exercise.graded", "type": "other"]) == 99_900)
        #expect(metrics.value("flowmeter_flow_evicted_total", ["flow": "grading"]) == 10_000)
        let resident = Harness.residentBytes(daemon.process.processIdentifier) ?? 0
        #expect(resident < 400 * 1024 * 1024, "RSS \(resident)")
        print(
            "load: 100,000 distinct types → \(gradedSeries.count) series (100 types + other = \(Int(metrics.value("flowmeter_events_total", ["topic": "exercise.graded", "type": "other"]) ?? -1))); 12,000 pending requests over a 2,000 limit → evicted \(Int(metrics.value("flowmeter_flow_evicted_total", ["flow": "grading"]) ?? -1)); /metrics \(metrics.text.utf8.count) bytes; RSS \(resident / 1_048_576) MiB"
        )
        daemon.process.terminate()
        #expect(await daemon.waitForExit(timeout: .seconds(30)) == 0)
    }
}
