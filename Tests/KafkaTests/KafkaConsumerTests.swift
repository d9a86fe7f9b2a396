import Foundation
import Kafka
import Logging
import Synchronization
import Testing

@Suite(.serialized, .timeLimit(.minutes(2)))
struct KafkaConsumerTests {
    /// The borrowed batch (records analyzed where librdkafka holds them): headers through the non-generic visitor and
    /// the generic `headers(_:)` agree with what was produced, in wire order, repeated names and null values included;
    /// a record without headers reserves nothing and visits nothing.
    @Test func borrowedRecordsVisitTheirHeadersInWireOrder() async throws {
        let cluster = try MockKafkaCluster(brokerCount: 1, logger: quietLogger)
        defer { cluster.close() }
        try cluster.createTopic("visits", partitions: 1)
        let producer = try KafkaProducer(
            config: KafkaClientConfig(bootstrapServers: cluster.bootstrapServers),
            logger: quietLogger
        )
        defer { producer.close() }
        let messages = (0..<20).map { index in
            ProducerMessage(
                topic: "visits",
                key: nil,
                value: bytes("v\(index)"),
                headers: index % 4 == 0
                    ? []
                    : [
                        KafkaHeader(name: "partitionKey", string: "learner-\(index)"),
                        KafkaHeader(name: "nullable", value: nil),
                        KafkaHeader(name: "partitionKey", value: [0xFF, 0x00, UInt8(index)]),
                    ]
            )
        }
        try produce(producer, messages)
        let consumer = try KafkaConsumer(config: consumerConfig(cluster), groupID: "visitors", logger: quietLogger)
        defer { consumer.close() }
        try consumer.subscribe(topics: ["visits"])
        var seen:
            [(value: [UInt8], visited: [KafkaHeader], reserved: [Int], generic: [KafkaHeader], raw: [KafkaHeader])] =
                []
        let end = ContinuousClock.now + .seconds(30)
        while seen.count < messages.count, ContinuousClock.now < end {
            try consumer.pollBatch(maxRecords: 500, timeout: .milliseconds(100)) { batch in
                batch.forEachRecord { record in
                    var visited: [KafkaHeader] = []
                    var reserved: [Int] = []
                    record.forEachHeader(
                        reserve: { reserved.append($0) },
                        body: { name, value in visited.append(KafkaHeader(name: name, value: value.map { Array($0) })) }
                    )
                    let generic = record.headers { KafkaHeader(name: $0, value: $1.map { Array($0) }) }
                    var raw: [KafkaHeader] = []
                    record.forEachRawHeader { name, value in
                        raw.append(
                            KafkaHeader(name: String(decoding: name, as: UTF8.self), value: value.map { Array($0) })
                        )
                    }
                    seen.append(
                        (
                            Array(record.value ?? UnsafeRawBufferPointer(start: nil, count: 0)), visited, reserved,
                            generic, raw
                        )
                    )
                }
            }
            await Task.yield()
        }
        #expect(seen.count == messages.count)
        for (index, record) in seen.enumerated() {
            #expect(record.value == messages[index].value)
            #expect(record.visited == messages[index].headers)
            #expect(record.generic == messages[index].headers)
            #expect(record.raw == messages[index].headers)
            #expect(record.reserved == (messages[index].headers.isEmpty ? [] : [messages[index].headers.count]))
        }
    }

    @Test func producesAndConsumesInAGroupWithCommits() async throws {
        let cluster = try MockKafkaCluster(brokerCount: 1, logger: quietLogger)
        defer { cluster.close() }
        try cluster.createTopic("orders", partitions: 3)
        let producer = try KafkaProducer(
            config: KafkaClientConfig(bootstrapServers: cluster.bootstrapServers),
            logger: quietLogger
        )
        defer { producer.close() }
        let base: Int64 = 1_700_000_000_000
        let messages = (0..<30).map { index in
            ProducerMessage(
                topic: "orders",
                key: bytes("learner-\(index % 5)"),
                value: bytes("{\"n\":\(index)}"),
                headers: [
                    KafkaHeader(name: "traceparent", string: "tp-\(index)"),
                    KafkaHeader(name: "nullable", value: nil),
                    KafkaHeader(name: "binary", value: [0xFF, 0x00, UInt8(index)]),
                ],
                timestampMs: base + Int64(index)
            )
        }
        let first = try await producer.deliver(messages[0])
        #expect(first.topic == "orders")
        #expect(first.offset == 0)
        try produce(producer, Array(messages.dropFirst()))
        #expect(producer.deliveryCounts.failed == 0)

        let consumer = try KafkaConsumer(config: consumerConfig(cluster), groupID: "readers", logger: quietLogger)
        defer { consumer.close() }
        try consumer.subscribe(topics: ["orders"])
        let records = try await consume(consumer, count: 30)
        #expect(records.count == 30)
        for record in records {
            let index = Int(String(decoding: record.value ?? [], as: UTF8.self).dropFirst(5).dropLast())!
            #expect(record.topic == "orders")
            #expect(record.key == bytes("learner-\(index % 5)"))
            #expect(record.timestampMs == base + Int64(index))
            #expect(record.timestampType == .createTime)
            #expect(record.headers == messages[index].headers)
        }
        // The same key always lands on the same partition.
        let partitionsByKey = Dictionary(grouping: records, by: { $0.key! }).mapValues { Set($0.map(\.partition)) }
        #expect(partitionsByKey.values.allSatisfy { $0.count == 1 })

        // Store the last processed offset of each partition and commit: Kafka gets offset + 1.
        var last: [TopicPartition: Int64] = [:]
        for record in records { last[record.topicPartition] = max(last[record.topicPartition] ?? -1, record.offset) }
        try consumer.storeOffsets(processed: last)
        try consumer.commitStored()
        let partitions = (0..<3).map { TopicPartition("orders", $0) }
        let committed = try consumer.committed(partitions)
        let counts = Dictionary(grouping: records, by: \.topicPartition).mapValues { Int64($0.count) }
        for partition in partitions {
            #expect(committed[partition] == .some(counts[partition]))
        }

        // Another client reads this group's commits and the watermarks.
        let admin = try KafkaAdmin(
            config: KafkaClientConfig(bootstrapServers: cluster.bootstrapServers),
            logger: quietLogger
        )
        defer { admin.close() }
        let seenByAdmin = try await admin.committedOffsets(group: "readers", partitions: partitions)
        for partition in partitions {
            #expect(seenByAdmin[partition] == .some(counts[partition]))
            let marks = try await admin.watermarks(partition)
            #expect(marks == Watermarks(low: 0, high: counts[partition] ?? -1))
            #expect(consumer.cachedWatermarks(partition)?.high == counts[partition])
        }
        let neverCommitted = try await admin.committedOffsets(group: "nobody", partitions: partitions)
        #expect(neverCommitted.count == 3)
        #expect(neverCommitted.values.allSatisfy { $0 == nil })
        let topics = try await admin.topics()
        #expect(topics["orders"] == 3)

        // Explicit commits of processed offsets.
        try consumer.commit(processed: [TopicPartition("orders", 0): 0])
        #expect(try consumer.committed([TopicPartition("orders", 0)])[TopicPartition("orders", 0)] == .some(1))
    }

    @Test func assignHookChoosesStartOffsetsAndRevokeHookRunsFirst() async throws {
        let cluster = try MockKafkaCluster(brokerCount: 1, logger: quietLogger)
        defer { cluster.close() }
        try cluster.createTopic("lessons", partitions: 1)
        let producer = try KafkaProducer(
            config: KafkaClientConfig(bootstrapServers: cluster.bootstrapServers),
            logger: quietLogger
        )
        defer { producer.close() }
        try produce(producer, (0..<10).map { ProducerMessage(topic: "lessons", value: bytes("\($0)")) })

        let calls = Mutex<[String]>([])
        let handler = RebalanceHandler(
            onAssign: { partitions in
                calls.withLock { $0.append("assign \(partitions)") }
                return Dictionary(uniqueKeysWithValues: partitions.map { ($0, 5) })
            },
            onRevoke: { partitions, lost in
                calls.withLock { $0.append("revoke \(partitions) lost=\(lost)") }
            }
        )
        let consumer = try KafkaConsumer(
            config: consumerConfig(cluster),
            groupID: "hooks",
            rebalance: handler,
            logger: quietLogger
        )
        try consumer.subscribe(topics: ["lessons"])
        let records = try await consume(consumer, count: 5)
        #expect(records.map(\.offset) == [5, 6, 7, 8, 9])
        #expect(try consumer.assignment() == [TopicPartition("lessons", 0)])

        consumer.close()
        #expect(calls.withLock { $0 } == ["assign [lessons[0]]", "revoke [lessons[0]] lost=false"])
        #expect(
            consumer.drainRebalanceEvents() == [
                .assigned([TopicPartition("lessons", 0)]), .revoked([TopicPartition("lessons", 0)], lost: false),
            ]
        )
        #expect(throws: KafkaError.self) { try consumer.assignment() }
    }

    @Test func seekPauseAndResume() async throws {
        let cluster = try MockKafkaCluster(brokerCount: 1, logger: quietLogger)
        defer { cluster.close() }
        try cluster.createTopic("grades", partitions: 1)
        let producer = try KafkaProducer(
            config: KafkaClientConfig(bootstrapServers: cluster.bootstrapServers),
            logger: quietLogger
        )
        defer { producer.close() }
        try produce(producer, (0..<6).map { ProducerMessage(topic: "grades", value: bytes("\($0)")) })
        let consumer = try KafkaConsumer(config: consumerConfig(cluster), groupID: "seeker", logger: quietLogger)
        defer { consumer.close() }
        try consumer.subscribe(topics: ["grades"])
        #expect(try await consume(consumer, count: 6).count == 6)

        let partition = TopicPartition("grades", 0)
        try consumer.seek([partition: 2])
        #expect(try await consume(consumer, count: 4).map(\.offset) == [2, 3, 4, 5])

        try consumer.pause([partition])
        try produce(producer, (6..<9).map { ProducerMessage(topic: "grades", value: bytes("\($0)")) })
        #expect(try await consume(consumer, count: 1, within: .seconds(1)).isEmpty)
        try consumer.resume([partition])
        #expect(try await consume(consumer, count: 3).map(\.offset) == [6, 7, 8])
    }

    @Test func injectedCommitErrorSurfacesThenClears() async throws {
        let cluster = try MockKafkaCluster(brokerCount: 1, logger: quietLogger)
        defer { cluster.close() }
        try cluster.createTopic("progress", partitions: 1)
        let producer = try KafkaProducer(
            config: KafkaClientConfig(bootstrapServers: cluster.bootstrapServers),
            logger: quietLogger
        )
        defer { producer.close() }
        try produce(producer, [ProducerMessage(topic: "progress", value: bytes("x"))])
        let consumer = try KafkaConsumer(config: consumerConfig(cluster), groupID: "committer", logger: quietLogger)
        defer { consumer.close() }
        try consumer.subscribe(topics: ["progress"])
        let records = try await consume(consumer, count: 1)
        #expect(records.count == 1)

        cluster.pushRequestErrors(.offsetCommit, [.groupAuthorizationFailed])
        let partition = TopicPartition("progress", 0)
        let error = #expect(throws: KafkaError.self) { try consumer.commit(processed: [partition: 0]) }
        #expect(error?.rdKafkaName == "GROUP_AUTHORIZATION_FAILED")
        try consumer.commit(processed: [partition: 0])
        #expect(try consumer.committed([partition])[partition] == .some(1))
    }

    @Test func tombstonesNullKeysAndExplicitPartitions() async throws {
        let cluster = try MockKafkaCluster(brokerCount: 1, logger: quietLogger)
        defer { cluster.close() }
        try cluster.createTopic("compacted", partitions: 4)
        let producer = try KafkaProducer(
            config: KafkaClientConfig(bootstrapServers: cluster.bootstrapServers),
            logger: quietLogger
        )
        defer { producer.close() }
        let report = try await producer.deliver(
            ProducerMessage(topic: "compacted", partition: 3, key: nil, value: nil, timestampMs: 42)
        )
        #expect(report.partition == 3)
        let consumer = try KafkaConsumer(config: consumerConfig(cluster), groupID: "tomb", logger: quietLogger)
        defer { consumer.close() }
        try consumer.subscribe(topics: ["compacted"])
        let records = try await consume(consumer, count: 1)
        #expect(records.count == 1)
        #expect(records.first?.value == nil)
        #expect(records.first?.key == nil)
        #expect(records.first?.partition == 3)
        #expect(records.first?.timestampMs == 42)
        #expect(records.first?.headers == [])
    }

    @Test func rejectsUnknownPropertiesNamingTheKey() {
        var config = KafkaClientConfig(bootstrapServers: "127.0.0.1:1")
        config.set("no.such.property", "1")
        let error = #expect(throws: KafkaError.self) {
            _ = try KafkaConsumer(config: config, groupID: "g", logger: quietLogger)
        }
        #expect(error?.code == .config)
        #expect(error?.description.contains("no.such.property") == true)
        let problems = KafkaClientConfig.validate([
            ("security.protocol", "sasl_ssl"), ("sasl.mechanisms", "SCRAM-SHA-512"), ("sasl.username", "u"),
            ("sasl.password", "s3cr3t-value"), ("fetch.wait.max.ms", "not-a-number"),
        ])
        #expect(problems.count == 1)
        #expect(problems.first?.contains("fetch.wait.max.ms") == true)
        #expect(!problems.joined().contains("s3cr3t-value"))
        #expect(KafkaClientConfig.isSecret(key: "sasl.password"))
        #expect(KafkaClientConfig.isSecret(key: "ssl.key.pem"))
        #expect(!KafkaClientConfig.isSecret(key: "sasl.username"))
    }

    @Test func librdkafkaLogsReachSwiftLog() async throws {
        let cluster = try MockKafkaCluster(brokerCount: 1, logger: quietLogger)
        defer { cluster.close() }
        let logs = CapturingLogs()
        let consumer = try KafkaConsumer(
            config: consumerConfig(cluster, [("debug", "cgrp")]),
            groupID: "logged",
            logger: logs.logger()
        )
        try consumer.subscribe(topics: ["anything"])
        _ = try await consume(consumer, count: 1, within: .seconds(1))
        consumer.close()
        let rdkafka = logs.all.filter { $0.message == "librdkafka" }
        #expect(!rdkafka.isEmpty)
        #expect(rdkafka.contains { $0.metadata["rdkafka.facility"] != nil && $0.level == .debug })
    }
}
