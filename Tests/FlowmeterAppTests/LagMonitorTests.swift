import FlowmeterApp
import FlowmeterCore
import Foundation
import Kafka
import Logging
import Synchronization
import Testing

private let quiet = Logger(label: "quiet") { _ in SwiftLogNoOpLogHandler() }

/// A mock cluster, a producer, and helpers to drive a watched group's commits.
private final class LagFixture: Sendable {
    let cluster: MockKafkaCluster
    let producer: KafkaProducer

    init(topics: [String: Int32]) throws {
        cluster = try MockKafkaCluster(brokerCount: 1, logger: quiet)
        for (topic, partitions) in topics { try cluster.createTopic(topic, partitions: partitions) }
        producer = try KafkaProducer(
            config: KafkaClientConfig(bootstrapServers: cluster.bootstrapServers),
            logger: quiet
        )
    }

    var config: KafkaClientConfig {
        KafkaClientConfig(bootstrapServers: cluster.bootstrapServers, properties: [("fetch.wait.max.ms", "10")])
    }

    /// Produces `count` records to one partition with the given timestamps.
    func produce(_ partition: TopicPartition, count: Int, timestampMs: (Int) -> Int64) throws {
        for index in 0..<count {
            try producer.send(
                ProducerMessage(
                    topic: partition.topic,
                    partition: partition.partition,
                    value: Array("record \(index)".utf8),
                    timestampMs: timestampMs(index)
                )
            )
        }
        try producer.flush(timeout: .seconds(20))
    }

    /// A consumer of `group` that only commits (it never subscribes, so it never joins).
    func committer(_ group: String) throws -> KafkaConsumer {
        try KafkaConsumer(config: config, groupID: group, logger: quiet)
    }

    func monitor(
        groups: [WatchedGroup],
        ownGroup: String = "flowmeter",
        window: Int = 3,
        assignment: Set<TopicPartition>,
        seenTimestamp: @escaping @Sendable (TopicPartition, Int64) -> Int64? = { _, _ in nil },
        cachedWatermarks: @escaping @Sendable (TopicPartition) -> Watermarks? = { _ in nil },
        logger: Logger = quiet
    ) throws -> LagMonitor {
        var limits = AnalyzerLimits()
        limits.statusWindow = window
        let analyzers = AnalyzerSet(
            topics: Set(groups.flatMap(\.topics)).sorted().map { .name($0) },
            groups: groups,
            limits: limits
        )
        return try LagMonitor(
            analyzers: analyzers,
            ownGroup: ownGroup,
            kafka: config,
            interval: .milliseconds(200),
            requestTimeout: .seconds(1),
            readTimeout: .seconds(2),
            logger: logger,
            assignment: { assignment },
            cachedWatermarks: cachedWatermarks,
            seenTimestamp: seenTimestamp
        )
    }

    deinit {
        producer.close()
        cluster.close()
    }
}

private func nowMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

private func sample(_ monitor: LagMonitor, _ group: String, _ partition: TopicPartition) -> LagSample? {
    monitor.samples.first { $0.groupID == group && $0.topic == partition.topic && $0.partition == partition.partition }
}

private func metrics(_ monitor: LagMonitor) -> String {
    var text = ""
    monitor.writeMetrics(into: &text)
    return text
}

@Suite(.serialized, .timeLimit(.minutes(1)))
struct LagMonitorTests {
    @Test func exactOffsetLagTimeLagAndNoCommit() async throws {
        let fixture = try LagFixture(topics: ["orders": 2])
        let p0 = TopicPartition("orders", 0)
        let p1 = TopicPartition("orders", 1)
        let base = nowMs() - 120_000
        try fixture.produce(p0, count: 10) { base + Int64($0) * 1000 }
        try fixture.produce(p1, count: 5) { _ in base }
        let graders = try fixture.committer("graders")
        defer { graders.close() }
        try graders.commit(processed: [p0: 3, p1: 4])  // next offsets 4 and 5

        let monitor = try fixture.monitor(
            groups: [
                WatchedGroup(group: .name("graders"), topics: ["orders"]),
                WatchedGroup(group: .name("nobody"), topics: ["orders"]),
            ],
            assignment: [p0, p1]
        )
        defer { monitor.close() }
        let before = nowMs()
        await monitor.pollOnce()
        let after = nowMs()

        let lagging = try #require(sample(monitor, "graders", p0))
        #expect(lagging.committedOffset == 4)
        #expect(lagging.logStartOffset == 0)
        #expect(lagging.endOffset == 10)
        #expect(lagging.lagMessages == 6)
        // Time lag = now − timestamp of the record at offset 4, exactly, within the poll's duration.
        let recordTime = base + 4000
        let seconds = try #require(lagging.lagSeconds)
        #expect(seconds >= Double(before - recordTime) / 1000 - 0.001)
        #expect(seconds <= Double(after - recordTime) / 1000 + 0.001)
        #expect(lagging.status == .ok)

        let caughtUp = try #require(sample(monitor, "graders", p1))
        #expect(caughtUp.committedOffset == 5)
        #expect(caughtUp.lagMessages == 0)
        #expect(caughtUp.lagSeconds == 0)

        let never = try #require(sample(monitor, "nobody", p0))
        #expect(never.committedOffset == nil)
        #expect(never.lagMessages == nil)
        #expect(never.lagSeconds == nil)
        #expect(never.endOffset == 10)
        // Flowmeter's own group is always watched, on all its assigned partitions.
        #expect(sample(monitor, "flowmeter", p0) != nil)
        #expect(sample(monitor, "flowmeter", p1) != nil)
        #expect(monitor.samples.count == 6)

        let text = metrics(monitor)
        #expect(
            text.contains(
                "flowmeter_consumergroup_lag_messages{group=\"graders\",topic=\"orders\",partition=\"0\"} 6\n"
            )
        )
        #expect(
            text.contains(
                "flowmeter_consumergroup_lag_messages{group=\"graders\",topic=\"orders\",partition=\"1\"} 0\n"
            )
        )
        #expect(
            text.contains("flowmeter_consumergroup_lag_seconds{group=\"graders\",topic=\"orders\",partition=\"1\"} 0\n")
        )
        #expect(
            text.contains("flowmeter_consumergroup_no_commit{group=\"nobody\",topic=\"orders\",partition=\"0\"} 1\n")
        )
        #expect(
            text.contains("flowmeter_consumergroup_no_commit{group=\"graders\",topic=\"orders\",partition=\"0\"} 0\n")
        )
        #expect(!text.contains("flowmeter_consumergroup_lag_messages{group=\"nobody\""))
        #expect(
            text.contains(
                "flowmeter_consumergroup_lost_messages{group=\"graders\",topic=\"orders\",partition=\"0\"} 0\n"
            )
        )
        #expect(text.contains("flowmeter_consumergroup_lag_stale{group=\"graders\"} 0\n"))
        #expect(text.contains("# TYPE flowmeter_lag_poll_seconds gauge\nflowmeter_lag_poll_seconds "))
        // The duration of the last cycle: present and positive once a cycle ran.
        let pollSeconds = text.split(separator: "\n").first { $0.hasPrefix("flowmeter_lag_poll_seconds ") }
            .flatMap { Double($0.split(separator: " ")[1]) }
        #expect((pollSeconds ?? 0) > 0)
        for family in ["lag_messages", "lag_seconds", "no_commit", "lost_messages", "status", "lag_stale"] {
            #expect(text.contains("# HELP flowmeter_consumergroup_\(family) "))
            #expect(text.contains("# TYPE flowmeter_consumergroup_\(family) gauge\n"))
        }
        let statusLines = text.split(separator: "\n").filter {
            $0.hasPrefix("flowmeter_consumergroup_status{group=\"graders\"")
        }
        #expect(statusLines.count == 5)
        #expect(
            statusLines.filter { $0.hasSuffix(" 1") } == [
                "flowmeter_consumergroup_status{group=\"graders\",status=\"ok\"} 1"
            ]
        )

        // The record at the unchanged position is read once, not every cycle.
        #expect(monitor.recordReads == 1)
        await monitor.pollOnce()
        #expect(monitor.recordReads == 1)
        #expect(sample(monitor, "graders", p0)?.lagMessages == 6)
    }

    @Test func theTimestampFlowmeterSawItselfIsUsedWithoutReading() async throws {
        let fixture = try LagFixture(topics: ["orders": 1])
        let p0 = TopicPartition("orders", 0)
        try fixture.produce(p0, count: 10) { _ in nowMs() }
        let graders = try fixture.committer("graders")
        defer { graders.close() }
        try graders.commit(processed: [p0: 6])
        let seenAt = nowMs() - 3_600_000
        let monitor = try fixture.monitor(
            groups: [WatchedGroup(group: .name("graders"), topics: ["orders"])],
            assignment: [p0],
            seenTimestamp: { partition, offset in partition == p0 && offset == 7 ? seenAt : nil },
            cachedWatermarks: { _ in Watermarks(low: 0, high: 10) }
        )
        defer { monitor.close() }
        await monitor.pollOnce()
        let row = try #require(sample(monitor, "graders", p0))
        #expect(row.lagMessages == 3)
        #expect(abs((row.lagSeconds ?? 0) - 3600) < 5)
        #expect(monitor.recordReads == 0)
    }

    @Test func statusMovesOkWarningStalledStoppedOk() async throws {
        let fixture = try LagFixture(topics: ["lessons": 1])
        let p0 = TopicPartition("lessons", 0)
        let graders = try fixture.committer("graders")
        defer { graders.close() }
        let monitor = try fixture.monitor(
            groups: [WatchedGroup(group: .name("graders"), topics: ["lessons"])],
            window: 3,
            assignment: [p0]
        )
        defer { monitor.close() }
        var end: Int64 = 0
        func step(produce count: Int, commitNext next: Int64?) async throws -> LagStatus? {
            if count > 0 { try fixture.produce(p0, count: count) { _ in nowMs() } }
            end += Int64(count)
            if let next { try graders.commit(processed: [p0: next - 1]) }
            await monitor.pollOnce()
            return monitor.status(group: "graders")
        }
        var seen: [LagStatus?] = []
        seen.append(try await step(produce: 10, commitNext: 10))  // caught up
        seen.append(try await step(produce: 5, commitNext: 11))  // lag 4
        seen.append(try await step(produce: 5, commitNext: 12))  // lag 8
        seen.append(try await step(produce: 5, commitNext: 13))  // lag 12: growing with a moving commit
        seen.append(try await step(produce: 3, commitNext: nil))  // lag 15, commit frozen (run 2)
        seen.append(try await step(produce: 0, commitNext: nil))  // run 3: a whole window
        for _ in 0..<3 { seen.append(try await step(produce: 0, commitNext: nil)) }  // run 4...6
        seen.append(try await step(produce: 0, commitNext: nil))  // run 7 > 2 × 3
        seen.append(try await step(produce: 0, commitNext: end))  // caught up
        #expect(
            seen == [
                .ok, .ok, .ok, .warning, .warning, .stalled, .stalled, .stalled, .stalled, .stopped, .ok,
            ]
        )
        #expect(sample(monitor, "graders", p0)?.lagMessages == 0)
        #expect(metrics(monitor).contains("flowmeter_consumergroup_status{group=\"graders\",status=\"ok\"} 1\n"))
    }

    @Test func caughtUpAfterATransactionReadsZero() async throws {
        let fixture = try LagFixture(topics: ["grades": 1])
        let p0 = TopicPartition("grades", 0)
        let transactional = try KafkaProducer(
            config: KafkaClientConfig(
                bootstrapServers: fixture.cluster.bootstrapServers,
                properties: [("transactional.id", "grader-\(UUID().uuidString)")]
            ),
            logger: quiet
        )
        defer { transactional.close() }
        try transactional.initTransactions()
        try transactional.beginTransaction()
        for index in 0..<3 {
            try transactional.send(ProducerMessage(topic: "grades", partition: 0, value: Array("\(index)".utf8)))
        }
        try transactional.commitTransaction()
        let graders = try fixture.committer("graders")
        defer { graders.close() }
        try graders.commit(processed: [p0: 2])  // consumed all three data records
        let monitor = try fixture.monitor(
            groups: [WatchedGroup(group: .name("graders"), topics: ["grades"])],
            assignment: [p0]
        )
        defer { monitor.close() }
        await monitor.pollOnce()
        let row = try #require(sample(monitor, "graders", p0))
        // On a real broker the end is 4 (one past the commit marker); the 2.0.2 mock writes no marker (3).
        #expect(row.committedOffset == 3)
        #expect(row.lagMessages == 0)
        #expect(row.lagSeconds == 0)
        #expect(row.status == .ok)
    }

    @Test func aCommitBelowTheLogStartIsLostNotLag() async throws {
        let fixture = try LagFixture(topics: ["big": 1])
        let p0 = TopicPartition("big", 0)
        // The mock keeps 5 MiB per partition: 7 MiB pushes the log start up.
        let payload = [UInt8](repeating: 0x61, count: 100 * 1024)
        for _ in 0..<70 {
            try fixture.producer.send(ProducerMessage(topic: "big", partition: 0, value: payload, timestampMs: nowMs()))
            try fixture.producer.flush(timeout: .seconds(20))
        }
        let graders = try fixture.committer("graders")
        defer { graders.close() }
        try graders.commit(processed: [p0: -1])  // committed offset 0
        let monitor = try fixture.monitor(
            groups: [WatchedGroup(group: .name("graders"), topics: ["big"])],
            assignment: [p0]
        )
        defer { monitor.close() }
        await monitor.pollOnce()
        let row = try #require(sample(monitor, "graders", p0))
        #expect(row.logStartOffset > 0)
        #expect(row.endOffset == 70)
        #expect(row.committedOffset == 0)
        #expect(row.lagMessages == 70 - row.logStartOffset)
        #expect(row.status == .error)
        let text = metrics(monitor)
        #expect(
            text.contains(
                "flowmeter_consumergroup_lost_messages{group=\"graders\",topic=\"big\",partition=\"0\"} \(row.logStartOffset)\n"
            )
        )
        #expect(text.contains("flowmeter_consumergroup_status{group=\"graders\",status=\"error\"} 1\n"))
    }

    @Test func aBrokerOutageMakesLagStaleNotWrong() async throws {
        let fixture = try LagFixture(topics: ["orders": 1])
        let p0 = TopicPartition("orders", 0)
        let base = nowMs() - 60_000
        try fixture.produce(p0, count: 10) { base + Int64($0) }
        // The committer is closed before the outage: a group commit right after a broker comes back can block
        // for a long time on the mock while the coordinator connection recovers.
        let graders = try fixture.committer("graders")
        try graders.commit(processed: [p0: 3])
        graders.close()
        let monitor = try fixture.monitor(
            groups: [WatchedGroup(group: .name("graders"), topics: ["orders"])],
            assignment: [p0]
        )
        defer { monitor.close() }
        await monitor.pollOnce()
        let fresh = try #require(sample(monitor, "graders", p0))
        #expect(fresh.lagMessages == 6)
        #expect(monitor.isStale(group: "graders") == false)

        try fixture.cluster.setBrokerDown(1)
        await monitor.pollOnce()
        #expect(monitor.isStale(group: "graders") == true)
        #expect(sample(monitor, "graders", p0) == fresh)  // the last values, kept as they were
        #expect(metrics(monitor).contains("flowmeter_consumergroup_lag_stale{group=\"graders\"} 1\n"))
        #expect(monitor.status(group: "graders") == .ok)  // an outage is not an error of the group

        try fixture.cluster.setBrokerUp(1)
        try fixture.produce(p0, count: 5) { base + 100 + Int64($0) }  // the end moves to 15
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            await monitor.pollOnce()
            if monitor.isStale(group: "graders") == false { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(monitor.isStale(group: "graders") == false)
        let recovered = try #require(sample(monitor, "graders", p0))
        #expect(recovered.committedOffset == 4)
        #expect(recovered.endOffset == 15)
        #expect(recovered.lagMessages == 11)
        #expect(metrics(monitor).contains("flowmeter_consumergroup_lag_stale{group=\"graders\"} 0\n"))
    }

    /// End offsets that cannot be read leave the group's lag stale (the last values kept), and the log says why: this
    /// was the one way to go stale without a warning.
    @Test func endOffsetsThatCannotBeReadAreReported() async throws {
        let fixture = try LagFixture(topics: ["orders": 1])
        let p0 = TopicPartition("orders", 0)
        try fixture.produce(p0, count: 10) { _ in nowMs() }
        let graders = try fixture.committer("graders")
        try graders.commit(processed: [p0: 3])
        graders.close()
        let logs = WarningLog()
        let monitor = try fixture.monitor(
            groups: [WatchedGroup(group: .name("graders"), topics: ["orders"])],
            assignment: [p0],
            logger: logs.logger
        )
        defer { monitor.close() }
        await monitor.pollOnce()
        #expect(monitor.isStale(group: "graders") == false)
        #expect(!logs.warnings.contains { $0.message.hasPrefix("Cannot") })

        // Every ListOffsets request fails (committed offsets still answer).
        fixture.cluster.pushRequestErrors(.listOffsets, Array(repeating: .unknownTopicOrPartition, count: 200))
        await monitor.pollOnce()
        fixture.cluster.clearRequestErrors(.listOffsets)
        #expect(monitor.isStale(group: "graders") == true)
        #expect(sample(monitor, "graders", p0)?.lagMessages == 6)
        let warning = try #require(
            logs.warnings.first {
                $0.message.hasPrefix("Cannot read end offsets") && $0.metadata["lag.group"] == "graders"
            }
        )
        #expect(warning.metadata["lag.partition"] == "orders[0]")
        #expect(warning.metadata["lag.partitions"] == "1")
        #expect(warning.metadata["kafka.error"]?.isEmpty == false)
    }

    /// More partitions than the admin client runs watermark queries at once (8), each query a 40 ms round trip:
    /// every partition is answered in the first cycle and the group is not stale.
    @Test func manyPartitionsAreAllAnsweredInOneCycle() async throws {
        let fixture = try LagFixture(topics: ["events": 40])
        let partitions = (0..<40).map { TopicPartition("events", $0) }
        for partition in partitions { try fixture.produce(partition, count: 3) { _ in nowMs() } }
        let graders = try fixture.committer("graders")
        defer { graders.close() }
        try graders.commit(processed: Dictionary(uniqueKeysWithValues: partitions.map { ($0, 0) }))
        let monitor = try fixture.monitor(
            groups: [WatchedGroup(group: .name("graders"), topics: ["events"])],
            assignment: Set(partitions)
        )
        defer { monitor.close() }
        // Each query takes a round trip of 40 ms, so queries started together overlap.
        try fixture.cluster.setBrokerRTT(1, milliseconds: 40)
        await monitor.pollOnce()
        let polled = monitor.samples.filter { $0.groupID == "graders" }
        #expect(Set(polled.map { TopicPartition($0.topic, $0.partition) }) == Set(partitions))
        #expect(polled.allSatisfy { $0.lagMessages == 2 })
        #expect(metrics(monitor).contains("flowmeter_consumergroup_lag_stale{group=\"graders\"} 0"))
    }

    @Test func replicasShardByTheirOwnAssignment() async throws {
        let fixture = try LagFixture(topics: ["events": 3])
        let partitions = (0..<3).map { TopicPartition("events", $0) }
        for partition in partitions { try fixture.produce(partition, count: 4) { _ in nowMs() } }
        let graders = try fixture.committer("graders")
        defer { graders.close() }
        try graders.commit(processed: Dictionary(uniqueKeysWithValues: partitions.map { ($0, 1) }))
        let groups = [WatchedGroup(group: .name("graders"), topics: ["events"])]
        let first = try fixture.monitor(groups: groups, assignment: [partitions[0], partitions[2]])
        defer { first.close() }
        let second = try fixture.monitor(groups: groups, assignment: [partitions[1]])
        defer { second.close() }
        await first.pollOnce()
        await second.pollOnce()
        func polled(_ monitor: LagMonitor, _ group: String) -> Set<TopicPartition> {
            Set(monitor.samples.filter { $0.groupID == group }.map { TopicPartition($0.topic, $0.partition) })
        }
        for group in ["graders", "flowmeter"] {
            let a = polled(first, group)
            let b = polled(second, group)
            #expect(a == [partitions[0], partitions[2]])
            #expect(b == [partitions[1]])
            #expect(a.isDisjoint(with: b))
            #expect(a.union(b) == Set(partitions))
        }
        #expect((first.samples + second.samples).filter { $0.groupID == "graders" }.allSatisfy { $0.lagMessages == 2 })
    }

    @Test func runsAsAServiceOnItsInterval() async throws {
        let fixture = try LagFixture(topics: ["orders": 1])
        let p0 = TopicPartition("orders", 0)
        let monitor = try fixture.monitor(groups: [], assignment: [p0])
        let task = Task { try await monitor.run() }
        let deadline = ContinuousClock.now + .seconds(10)
        while monitor.cycles < 3, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(monitor.cycles >= 3)
        task.cancel()
        _ = await task.result
        #expect(sample(monitor, "flowmeter", p0)?.committedOffset == nil)
    }
}

/// Keeps the warnings (and worse) a logger receives.
private final class WarningLog: Sendable {
    struct Entry: Sendable {
        var message: String
        var metadata: [String: String]
    }
    private let entries = Mutex<[Entry]>([])
    var warnings: [Entry] { entries.withLock { $0 } }

    var logger: Logger { Logger(label: "test") { _ in Handler(log: self) } }

    private struct Handler: LogHandler {
        let log: WarningLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .warning
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            var flat: [String: String] = [:]
            for (key, value) in event.metadata ?? [:] { flat[key] = "\(value)" }
            log.entries.withLock { $0.append(Entry(message: "\(event.message)", metadata: flat)) }
        }
    }
}
