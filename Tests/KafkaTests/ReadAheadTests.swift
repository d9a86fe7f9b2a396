import Foundation
import Kafka
import Logging
import Testing

/// The consumer's read-ahead (`KafkaConsumer(readAhead: true)`): a helper thread parses each large batch's headers
/// ahead of the caller and destroys the batch afterwards, and a second one wakes librdkafka's fetcher while a backlog
/// is read. Against the mock cluster's real Kafka protocol.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct ReadAheadTests {
    /// A record as the caller saw it.
    struct Seen: Hashable {
        var partition: Int32
        var offset: Int64
        var value: [UInt8]
        var headers: [KafkaHeader]
    }

    static func messages(_ count: Int, topic: String) -> [ProducerMessage] {
        (0..<count).map { index in
            ProducerMessage(
                topic: topic,
                key: bytes("learner-\(index % 37)"),
                value: bytes("{\"n\":\(index)}"),
                headers: index % 5 == 0
                    ? []
                    : (0..<(index % 4 + 1)).map { header in
                        header == 2
                            ? KafkaHeader(name: "nullable", value: nil)
                            : KafkaHeader(name: "h\(header)", string: "\(index)-\(header)")
                    }
            )
        }
    }

    /// A mock cluster holding `count` records (``messages(_:topic:)``) in `topic`; the caller closes it.
    static func cluster(topic: String, partitions: Int32, count: Int) throws -> (MockKafkaCluster, [ProducerMessage]) {
        let cluster = try MockKafkaCluster(brokerCount: 1, logger: quietLogger)
        try cluster.createTopic(topic, partitions: partitions)
        let producer = try KafkaProducer(
            config: KafkaClientConfig(bootstrapServers: cluster.bootstrapServers),
            logger: quietLogger
        )
        defer { producer.close() }
        let sent = messages(count, topic: topic)
        try produce(producer, sent)
        return (cluster, sent)
    }

    /// A record's headers through the raw visitor, in wire order.
    static func rawHeaders(of record: BorrowedRecord) -> [KafkaHeader] {
        var headers: [KafkaHeader] = []
        record.forEachRawHeader { name, value in
            headers.append(KafkaHeader(name: String(decoding: name, as: UTF8.self), value: value.map { Array($0) }))
        }
        return headers
    }

    /// Every record's raw headers, in order.
    static func headers(of batch: borrowing BorrowedRecordBatch) -> [[KafkaHeader]] {
        var all: [[KafkaHeader]] = []
        batch.forEachRecord { all.append(rawHeaders(of: $0)) }
        return all
    }

    /// Reads `count` records with `pollBatch`, visiting each record's raw headers; `delay` after each batch.
    static func readAll(
        _ consumer: KafkaConsumer,
        count: Int,
        maxRecords: Int,
        delay: Duration = .zero
    ) async throws -> [Seen] {
        var seen: [Seen] = []
        let end = ContinuousClock.now + .seconds(60)
        while seen.count < count, ContinuousClock.now < end {
            try consumer.pollBatch(maxRecords: maxRecords, timeout: .milliseconds(100)) { batch in
                batch.forEachRecord { record in
                    seen.append(
                        Seen(
                            partition: record.partition,
                            offset: record.offset,
                            value: Array(record.value ?? UnsafeRawBufferPointer(start: nil, count: 0)),
                            headers: Self.rawHeaders(of: record)
                        )
                    )
                }
            }
            if delay > .zero { try await Task.sleep(for: delay) } else { await Task.yield() }
        }
        return seen
    }

    /// Every record, value and header comes out as without read-ahead, in the same order per partition, and the
    /// large batches went through the helper.
    @Test func readAheadHandsOutWhatAPlainConsumerDoes() async throws {
        let (cluster, sent) = try Self.cluster(topic: "backlog", partitions: 4, count: 4000)
        defer { cluster.close() }

        let plain = try KafkaConsumer(config: consumerConfig(cluster), groupID: "plain", logger: quietLogger)
        defer { plain.close() }
        try plain.subscribe(topics: ["backlog"])
        let expected = try await Self.readAll(plain, count: sent.count, maxRecords: 500)

        let ahead = try KafkaConsumer(
            config: consumerConfig(cluster),
            groupID: "ahead",
            readAhead: true,
            logger: quietLogger
        )
        defer { ahead.close() }
        try ahead.subscribe(topics: ["backlog"])
        let got = try await Self.readAll(ahead, count: sent.count, maxRecords: 500)

        #expect(expected.count == sent.count)
        #expect(got.count == sent.count)
        // Per partition, the same records in the same order.
        for partition in Int32(0)..<4 {
            let a = expected.filter { $0.partition == partition }
            let b = got.filter { $0.partition == partition }
            #expect(!a.isEmpty)
            #expect(a == b)
        }
        // Every header as produced (values carry the record's number).
        var byValue: [[UInt8]: [KafkaHeader]] = [:]
        for message in sent { byValue[message.value ?? []] = message.headers }
        #expect(got.allSatisfy { byValue[$0.value] == $0.headers })
        #expect(ahead.readAheadStatistics.batches > 0)
        #expect(ahead.readAheadStatistics.parsedAhead > 0)
        #expect(plain.readAheadStatistics.batches == 0)
    }

    /// Batches the caller does not read are still parsed and destroyed; a batch read twice gives the same headers
    /// the second time, whichever thread parsed them; closing destroys everything before the client goes, and a
    /// second close does nothing.
    @Test func unreadAndRereadBatchesAndClose() async throws {
        let (cluster, _) = try Self.cluster(topic: "skipped", partitions: 2, count: 3000)
        defer { cluster.close() }
        let consumer = try KafkaConsumer(
            config: consumerConfig(cluster),
            groupID: "skipper",
            readAhead: true,
            logger: quietLogger
        )
        try consumer.subscribe(topics: ["skipped"])
        var polled = 0
        var visited = 0
        var reread = 0
        var batch = 0
        var mismatches = 0
        let end = ContinuousClock.now + .seconds(60)
        while polled < 3000, ContinuousClock.now < end {
            batch += 1
            let mode = batch % 3
            try consumer.pollBatch(maxRecords: 200, timeout: .milliseconds(100)) { records in
                polled += records.count
                switch mode {
                case 0: break  // not read at all
                case 1:
                    let first = Self.headers(of: records)
                    let second = Self.headers(of: records)
                    if first != second { mismatches += 1 }
                    visited += first.count
                    reread += second.count
                default:
                    visited += Self.headers(of: records).count
                }
            }
            await Task.yield()
        }
        #expect(polled == 3000)
        #expect(visited > 0 && visited < 3000)
        #expect(reread > 0)
        #expect(mismatches == 0)
        #expect(consumer.readAheadStatistics.batches > 0)
        consumer.close()
        consumer.close()
    }

    /// While full batches come back, the fetcher is woken (a watermark request every 50 ms); a consumer that reads
    /// a backlog past small prefetch thresholds still gets every record once.
    @Test func fetcherIsWokenWhileABacklogIsRead() async throws {
        let (cluster, sent) = try Self.cluster(topic: "deep", partitions: 2, count: 2000)
        defer { cluster.close() }
        // A prefetch of 100 records: the queue goes over the threshold after every fetch.
        let consumer = try KafkaConsumer(
            config: consumerConfig(cluster, [("queued.min.messages", "100")]),
            groupID: "deep-reader",
            readAhead: true,
            logger: quietLogger
        )
        defer { consumer.close() }
        try consumer.subscribe(topics: ["deep"])
        // Slow enough (20 ms per batch of 64) that reading takes well over the 50 ms wake interval.
        let got = try await Self.readAll(consumer, count: sent.count, maxRecords: 64, delay: .milliseconds(20))
        #expect(got.count == sent.count)
        #expect(Set(got.map { [Int64($0.partition), $0.offset] }).count == sent.count)
        #expect(consumer.readAheadStatistics.fetchWakeups > 0)
    }
    /// A value work runs on the helper for the messages it gets to first: each slot the caller is handed holds what
    /// the work wrote for that very record (here its value's length and a checksum), records the helper did not get
    /// to have no slot, and tombstones reach the work as `nil`.
    @Test func valueWorkSlotsMatchTheirRecords() async throws {
        let (cluster, sent) = try Self.cluster(topic: "worked", partitions: 2, count: 1500)
        defer { cluster.close() }
        /// FNV-1a of the value's bytes.
        @Sendable func checksum(_ value: UnsafeRawBufferPointer) -> UInt64 {
            var sum: UInt64 = 14_695_981_039_346_656_037
            for byte in value { sum = (sum ^ UInt64(byte)) &* 1_099_511_628_211 }
            return sum
        }
        let work = ReadAheadValueWork(slotSize: 16) { value, slot in
            guard let value else { return false }
            slot.storeBytes(of: UInt64(value.count), as: UInt64.self)
            slot.storeBytes(of: checksum(value), toByteOffset: 8, as: UInt64.self)
            return true
        }
        let consumer = try KafkaConsumer(
            config: consumerConfig(cluster),
            groupID: "worker",
            readAhead: true,
            valueWork: work,
            logger: quietLogger
        )
        defer { consumer.close() }
        try consumer.subscribe(topics: ["worked"])
        var seen = 0
        var prepared = 0
        var wrong = 0
        let end = ContinuousClock.now + .seconds(60)
        while seen < sent.count, ContinuousClock.now < end {
            try consumer.pollBatch(maxRecords: 300, timeout: .milliseconds(100)) { batch in
                batch.forEachRecord { record in
                    seen += 1
                    // Slow enough for the helper to get ahead of this thread.
                    if seen % 2 == 0 { Thread.sleep(forTimeInterval: 0.0002) }
                    guard let slot = record.prepared, let value = record.value else { return }
                    prepared += 1
                    if slot.load(as: UInt64.self) != UInt64(value.count)
                        || slot.load(fromByteOffset: 8, as: UInt64.self) != checksum(value)
                    {
                        wrong += 1
                    }
                }
            }
            await Task.yield()
        }
        #expect(seen == sent.count)
        #expect(prepared > 0)
        #expect(prepared <= consumer.readAheadStatistics.parsedAhead)
        #expect(wrong == 0)
    }
}
