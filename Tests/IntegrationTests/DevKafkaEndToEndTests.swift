import Foundation
import Kafka
import Testing

/// The built binary: `flowmeter dev-kafka` as a process, Debian's kcat as an independent client, and the
/// Kafka bridge reading back what kcat wrote.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct DevKafkaEndToEndTests {
    @Test func kcatProducesIntoDevKafkaAndTheBridgeReadsItBack() async throws {
        let kcat = try Harness.kcat()
        let broker = try DevKafkaProcess(arguments: [
            "--broker-count", "2", "--topic", "learning.requested:3", "--topic", "lesson.generated:2",
            "--exit-on-stdin-close",
        ])
        #expect(broker.bootstrapServers.split(separator: ",").count == 2)

        // Metadata through an independent client.
        let metadata = try Harness.run(kcat, ["-b", broker.bootstrapServers, "-L", "-J"])
        #expect(metadata.status == 0)
        #expect(metadata.stdout.contains("\"topic\":\"learning.requested\""))
        #expect(metadata.stdout.contains("\"topic\":\"lesson.generated\""))

        // kcat produces keyed records with headers.
        let lines = (0..<20).map { "learner-\($0 % 4)|{\"specversion\":\"1.0\",\"id\":\"e\($0)\"}" }
        let produced = try Harness.run(
            kcat,
            [
                "-b", broker.bootstrapServers, "-P", "-t", "learning.requested", "-K", "|", "-H", "traceparent=00-abc",
                "-H", "partitionKey=from-kcat",
            ],
            input: lines.joined(separator: "\n") + "\n"
        )
        #expect(produced.status == 0, "kcat -P failed: \(produced.stderr)")

        let consumer = try KafkaConsumer(
            config: KafkaClientConfig(
                bootstrapServers: broker.bootstrapServers,
                properties: [("auto.offset.reset", "earliest"), ("fetch.wait.max.ms", "10")]
            ),
            groupID: "e2e-reader",
            logger: quietLogger
        )
        defer { consumer.close() }
        try consumer.subscribe(topics: ["learning.requested"])
        var records: [ConsumerRecord] = []
        let end = ContinuousClock.now + .seconds(30)
        while records.count < 20, ContinuousClock.now < end {
            records += try consumer.pollBatch(maxRecords: 100, timeout: .milliseconds(100))
            await Task.yield()
        }
        #expect(records.count == 20)
        let values = Set(records.compactMap { $0.value.map { String(decoding: $0, as: UTF8.self) } })
        #expect(values == Set((0..<20).map { "{\"specversion\":\"1.0\",\"id\":\"e\($0)\"}" }))
        for record in records {
            #expect(record.headers.map(\.name) == ["traceparent", "partitionKey"])
            #expect(record.headers.first?.value == Array("00-abc".utf8))
            #expect(record.key.map { String(decoding: $0, as: UTF8.self).hasPrefix("learner-") } == true)
            #expect(record.timestampType == .createTime)
            #expect(record.timestampMs > 1_600_000_000_000)
        }
        #expect(Set(records.map(\.partition)).isSubset(of: [0, 1, 2]))

        // Commits made through the bridge are visible to kcat's own group tooling via the broker.
        var last: [TopicPartition: Int64] = [:]
        for record in records { last[record.topicPartition] = max(last[record.topicPartition] ?? -1, record.offset) }
        try consumer.commit(processed: last)
        let admin = try KafkaAdmin(
            config: KafkaClientConfig(bootstrapServers: broker.bootstrapServers),
            logger: quietLogger
        )
        defer { admin.close() }
        let committed = try await admin.committedOffsets(group: "e2e-reader", partitions: Array(last.keys))
        #expect(committed.values.compactMap { $0 }.reduce(0, +) == 20)

        // Closing stdin stops the broker cleanly.
        try broker.stdin.fileHandleForWriting.close()
        #expect(await broker.waitForExit(timeout: .seconds(10)) == 0)
    }

    @Test func devKafkaExitsCleanlyOnSIGTERMAndRejectsBadTopics() async throws {
        let broker = try DevKafkaProcess(arguments: ["--topic", "t:1"])
        #expect(broker.bootstrapServers.hasPrefix("127.0.0.1:"))
        broker.process.terminate()
        #expect(await broker.waitForExit(timeout: .seconds(10)) == 0)

        let bad = try Harness.run(try Harness.flowmeterBinary(), ["dev-kafka", "--topic", "bad topic:x"])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("--topic \"bad topic:x\""))
    }
}
