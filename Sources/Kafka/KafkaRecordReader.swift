internal import CRdKafka
import Foundation
public import Logging
import Synchronization

/// Reads single records at exact offsets, for time lag: the timestamp of the first record a group has not
/// consumed.
///
/// A consumer that never joins a group and never commits: it has a unique group id (librdkafka needs one),
/// `enable.auto.commit=false`, and places partitions with `rd_kafka_assign` at explicit offsets. Transaction
/// markers (and, under the default `read_committed`, aborted records) are skipped by librdkafka, so a position
/// where only markers remain before the end yields no record.
///
/// - Important: Calls are serialized by the reader (one read at a time) and block the calling thread for up to
///   their timeout: call them from a thread that may block (a Dispatch queue), never from a cooperative task.
public final class KafkaRecordReader: Sendable {
    private let handle: SendableHandle
    private let pump: EventPump
    private let logger: Logger
    private let state = Mutex(false)
    private let reading = NSLock()

    /// The generated group id, never joined nor committed to.
    public let groupID: String

    /// Creates a reader.
    ///
    /// Sets `fetch.wait.max.ms=10` unless `config` sets it, so that a fetch at the end of a partition answers
    /// quickly.
    /// - Throws: A ``KafkaError`` if a property is rejected or the client cannot be created.
    public init(config: KafkaClientConfig, logger: Logger) throws(KafkaError) {
        var config = config
        let groupID = "flowmeter-record-reader-\(UUID().uuidString.lowercased())"
        if config.value(for: "fetch.wait.max.ms") == nil { config.set("fetch.wait.max.ms", "10") }
        config.set("group.id", groupID)
        config.set("enable.auto.commit", "false")
        config.set("enable.auto.offset.store", "false")
        config.set("enable.partition.eof", "true")
        config.set("auto.offset.reset", "earliest")
        config.set("log.queue", "true")
        let conf = try config.makeConf()
        let rk = try makeClient(type: RD_KAFKA_CONSUMER, conf: conf)
        rd_kafka_poll_set_consumer(rk)
        self.handle = SendableHandle(pointer: rk)
        self.logger = logger
        self.groupID = groupID
        self.pump = EventPump(client: rk, serveMain: false, logger: logger, onEvent: nil)
    }

    deinit {
        close()
    }

    /// The first data record of `partition` at or after `offset` and before `end`: its offset and timestamp.
    ///
    /// - Parameters:
    ///   - partition: the partition to read.
    ///   - offset: where to start (a group's next offset to read).
    ///   - end: the end offset polled with the group's commit; records at or past it arrived later and do not
    ///     count.
    ///   - timeout: how long to wait for the record or for the end of the partition.
    /// - Returns: `nil` when no data record lies in `offset..<end` (only transaction markers or aborted records,
    ///   or nothing at all), else the record's offset and timestamp (milliseconds since the epoch; -1 if the
    ///   record has none).
    /// - Throws: A ``KafkaError`` with code ``KafkaError/Code/timedOut`` if neither a record nor the end of
    ///   the partition was seen within `timeout`, or the broker's error for the partition.
    public func timestamp(
        of partition: TopicPartition,
        atOrAfter offset: Int64,
        before end: Int64,
        timeout: Duration
    ) throws(KafkaError) -> (offset: Int64, timestampMs: Int64)? {
        try checkOpen()
        guard offset < end else { return nil }
        reading.lock()
        defer { reading.unlock() }
        let list = makePartitionList([(partition, offset)])
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let err = rd_kafka_assign(handle.pointer, list)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw .rdKafka(err, context: "assign \(partition)") }
        defer { _ = rd_kafka_assign(handle.pointer, nil) }
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let left = deadline - ContinuousClock.now
            guard let message = rd_kafka_consumer_poll(handle.pointer, min(left, .milliseconds(100)).milliseconds)
            else { continue }
            defer { rd_kafka_message_destroy(message) }
            let msg = message.pointee
            let topic = msg.rkt.map { String(cString: rd_kafka_topic_name($0)) }
            guard topic == partition.topic, msg.partition == partition.partition else { continue }
            if msg.err == RD_KAFKA_RESP_ERR__PARTITION_EOF {
                // The fetch reached the end (past any trailing markers) without a data record in range.
                return nil
            }
            if msg.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                let error = KafkaError.rdKafka(msg.err, context: "read \(partition) at \(offset)")
                if error.isRetriable { continue }
                throw error
            }
            guard msg.offset >= offset else { continue }
            guard msg.offset < end else { return nil }
            var type = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
            let timestamp = rd_kafka_message_timestamp(message, &type)
            return (msg.offset, type == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? -1 : timestamp)
        }
        throw KafkaError(
            code: .timedOut,
            reason: "no record of \(partition) at or after \(offset) within \(timeout)",
            isRetriable: true
        )
    }

    /// Releases the client. Idempotent.
    public func close() {
        let wasClosed = state.withLock { closed in
            defer { closed = true }
            return closed
        }
        guard !wasClosed else { return }
        reading.lock()
        defer { reading.unlock() }
        _ = rd_kafka_consumer_close(handle.pointer)
        pump.stop()
        rd_kafka_destroy(handle.pointer)
    }

    private func checkOpen() throws(KafkaError) {
        if state.withLock({ $0 }) { throw KafkaError(code: .closed, reason: "the record reader is closed") }
    }
}
