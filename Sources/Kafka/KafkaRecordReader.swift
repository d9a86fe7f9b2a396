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
    /// Topics the reader has asked about: a handle per topic, kept until ``close()``, and those whose metadata
    /// (partition leaders) it has received.
    private let topics = Mutex(KnownTopics())

    /// The generated group id, never joined nor committed to.
    public let groupID: String

    /// Creates a reader.
    ///
    /// Sets `fetch.wait.max.ms=10` unless `config` sets it, so that a fetch at the end of a partition answers
    /// quickly, and small fetch and prefetch sizes (64 KiB per partition, 4 MiB per request, 8 MiB queued) unless
    /// `config` sets them.
    /// - Throws: A ``KafkaError`` if a property is rejected or the client cannot be created.
    public init(config: KafkaClientConfig, logger: Logger) throws(KafkaError) {
        var config = config
        let groupID = "flowmeter-record-reader-\(UUID().uuidString.lowercased())"
        if config.value(for: "fetch.wait.max.ms") == nil { config.set("fetch.wait.max.ms", "10") }
        // It needs the first record of each partition, not a prefetched backlog: a batched read assigns many
        // partitions at once, and librdkafka's defaults would fetch up to 1 MiB of each (50 MiB per request).
        for (key, value) in [
            ("max.partition.fetch.bytes", "65536"), ("fetch.max.bytes", "4194304"),
            ("queued.max.messages.kbytes", "8192"),
        ] where config.value(for: key) == nil {
            config.set(key, value)
        }
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
        let reads = try timestamps([partition: RecordPositions(positions: [offset], end: end)], timeout: timeout)
        if let error = reads.errors[partition] { throw error }
        guard let found = reads.found[partition]?[offset] else {
            throw KafkaError(
                code: .timedOut,
                reason: "no record of \(partition) at or after \(offset) within \(timeout)",
                isRetriable: true
            )
        }
        return found.map { ($0.offset, $0.timestampMs) }
    }

    /// For many partitions and positions at once: the first data record at or after each position and before the
    /// partition's `end`, read with **one** assignment of all the partitions (each from its lowest position), so
    /// the broker answers them in shared fetch requests instead of one assign-fetch-unassign round per position.
    ///
    /// The first time a topic is read, its metadata is requested before the assignment (see
    /// `describeNewTopics`), so that the first fetch does not wait for librdkafka's topic scan.
    ///
    /// - Parameters:
    ///   - requests: per partition, the positions to resolve and the end offset polled with them.
    ///   - timeout: how long to wait, for all of them together.
    /// - Returns: ``RecordReads``: what was resolved (a position absent from ``RecordReads/found`` was not
    ///   resolved within `timeout`), and the broker's error for partitions that failed.
    /// - Throws: A ``KafkaError`` if the reader is closed or the assignment is refused.
    public func timestamps(
        _ requests: [TopicPartition: RecordPositions],
        timeout: Duration
    ) throws(KafkaError) -> RecordReads {
        try checkOpen()
        var reads = RecordReads()
        // Per partition, the positions still to resolve, ascending; those at or past the end have no record.
        var open: [TopicPartition: [Int64]] = [:]
        for (partition, request) in requests {
            for position in request.positions where position >= request.end {
                reads.found[partition, default: [:]][position] = .some(nil)
            }
            let inRange = request.positions.filter { $0 < request.end }.sorted()
            if !inRange.isEmpty { open[partition] = inRange }
        }
        guard !open.isEmpty else { return reads }
        reading.lock()
        defer { reading.unlock() }
        let deadline = ContinuousClock.now + timeout
        describeNewTopics(Set(open.keys.map(\.topic)), timeout: timeout)
        let list = makePartitionList(open.map { ($0.key, $0.value[0]) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let err = rd_kafka_assign(handle.pointer, list)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw .rdKafka(err, context: "assign \(open.count) partitions")
        }
        defer { _ = rd_kafka_assign(handle.pointer, nil) }
        while !open.isEmpty, ContinuousClock.now < deadline {
            let left = deadline - ContinuousClock.now
            guard let message = rd_kafka_consumer_poll(handle.pointer, min(left, .milliseconds(100)).milliseconds)
            else { continue }
            defer { rd_kafka_message_destroy(message) }
            let msg = message.pointee
            guard let rkt = msg.rkt else { continue }
            let partition = TopicPartition(String(cString: rd_kafka_topic_name(rkt)), msg.partition)
            guard let positions = open[partition], let end = requests[partition]?.end else { continue }
            if msg.err == RD_KAFKA_RESP_ERR__PARTITION_EOF {
                // The fetch reached the end (past any trailing markers) without a data record in range.
                for position in positions { reads.found[partition, default: [:]][position] = .some(nil) }
                open[partition] = nil
                continue
            }
            if msg.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                let error = KafkaError.rdKafka(msg.err, context: "read \(partition) at \(positions[0])")
                if error.isRetriable { continue }
                reads.errors[partition] = error
                open[partition] = nil
                continue
            }
            guard msg.offset >= positions[0] else { continue }
            guard msg.offset < end else {
                for position in positions { reads.found[partition, default: [:]][position] = .some(nil) }
                open[partition] = nil
                continue
            }
            var type = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
            let timestamp = rd_kafka_message_timestamp(message, &type)
            let record = FirstRecord(
                offset: msg.offset,
                timestampMs: type == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? -1 : timestamp
            )
            // Records arrive in offset order: this one is the first at or after every position up to its offset.
            let resolved = positions.prefix { $0 <= msg.offset }
            for position in resolved { reads.found[partition, default: [:]][position] = .some(record) }
            open[partition] = resolved.count == positions.count ? nil : Array(positions.dropFirst(resolved.count))
        }
        return reads
    }

    /// Requests the metadata of the topics among `names` the reader has no metadata for yet (one request per topic,
    /// bounded together by `timeout`) before they are assigned.
    ///
    /// librdkafka 2.0.2 does not ask for the metadata of a topic that is first seen in an assignment: it waits for
    /// its topic scan, which runs once a second, so the first read of a topic stood still for up to 1 s (debug log
    /// of a lag cycle: the assignment at 58.413, "Topic lag.t00 metadata information unknown", "Requesting metadata
    /// for 1/1 topics: refresh unavailable topics" at 59.405, the fetch right after). With the leaders known the
    /// partitions go to their brokers as they are assigned. The topic handles are kept, so librdkafka keeps the
    /// topics' metadata current (its periodic refresh of known topics) for later reads.
    ///
    /// Each request names its topic: a request for all locally known topics would let the broker create a missing
    /// one once the others are cached (librdkafka then sets AllowAutoTopicCreation), while one that names a topic
    /// follows `allow.auto.create.topics`, off for a consumer. A failure here is only logged: the read then goes on
    /// as before and the topic scan finds the leaders.
    private func describeNewTopics(_ names: Set<String>, timeout: Duration) {
        let fresh = topics.withLock { known in
            var fresh: [(String, SendableHandle)] = []
            for name in names.subtracting(known.described).sorted() {
                if let existing = known.handles[name] {
                    fresh.append((name, existing))
                } else if let rkt = rd_kafka_topic_new(handle.pointer, name, nil) {
                    known.handles[name] = SendableHandle(pointer: rkt)
                    fresh.append((name, SendableHandle(pointer: rkt)))
                }
            }
            return fresh
        }
        guard !fresh.isEmpty else { return }
        let deadline = ContinuousClock.now + timeout
        var described: Set<String> = []
        var failed: [String: KafkaError] = [:]
        for (name, rkt) in fresh {
            let left = deadline - ContinuousClock.now
            guard left > .zero else { break }
            var metadata: UnsafePointer<rd_kafka_metadata>?
            let err = rd_kafka_metadata(handle.pointer, 0, rkt.pointer, &metadata, left.milliseconds)
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
                failed[name] = .rdKafka(err, context: "metadata of \(name)")
                continue
            }
            defer { rd_kafka_metadata_destroy(metadata) }
            for index in 0..<Int(metadata.pointee.topic_cnt) {
                let entry = metadata.pointee.topics[index]
                guard String(cString: entry.topic) == name else { continue }
                if entry.err == RD_KAFKA_RESP_ERR_NO_ERROR, entry.partition_cnt > 0 {
                    described.insert(name)
                } else {
                    failed[name] = .rdKafka(entry.err, context: "metadata of \(name)")
                }
            }
        }
        topics.withLock { $0.described.formUnion(described) }
        if !failed.isEmpty {
            logger.debug(
                "No topic metadata before reading; librdkafka's topic scan will look for the leaders",
                metadata: ["kafka.errors": "\(failed.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" })"]
            )
        }
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
        let handles = topics.withLock { known in
            defer { known.handles = [:] }
            return Array(known.handles.values)
        }
        for rkt in handles { rd_kafka_topic_destroy(rkt.pointer) }
        pump.stop()
        rd_kafka_destroy(handle.pointer)
    }

    private func checkOpen() throws(KafkaError) {
        if state.withLock({ $0 }) { throw KafkaError(code: .closed, reason: "the record reader is closed") }
    }
}

/// The topics a ``KafkaRecordReader`` has asked about.
private struct KnownTopics: Sendable {
    /// A handle per topic (keeps the topic known to librdkafka, which refreshes its metadata).
    var handles: [String: SendableHandle] = [:]
    /// Topics whose metadata arrived (partition count and leaders).
    var described: Set<String> = []
}

/// The positions to resolve on one partition, for ``KafkaRecordReader/timestamps(_:timeout:)``.
public struct RecordPositions: Sendable, Hashable {
    /// Offsets (groups' next offsets to read).
    public var positions: Set<Int64>
    /// The end offset polled with them; records at or past it arrived later and do not count.
    public var end: Int64

    /// Creates a request.
    public init(positions: Set<Int64>, end: Int64) {
        self.positions = positions
        self.end = end
    }
}

/// A data record found at or after a position.
public struct FirstRecord: Sendable, Hashable {
    /// The record's offset.
    public var offset: Int64
    /// Its timestamp in milliseconds since the epoch; -1 if it has none.
    public var timestampMs: Int64

    /// Creates a value.
    public init(offset: Int64, timestampMs: Int64) {
        self.offset = offset
        self.timestampMs = timestampMs
    }
}

/// What ``KafkaRecordReader/timestamps(_:timeout:)`` resolved.
public struct RecordReads: Sendable {
    /// Per partition and position: the first data record at or after it and before the end, or `nil` when there
    /// is none. A position missing here was not resolved in time.
    public var found: [TopicPartition: [Int64: FirstRecord?]] = [:]
    /// The broker's error for partitions that could not be read.
    public var errors: [TopicPartition: KafkaError] = [:]

    /// An empty result.
    public init() {}
}
