import Foundation
import Kafka
import Testing

@Suite(.serialized, .timeLimit(.minutes(2)))
struct KafkaAdminTests {
    @Test func watermarkQueryTimesOutWhileTheLeaderIsDownInsteadOfHanging() async throws {
        let cluster = try MockKafkaCluster(brokerCount: 1, logger: quietLogger)
        defer { cluster.close() }
        try cluster.createTopic("stalled", partitions: 1)
        let admin = try KafkaAdmin(
            config: KafkaClientConfig(bootstrapServers: cluster.bootstrapServers),
            logger: quietLogger,
            maxConcurrentWatermarkQueries: 2
        )
        defer { admin.close() }
        let partition = TopicPartition("stalled", 0)
        #expect(try await admin.watermarks(partition) == Watermarks(low: 0, high: 0))

        try cluster.setBrokerDown(1)
        let started = ContinuousClock.now
        let error = await #expect(throws: KafkaError.self) {
            _ = try await admin.watermarks(partition, timeout: .seconds(1))
        }
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(error?.isRetriable == true)

        try cluster.setBrokerUp(1)
        var recovered: Watermarks?
        let end = ContinuousClock.now + .seconds(30)
        while recovered == nil, ContinuousClock.now < end {
            recovered = try? await admin.watermarks(partition, timeout: .seconds(2))
            if recovered == nil { try await Task.sleep(for: .milliseconds(200)) }
        }
        #expect(recovered == Watermarks(low: 0, high: 0))
    }

    @Test func groupListingOnTheMockSaysUnsupported() async throws {
        let cluster = try MockKafkaCluster(brokerCount: 1, logger: quietLogger)
        defer { cluster.close() }
        let admin = try KafkaAdmin(
            config: KafkaClientConfig(bootstrapServers: cluster.bootstrapServers),
            logger: quietLogger
        )
        defer { admin.close() }
        guard case .unsupported(let reason) = try await admin.listGroups(timeout: .seconds(5)) else {
            Issue.record("the 2.0.2 mock cluster has no ListGroups; expected an unsupported answer")
            return
        }
        #expect(reason.contains("not supported by this broker"))
        guard case .unsupported = try await admin.describeGroups(["course-agent"], timeout: .seconds(5)) else {
            Issue.record("expected DescribeGroups to be reported unsupported too")
            return
        }
        // The admin client itself still works afterwards.
        try cluster.createTopic("after", partitions: 2)
        #expect(try await admin.topics()["after"] == 2)
    }

    /// Many partitions' watermarks at once, at most the client's capacity at a time: each partition gets its own
    /// answer (a partition that does not exist, its own error), and no query slot is left taken.
    @Test func watermarksOfManyPartitionsAtOnce() async throws {
        let cluster = try MockKafkaCluster(brokerCount: 1, logger: quietLogger)
        defer { cluster.close() }
        try cluster.createTopic("many", partitions: 20)
        let producer = try KafkaProducer(
            config: KafkaClientConfig(bootstrapServers: cluster.bootstrapServers),
            logger: quietLogger
        )
        for partition in 0..<20 {
            for index in 0..<partition {
                try producer.send(
                    ProducerMessage(topic: "many", partition: Int32(partition), value: Array("\(index)".utf8))
                )
            }
        }
        try producer.flush(timeout: .seconds(20))
        producer.close()
        let admin = try KafkaAdmin(
            config: KafkaClientConfig(bootstrapServers: cluster.bootstrapServers),
            logger: quietLogger,
            maxConcurrentWatermarkQueries: 3
        )
        defer { admin.close() }
        let partitions = (0..<20).map { TopicPartition("many", Int32($0)) }
        let missing = TopicPartition("many", 25)
        let answers = await admin.watermarks(of: partitions + [missing], timeout: .seconds(5))
        #expect(answers.count == 21)
        for partition in partitions {
            #expect(
                (try? answers[partition]?.get()) == Watermarks(low: 0, high: Int64(partition.partition)),
                "\(partition): \(String(describing: answers[partition]))"
            )
        }
        if case .success(let marks) = answers[missing] { Issue.record("a partition that does not exist: \(marks)") }
        #expect(answers[missing] != nil)
        #expect(admin.watermarkQueriesRunning == 0)
    }
}
