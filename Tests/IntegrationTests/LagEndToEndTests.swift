import Foundation
import Kafka
import Postgres
import Testing

/// Consumer lag, end to end: the built binary's lag monitor against `flowmeter dev-kafka`, with watched groups
/// that commit at known offsets (through the Kafka bridge, as `kcat -G` would) over records with known timestamps.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct LagEndToEndTests {
    /// The watched groups of these tests, with a status window of 3 samples so statuses move in seconds.
    static let analyzers = """
        topics: [exercise.submitted, exercise.graded, course.completed]
        dead_letters:
          patterns: []
        groups:
          - group: exercise-agent
            topics: [exercise.submitted]
          - group: frontend
            topics: [exercise.graded]
          - group: progress-agent
            topics: [exercise.graded]
          - group: course-agent
            topics: [course.completed]
        limits:
          status_window: 3
        """

    static func analyzerFile() throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fm-lag-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let file = directory.appendingPathComponent("lag.yaml")
        try analyzers.write(to: file, atomically: true, encoding: .utf8)
        return file.path
    }

    static func runArguments(_ bootstrap: String, port: Int, extra: [String] = []) throws -> [String] {
        [
            "run", "--brokers", bootstrap, "--analyzers", try analyzerFile(), "--from", "earliest",
            "--http", "127.0.0.1:\(port)", "--lag-interval", "300ms", "--kafka-property", "fetch.wait.max.ms=10",
        ] + extra
    }

    static func nowMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    static func labels(_ group: String, _ topic: String, _ partition: Int) -> [String: String] {
        ["group": group, "topic": topic, "partition": "\(partition)"]
    }

    /// Offset lag, time lag to the millisecond of the record timestamps, caught-up partitions (one ending in a
    /// transaction), a group without commits, and a commit below the log start; checked in `/metrics` and in
    /// the samples written to `flowmeter.consumer_lag`, and read back with `flowmeter query lag`.
    @Test func exactLagNoCommitLostRecordsAndTransactions() async throws {
        let url = try TestPostgres.freshDatabase("fm_lag")
        let broker = try DevKafkaProcess(arguments: [
            "--topic", "exercise.submitted:2", "--topic", "exercise.graded:1", "--topic", "course.completed:1",
        ])
        let bootstrap = broker.bootstrapServers
        let base = Self.nowMs() - 120_000
        var messages: [ProducerMessage] = []
        for index in 0..<10 {
            messages.append(
                ProducerMessage(
                    topic: "exercise.submitted",
                    partition: 0,
                    value: Array("submission \(index)".utf8),
                    timestampMs: base + Int64(index) * 1000
                )
            )
        }
        for index in 0..<4 {
            messages.append(
                ProducerMessage(
                    topic: "exercise.submitted",
                    partition: 1,
                    value: Array("submission \(index)".utf8),
                    timestampMs: base + Int64(index)
                )
            )
        }
        try Harness.produce(messages, bootstrap: bootstrap)
        // exercise.graded: written in one transaction (a real broker appends a commit marker after the records).
        let transactional = try KafkaProducer(
            config: KafkaClientConfig(
                bootstrapServers: bootstrap,
                properties: [("transactional.id", "exercise-agent-\(UUID().uuidString)")]
            ),
            logger: quietLogger
        )
        try transactional.initTransactions()
        try transactional.beginTransaction()
        for index in 0..<5 {
            try transactional.send(
                ProducerMessage(
                    topic: "exercise.graded",
                    partition: 0,
                    value: Array("grade \(index)".utf8),
                    timestampMs: base + Int64(index)
                )
            )
        }
        try transactional.commitTransaction()
        transactional.close()
        // course.completed: 7 MiB through a partition the mock keeps 5 MiB of, so its log start moves up.
        let payload = [UInt8](repeating: 0x61, count: 100 * 1024)
        try Harness.produce(
            (0..<70).map { _ in
                ProducerMessage(topic: "course.completed", partition: 0, value: payload, timestampMs: base)
            },
            bootstrap: bootstrap
        )

        let committer = { (group: String) in
            try KafkaConsumer(
                config: KafkaClientConfig(bootstrapServers: bootstrap),
                groupID: group,
                logger: quietLogger
            )
        }
        let exerciseAgent = try committer("exercise-agent")
        try exerciseAgent.commit(processed: [
            TopicPartition("exercise.submitted", 0): 3, TopicPartition("exercise.submitted", 1): 3,
        ])
        exerciseAgent.close()
        let frontend = try committer("frontend")
        try frontend.commit(processed: [TopicPartition("exercise.graded", 0): 4])  // all five data records
        frontend.close()
        let courseAgent = try committer("course-agent")
        try courseAgent.commit(processed: [TopicPartition("course.completed", 0): -1])  // committed offset 0
        courseAgent.close()

        let port = try Harness.freePort()
        let daemon = try FlowmeterProcess(
            arguments: try Self.runArguments(bootstrap, port: port, extra: ["--postgres", url]),
            environment: ["FLOWMETER_LAG_SAMPLE_INTERVAL": "1s"]
        )
        let http = HTTPProbe(port: port)
        try await http.waitUntilReady(timeout: .seconds(60), daemon: daemon)

        // /metrics
        var metrics = Metrics(text: "")
        let complete = await Harness.eventually(timeout: .seconds(30)) {
            metrics = Metrics(text: (try? await http.get("/metrics").body) ?? "")
            return metrics.value(
                "flowmeter_consumergroup_lag_messages",
                Self.labels("exercise-agent", "exercise.submitted", 0)
            ) != nil
                && metrics.value(
                    "flowmeter_consumergroup_lost_messages",
                    Self.labels("course-agent", "course.completed", 0)
                )
                    != nil
        }
        #expect(complete, "lag series missing: \(metrics.text.suffix(3000)) \(daemon.log.suffix(2000))")
        let lagged = Self.labels("exercise-agent", "exercise.submitted", 0)
        #expect(metrics.value("flowmeter_consumergroup_lag_messages", lagged) == 6)
        let lagSeconds = try #require(metrics.value("flowmeter_consumergroup_lag_seconds", lagged))
        // now − the timestamp of the record at offset 4, taken at some poll before this scrape.
        let upper = Double(Self.nowMs() - (base + 4000)) / 1000
        #expect(lagSeconds <= upper && lagSeconds >= upper - 5, "\(lagSeconds) vs \(upper)")
        let caughtUp = Self.labels("exercise-agent", "exercise.submitted", 1)
        #expect(metrics.value("flowmeter_consumergroup_lag_messages", caughtUp) == 0)
        #expect(metrics.value("flowmeter_consumergroup_lag_seconds", caughtUp) == 0)
        let afterTransaction = Self.labels("frontend", "exercise.graded", 0)
        #expect(metrics.value("flowmeter_consumergroup_lag_messages", afterTransaction) == 0)
        #expect(metrics.value("flowmeter_consumergroup_lag_seconds", afterTransaction) == 0)
        let never = Self.labels("progress-agent", "exercise.graded", 0)
        #expect(metrics.value("flowmeter_consumergroup_no_commit", never) == 1)
        #expect(metrics.value("flowmeter_consumergroup_lag_messages", never) == nil)
        #expect(metrics.value("flowmeter_consumergroup_lag_seconds", never) == nil)
        let lost = Self.labels("course-agent", "course.completed", 0)
        let lostMessages = try #require(metrics.value("flowmeter_consumergroup_lost_messages", lost))
        #expect(lostMessages > 0)
        #expect(metrics.value("flowmeter_consumergroup_lag_messages", lost) == 70 - lostMessages)
        #expect(metrics.value("flowmeter_consumergroup_status", ["group": "course-agent", "status": "error"]) == 1)
        for group in ["exercise-agent", "frontend", "progress-agent", "course-agent", "flowmeter"] {
            #expect(metrics.value("flowmeter_consumergroup_lag_stale", ["group": group]) == 0, "\(group)")
            let statuses = ["ok", "warning", "stalled", "stopped", "error"].compactMap {
                metrics.value("flowmeter_consumergroup_status", ["group": group, "status": $0])
            }
            #expect(statuses.count == 5 && statuses.reduce(0, +) == 1, "\(group): \(statuses)")
        }

        // flowmeter.consumer_lag: time lag exact to the millisecond of the sample's own time.
        let sampled = await Harness.eventually(timeout: .seconds(30)) {
            ((try? Self.lagRows(url)) ?? []).count >= 5
        }
        #expect(sampled, "no lag samples in PostgreSQL: \(daemon.log.suffix(2000))")
        let rows = try Self.lagRows(url)
        let row = try #require(rows.first { $0.group == "exercise-agent" && $0.partition == 0 })
        #expect(row.committed == 4 && row.end == 10 && row.lagMessages == 6 && row.logStart == 0)
        let exact = Double(row.sampledAtMs - (base + 4000)) / 1000
        #expect(abs((row.lagSeconds ?? -1) - exact) <= 0.001, "\(String(describing: row.lagSeconds)) vs \(exact)")
        let graded = try #require(rows.first { $0.group == "frontend" })
        #expect(graded.lagMessages == 0 && graded.lagSeconds == 0 && graded.status == "ok")
        let unseen = try #require(rows.first { $0.group == "progress-agent" })
        #expect(unseen.committed == nil && unseen.lagMessages == nil && unseen.lagSeconds == nil)
        let below = try #require(rows.first { $0.group == "course-agent" })
        #expect(below.committed == 0 && below.logStart == Int64(lostMessages) && below.status == "error")

        // `flowmeter query lag` reads the same rows.
        let query = try Harness.run(
            try Harness.flowmeterBinary(),
            ["query", "lag", "--postgres", url, "--group", "exercise-agent", "--format", "json"]
        )
        #expect(query.status == 0, "\(query.stderr)")
        #expect(
            query.stdout.contains("\"exercise-agent\"") && query.stdout.contains("\"lag_messages\": 6"),
            "\(query.stdout)"
        )
        let table = try Harness.run(try Harness.flowmeterBinary(), ["query", "lag", "--postgres", url])
        #expect(table.status == 0)
        print("flowmeter query lag:\n\(table.stdout)")

        daemon.process.terminate()
        #expect(await daemon.waitForExit(timeout: .seconds(30)) == 0)
    }

    struct LagRow {
        var sampledAtMs: Int64
        var group: String
        var topic: String
        var partition: Int32
        var committed: Int64?
        var logStart: Int64
        var end: Int64
        var lagMessages: Int64?
        var lagSeconds: Double?
        var status: String
    }

    /// The latest sample of every group and partition.
    static func lagRows(_ url: String) throws -> [LagRow] {
        let connection = try PQConnection.connect(url: url, logger: quietLogger)
        defer { connection.close() }
        return try connection.query(
            """
            SELECT DISTINCT ON (group_id, topic, partition)
                (extract(epoch FROM sampled_at) * 1000)::bigint, group_id, topic, partition, committed_offset,
                log_start_offset, end_offset, lag_messages, lag_seconds::text, status
            FROM flowmeter.consumer_lag ORDER BY group_id, topic, partition, sampled_at DESC
            """
        ).map { row in
            LagRow(
                sampledAtMs: try row.int64(0) ?? 0,
                group: try row.string(1) ?? "",
                topic: try row.string(2) ?? "",
                partition: Int32(try row.int64(3) ?? -1),
                committed: try row.int64(4),
                logStart: try row.int64(5) ?? -1,
                end: try row.int64(6) ?? -1,
                lagMessages: try row.int64(7),
                lagSeconds: try row.string(8).flatMap(Double.init),
                status: try row.string(9) ?? ""
            )
        }
    }

    /// A group that keeps up, falls behind while still committing, stops committing, stays stopped, then
    /// catches up: ok → warning → stalled → stopped → ok, in the daemon's log of status changes, and `/metrics`
    /// agreeing with it.
    @Test func statusFollowsTheGroup() async throws {
        let broker = try DevKafkaProcess(arguments: ["--topic", "exercise.submitted:1"])
        let bootstrap = broker.bootstrapServers
        let partition = TopicPartition("exercise.submitted", 0)
        let producer = try KafkaProducer(
            config: KafkaClientConfig(bootstrapServers: bootstrap, properties: [("linger.ms", "1")]),
            logger: quietLogger
        )
        defer { producer.close() }
        var end: Int64 = 0
        func produce(_ count: Int) throws {
            for index in 0..<count {
                try producer.send(
                    ProducerMessage(
                        topic: partition.topic,
                        partition: 0,
                        value: Array("record \(end + Int64(index))".utf8),
                        timestampMs: Self.nowMs()
                    )
                )
            }
            try producer.flush(timeout: .seconds(20))
            end += Int64(count)
        }
        let group = try KafkaConsumer(
            config: KafkaClientConfig(bootstrapServers: bootstrap),
            groupID: "exercise-agent",
            logger: quietLogger
        )
        defer { group.close() }
        try produce(10)
        try group.commit(processed: [partition: end - 1])

        let port = try Harness.freePort()
        let daemon = try FlowmeterProcess(arguments: try Self.runArguments(bootstrap, port: port))
        let http = HTTPProbe(port: port)
        try await http.waitUntilReady(timeout: .seconds(60), daemon: daemon)
        func status() async -> String? {
            let metrics = Metrics(text: (try? await http.get("/metrics").body) ?? "")
            return ["ok", "warning", "stalled", "stopped", "error"].first {
                metrics.value("flowmeter_consumergroup_status", ["group": "exercise-agent", "status": $0]) == 1
            }
        }
        // The statuses the daemon logged for the group, starting from the `ok` every group starts with.
        func logged() -> [String] {
            ["ok"]
                + daemon.log.split(separator: "\n").filter {
                    $0.contains("Consumer group status changed") && $0.contains("lag.group=exercise-agent ")
                }.compactMap { line in
                    line.split(separator: " ").first { $0.hasPrefix("lag.status=") }.map {
                        String($0.dropFirst("lag.status=".count))
                    }
                }
        }
        var seen: [String] = []
        func observe() async {
            if let now = await status(), now != seen.last { seen.append(now) }
        }
        // Waits for one of `wanted` in `/metrics` (a later status ends the wait too: a scrape delayed on a loaded
        // machine can miss a short one, which the log still holds).
        func until(_ wanted: Set<String>, timeout: Duration, while step: () async throws -> Void) async throws {
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                try await step()
                await observe()
                if let last = seen.last, wanted.contains(last) { return }
            }
        }

        // Caught up.
        try await until(["ok"], timeout: .seconds(20)) { try await Task.sleep(for: .milliseconds(200)) }
        // Falling behind while committing: lag grows across the window.
        var committed = end
        try await until(["warning"], timeout: .seconds(20)) {
            try produce(4)
            committed += 1
            try group.commit(processed: [partition: committed - 1])
            try await Task.sleep(for: .milliseconds(150))
        }
        // The group stops committing: the offset stays put for a whole window...
        try await until(["stalled", "stopped"], timeout: .seconds(20)) {
            try await Task.sleep(for: .milliseconds(100))
        }
        // ... and for more than twice the window.
        try await until(["stopped"], timeout: .seconds(20)) { try await Task.sleep(for: .milliseconds(100)) }
        // It catches up.
        try group.commit(processed: [partition: end - 1])
        try await until(["ok"], timeout: .seconds(20)) { try await Task.sleep(for: .milliseconds(100)) }
        // The last change is logged after the state `/metrics` reads is updated: wait for it to reach the log.
        _ = await Harness.eventually(timeout: .seconds(10)) { logged().count > 1 && logged().last == "ok" }
        let log = logged()
        print("lag status sequence: /metrics \(seen), log \(log)")
        // In this order; on a loaded machine a short "stalled" can also appear while the group falls behind (a
        // producer flush slower than the status window leaves the commit unchanged for a whole window).
        func follows(_ sequence: [String], _ wanted: [String]) -> Bool {
            var rest = wanted[...]
            for status in sequence where status == rest.first { rest.removeFirst() }
            return rest.isEmpty
        }
        #expect(
            follows(log, ["ok", "warning", "stalled", "stopped", "ok"]) && log.last == "ok",
            "log \(log); \(daemon.log.suffix(2000))"
        )
        // `/metrics` showed the same history: every status it showed, in the log's order, ending ok.
        #expect(
            seen.first == "ok" && seen.last == "ok" && follows(log, seen)
                && follows(seen, ["ok", "warning", "stopped"]),
            "/metrics \(seen); log \(log)"
        )
        daemon.process.terminate()
        #expect(await daemon.waitForExit(timeout: .seconds(30)) == 0)
    }

    /// The broker goes down: lag is marked stale and keeps its last values; back up, it is fresh and correct.
    @Test func aBrokerOutageMakesLagStaleThenCorrectAgain() async throws {
        let broker = try DevKafkaProcess(arguments: ["--control", "--topic", "exercise.submitted:1"])
        let bootstrap = broker.bootstrapServers
        let partition = TopicPartition("exercise.submitted", 0)
        let base = Self.nowMs() - 60_000
        try Harness.produce(
            (0..<10).map {
                ProducerMessage(topic: partition.topic, partition: 0, value: [0x61], timestampMs: base + Int64($0))
            },
            bootstrap: bootstrap
        )
        let group = try KafkaConsumer(
            config: KafkaClientConfig(bootstrapServers: bootstrap),
            groupID: "exercise-agent",
            logger: quietLogger
        )
        try group.commit(processed: [partition: 3])
        group.close()

        let port = try Harness.freePort()
        let daemon = try FlowmeterProcess(arguments: try Self.runArguments(bootstrap, port: port))
        let http = HTTPProbe(port: port)
        try await http.waitUntilReady(timeout: .seconds(60), daemon: daemon)
        let labels = Self.labels("exercise-agent", partition.topic, 0)
        var metrics = Metrics(text: "")
        func scrape() async -> Metrics {
            metrics = Metrics(text: (try? await http.get("/metrics").body) ?? "")
            return metrics
        }
        #expect(
            await Harness.eventually(timeout: .seconds(30)) {
                await scrape().value("flowmeter_consumergroup_lag_messages", labels) == 6
                    && metrics.value("flowmeter_consumergroup_lag_stale", ["group": "exercise-agent"]) == 0
            }
        )

        #expect(try broker.control("down 1") == "ok down 1")
        let stale = await Harness.eventually(timeout: .seconds(30)) {
            await scrape().value("flowmeter_consumergroup_lag_stale", ["group": "exercise-agent"]) == 1
        }
        #expect(stale, "never stale: \(metrics.text.suffix(2000))")
        // The last values, kept as they were while it stays stale (a poll may have refreshed them between the
        // last fresh scrape and the outage, so the comparison is between scrapes taken while stale).
        #expect(metrics.value("flowmeter_consumergroup_lag_messages", labels) == 6)
        let kept = metrics.value("flowmeter_consumergroup_lag_seconds", labels)
        try await Task.sleep(for: .seconds(1))  // a few more polls at 300 ms
        let later = await scrape()
        #expect(later.value("flowmeter_consumergroup_lag_stale", ["group": "exercise-agent"]) == 1)
        #expect(later.value("flowmeter_consumergroup_lag_messages", labels) == 6)
        #expect(kept != nil && later.value("flowmeter_consumergroup_lag_seconds", labels) == kept)

        #expect(try broker.control("up 1") == "ok up 1")
        try Harness.produce(
            (0..<5).map {
                ProducerMessage(
                    topic: partition.topic,
                    partition: 0,
                    value: [0x62],
                    timestampMs: base + 100 + Int64($0)
                )
            },
            bootstrap: bootstrap
        )
        let recovered = await Harness.eventually(timeout: .seconds(60)) {
            await scrape().value("flowmeter_consumergroup_lag_stale", ["group": "exercise-agent"]) == 0
                && metrics.value("flowmeter_consumergroup_lag_messages", labels) == 11
        }
        #expect(recovered, "not fresh again: \(metrics.text.suffix(2000)) \(daemon.log.suffix(2000))")
        print("broker down: lag stale with the last value kept (6); up again: fresh, 11")
        daemon.process.terminate()
        #expect(await daemon.waitForExit(timeout: .seconds(30)) == 0)
    }

    /// Two replicas in one group: each polls lag only for the partitions assigned to it.
    @Test func twoReplicasSplitLagPolling() async throws {
        let broker = try DevKafkaProcess(arguments: ["--topic", "exercise.submitted:4"])
        let bootstrap = broker.bootstrapServers
        let partitions = (0..<4).map { TopicPartition("exercise.submitted", Int32($0)) }
        try Harness.produce(
            partitions.flatMap { partition in
                (0..<3).map { _ in
                    ProducerMessage(topic: partition.topic, partition: partition.partition, value: [0x61])
                }
            },
            bootstrap: bootstrap
        )
        let group = try KafkaConsumer(
            config: KafkaClientConfig(bootstrapServers: bootstrap),
            groupID: "exercise-agent",
            logger: quietLogger
        )
        try group.commit(processed: Dictionary(uniqueKeysWithValues: partitions.map { ($0, 0) }))
        group.close()

        let shared = [
            "--group", "fm-replicas", "--kafka-property", "session.timeout.ms=6000",
            "--kafka-property", "heartbeat.interval.ms=500",
        ]
        let ports = [try Harness.freePort(), try Harness.freePort()]
        let replicas = try ports.map {
            try FlowmeterProcess(arguments: try Self.runArguments(bootstrap, port: $0, extra: shared))
        }
        func reported(_ port: Int) async -> Set<Int32> {
            let metrics = Metrics(text: (try? await HTTPProbe(port: port).get("/metrics").body) ?? "")
            return Set(
                metrics.samples.filter {
                    $0.name == "flowmeter_consumergroup_lag_messages" && $0.labels["group"] == "exercise-agent"
                }.compactMap { Int32($0.labels["partition"] ?? "") }
            )
        }
        var split: [Set<Int32>] = []
        let divided = await Harness.eventually(timeout: .seconds(60)) {
            split = [await reported(ports[0]), await reported(ports[1])]
            return !split[0].isEmpty && !split[1].isEmpty && split[0].isDisjoint(with: split[1])
                && split[0].union(split[1]) == [0, 1, 2, 3]
        }
        print("two replicas report exercise-agent partitions \(split[0].sorted()) and \(split[1].sorted())")
        #expect(divided, "\(split) \(replicas[0].log.suffix(1500)) \(replicas[1].log.suffix(1500))")
        for replica in replicas { replica.process.terminate() }
        for replica in replicas { #expect(await replica.waitForExit(timeout: .seconds(30)) == 0) }
    }
}
