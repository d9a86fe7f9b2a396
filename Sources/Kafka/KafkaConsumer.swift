internal import CRdKafka
import Foundation
public import Logging
import Synchronization

/// What the consumer does when the group coordinator moves partitions.
///
/// Both closures run synchronously on the thread that calls ``KafkaConsumer/poll(timeout:)`` (or
/// ``KafkaConsumer/close()``), inside librdkafka's rebalance callback.
public struct RebalanceHandler: Sendable {
    /// Called when partitions are assigned, before any of their records are fetched. Returns the offset at
    /// which to start each partition (the next offset to read); partitions it leaves out start at the group's
    /// committed offset, then `auto.offset.reset`.
    public var onAssign: @Sendable ([TopicPartition]) -> [TopicPartition: Int64]
    /// Called *before* partitions are given up. `lost` is true when they were lost (session timeout) rather
    /// than revoked cleanly; work for them must not be committed then.
    public var onRevoke: @Sendable (_ partitions: [TopicPartition], _ lost: Bool) -> Void

    /// Creates a handler.
    public init(
        onAssign: @escaping @Sendable ([TopicPartition]) -> [TopicPartition: Int64] = { _ in [:] },
        onRevoke: @escaping @Sendable (_ partitions: [TopicPartition], _ lost: Bool) -> Void = { _, _ in }
    ) {
        self.onAssign = onAssign
        self.onRevoke = onRevoke
    }
}

/// A rebalance as the consumer saw it, for logs and tests.
public enum RebalanceEvent: Sendable, Hashable {
    /// Partitions were assigned, with the start offsets the handler chose.
    case assigned([TopicPartition])
    /// Partitions were revoked (or lost).
    case revoked([TopicPartition], lost: Bool)
    /// The rebalance failed.
    case failed(String)
}

/// The multiplexing context behind the one opaque slot of the consumer's configuration.
final class ConsumerContext: Sendable {
    let handler: RebalanceHandler
    let logger: Logger
    let events = Mutex<[RebalanceEvent]>([])

    init(handler: RebalanceHandler, logger: Logger) {
        self.handler = handler
        self.logger = logger
    }

    func rebalance(_ rk: OpaquePointer, _ err: rd_kafka_resp_err_t, _ list: PartitionListPointer) {
        let cooperative = String(cString: rd_kafka_rebalance_protocol(rk)) == "COOPERATIVE"
        let partitions = readPartitionList(list).map(\.topicPartition)
        switch err {
        case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
            let starts = handler.onAssign(partitions)
            for index in 0..<Int(list.pointee.cnt) {
                let element = list.pointee.elems[index]
                let tp = TopicPartition(String(cString: element.topic), element.partition)
                list.pointee.elems[index].offset = starts[tp] ?? invalidOffset
            }
            if cooperative {
                if let error = rd_kafka_incremental_assign(rk, list) {
                    logger.error(
                        "Incremental assign failed",
                        metadata: ["kafka.error": "\(KafkaError.rdKafka(owning: error, context: "assign"))"]
                    )
                }
            } else {
                let result = rd_kafka_assign(rk, list)
                if result != RD_KAFKA_RESP_ERR_NO_ERROR {
                    logger.error(
                        "Assign failed",
                        metadata: ["kafka.error": "\(KafkaError.rdKafka(result, context: "assign"))"]
                    )
                }
            }
            logger.info(
                "Partitions assigned",
                metadata: ["kafka.partitions": "\(partitions.map(\.description).joined(separator: ","))"]
            )
            events.withLock { $0.append(.assigned(partitions)) }
        case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
            let lost = rd_kafka_assignment_lost(rk) != 0
            // The hook runs before the partitions are given up, so their state can still be flushed.
            handler.onRevoke(partitions, lost)
            if cooperative {
                if let error = rd_kafka_incremental_unassign(rk, list) {
                    logger.error(
                        "Incremental unassign failed",
                        metadata: ["kafka.error": "\(KafkaError.rdKafka(owning: error, context: "unassign"))"]
                    )
                }
            } else {
                _ = rd_kafka_assign(rk, nil)
            }
            logger.info(
                "Partitions revoked",
                metadata: [
                    "kafka.partitions": "\(partitions.map(\.description).joined(separator: ","))",
                    "kafka.lost": "\(lost)",
                ]
            )
            events.withLock { $0.append(.revoked(partitions, lost: lost)) }
        default:
            let error = KafkaError.rdKafka(err, context: "rebalance")
            logger.error("Rebalance failed", metadata: ["kafka.error": "\(error)"])
            handler.onRevoke(partitions, true)
            _ = rd_kafka_assign(rk, nil)
            events.withLock { $0.append(.failed(error.description)) }
        }
    }
}

private func rebalanceTrampoline(
    _ rk: OpaquePointer?,
    _ err: rd_kafka_resp_err_t,
    _ partitions: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?,
    _ opaque: UnsafeMutableRawPointer?
) {
    guard let rk, let partitions, let opaque else { return }
    Unmanaged<ConsumerContext>.fromOpaque(opaque).takeUnretainedValue().rebalance(rk, err, partitions)
}

/// A member of a Kafka consumer group, with manual offset storage and commits.
///
/// - Important: ``poll(timeout:)``, ``pollBatch(maxRecords:timeout:)`` and ``close()`` must be called from one
///   thread at a time (the intake loop); the rebalance handler runs on that thread. The other methods are
///   thread-safe. Offsets passed to ``storeOffsets(processed:)`` and ``commit(processed:)`` are the offsets of
///   the last *processed* records; the bridge adds one, as Kafka expects the next offset to read.
public final class KafkaConsumer: Sendable {
    private let handle: SendableHandle
    private let context: ConsumerContext
    private let pump: EventPump
    private let logger: Logger
    private let closed = Mutex(false)
    private let topicNames = Mutex<[UInt: String]>([:])
    private let transientErrors = Atomic<Int>(0)
    private let recentErrors = Mutex<[String: (lastLogged: ContinuousClock.Instant, suppressed: Int)]>([:])
    /// The helper thread that parses headers ahead and destroys batches (``pollBatch(maxRecords:timeout:_:)``).
    private let readAhead: MessageReadAhead?
    /// Wakes librdkafka's fetcher while a backlog is read (with `readAhead`).
    private let fetchWakeup: FetchWakeup?

    /// The consumer group id.
    public let groupID: String

    /// Creates a consumer that joins `groupID` once it subscribes.
    ///
    /// Sets `enable.auto.offset.store=false` and `enable.auto.commit=false` unless `config` sets them, so
    /// nothing is committed that the caller did not store or commit.
    ///
    /// With `readAhead`, ``pollBatch(maxRecords:timeout:_:)`` hands batches of 64 records or more to a helper
    /// thread that parses their headers ahead of `body` and destroys them afterwards (see `MessageReadAhead`), and
    /// while it returns full batches another thread keeps librdkafka's fetcher awake (see `FetchWakeup`): for a
    /// caller that reads a backlog on one thread and has a core to spare. `valueWork` (with `readAhead` only) is done
    /// there too, on each message's value the helper gets to first; ``BorrowedRecord/prepared`` hands out its slot.
    /// - Throws: A ``KafkaError`` if a property is rejected or the client cannot be created.
    public init(
        config: KafkaClientConfig,
        groupID: String,
        rebalance: RebalanceHandler = RebalanceHandler(),
        readAhead: Bool = false,
        valueWork: ReadAheadValueWork? = nil,
        logger: Logger
    ) throws(KafkaError) {
        var config = config
        var defaults: [(String, String)] = [
            ("enable.auto.offset.store", "false"),
            ("enable.auto.commit", "false"),
            ("enable.partition.eof", "false"),
        ]
        defaults.removeAll { key, _ in config.value(for: key) != nil }
        config.properties.insert(contentsOf: defaults.map { (key: $0.0, value: $0.1) }, at: 1)
        config.set("group.id", groupID)
        config.set("log.queue", "true")
        let conf = try config.makeConf()
        let context = ConsumerContext(handler: rebalance, logger: logger)
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(context).toOpaque())
        rd_kafka_conf_set_rebalance_cb(conf, rebalanceTrampoline)
        let rk = try makeClient(type: RD_KAFKA_CONSUMER, conf: conf)
        rd_kafka_poll_set_consumer(rk)
        self.handle = SendableHandle(pointer: rk)
        self.context = context
        self.logger = logger
        self.groupID = groupID
        self.readAhead = readAhead ? MessageReadAhead(valueWork: valueWork) : nil
        self.fetchWakeup = readAhead ? FetchWakeup(handle: rk) : nil
        self.pump = EventPump(client: rk, serveMain: false, logger: logger, onEvent: nil)
    }

    deinit {
        close()
    }

    /// Subscribes to topics. A name starting with `^` is a regular expression.
    public func subscribe(topics: [String]) throws(KafkaError) {
        try checkOpen()
        let list = makePartitionList(topics.map { (TopicPartition($0, -1), invalidOffset) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let err = rd_kafka_subscribe(handle.pointer, list)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw .rdKafka(err, context: "subscribe") }
    }

    /// Waits up to `timeout` for the next record. Rebalances are served inside this call.
    ///
    /// Non-fatal client errors (a broker down, a transport error) are logged and return `nil`; librdkafka
    /// recovers from them by itself.
    /// - Throws: A ``KafkaError`` if the client hit a fatal error or was closed.
    public func poll(timeout: Duration) throws(KafkaError) -> ConsumerRecord? {
        try checkOpen()
        guard let message = rd_kafka_consumer_poll(handle.pointer, timeout.milliseconds) else { return nil }
        defer { rd_kafka_message_destroy(message) }
        return try record(from: message)
    }

    /// How many errors this client has reported so far (consume errors and client error events such as
    /// transport failures): a change means librdkafka's cached state, watermarks included, may be stale.
    public var errorsSeen: Int {
        transientErrors.load(ordering: .relaxed) + pump.errorCount.load(ordering: .relaxed)
    }

    /// Waits up to `timeout` for a first record, then takes what is already fetched, up to `maxRecords`.
    public func pollBatch(maxRecords: Int, timeout: Duration) throws(KafkaError) -> [ConsumerRecord] {
        var records: [ConsumerRecord] = []
        guard let first = try poll(timeout: timeout) else { return records }
        records.reserveCapacity(min(maxRecords, 1024))
        records.append(first)
        while records.count < maxRecords, let next = try poll(timeout: .zero) {
            records.append(next)
        }
        return records
    }

    /// Like ``pollBatch(maxRecords:timeout:)``, but hands the records to `body` as librdkafka holds them, without
    /// copying keys, values or headers.
    ///
    /// - Important: The records, and the buffers they point to, are valid only during `body`; librdkafka's messages
    ///   are destroyed when it returns.
    /// - Returns: What `body` returns.
    /// - Throws: A ``KafkaError`` if the client hit a fatal error or was closed.
    public func pollBatch<Result>(
        maxRecords: Int,
        timeout: Duration,
        _ body: (borrowing BorrowedRecordBatch) -> Result
    ) throws(KafkaError) -> Result {
        try checkOpen()
        var messages: [UnsafeMutablePointer<rd_kafka_message_t>] = []
        var retired = false
        defer { if !retired { for message in messages { rd_kafka_message_destroy(message) } } }
        var wait = timeout.milliseconds
        while messages.count < maxRecords, let message = rd_kafka_consumer_poll(handle.pointer, wait) {
            wait = 0
            if message.pointee.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                // As in `pollBatch(maxRecords:timeout:)`: an error (or a partition end) ends the batch.
                defer { rd_kafka_message_destroy(message) }
                try checkError(message.pointee.err)
                break
            }
            if messages.isEmpty { messages.reserveCapacity(min(maxRecords, 1024)) }
            messages.append(message)
        }
        if messages.count == maxRecords { fetchWakeup?.noteFullBatch() }
        guard let readAhead, messages.count >= MessageReadAhead.minimumBatch else {
            return body(BorrowedRecordBatch(messages: messages, consumer: self, readAhead: nil))
        }
        readAhead.begin(MessageList(messages: messages))
        let result = body(BorrowedRecordBatch(messages: messages, consumer: self, readAhead: readAhead))
        // The helper destroys them, once it has stopped parsing them.
        readAhead.retire()
        retired = true
        return result
    }

    /// Throws a fatal consume error; logs a transient one (a partition end is neither).
    private func checkError(_ err: rd_kafka_resp_err_t) throws(KafkaError) {
        if err == RD_KAFKA_RESP_ERR__PARTITION_EOF { return }
        let error = KafkaError.rdKafka(err, context: "consume")
        if error.isFatal || rd_kafka_fatal_error(handle.pointer, nil, 0) != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw error
        }
        reportTransient(error)
    }

    private func record(from message: UnsafeMutablePointer<rd_kafka_message_t>) throws(KafkaError) -> ConsumerRecord? {
        let msg = message.pointee
        if msg.err != RD_KAFKA_RESP_ERR_NO_ERROR {
            try checkError(msg.err)
            return nil
        }
        var type = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let timestamp = rd_kafka_message_timestamp(message, &type)
        return ConsumerRecord(
            topic: topicName(msg.rkt),
            partition: msg.partition,
            offset: msg.offset,
            key: msg.key.map { Array(UnsafeRawBufferPointer(start: $0, count: msg.key_len)) },
            value: msg.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: msg.len)) },
            headers: headers(of: message),
            timestampMs: timestamp,
            timestampType: type == RD_KAFKA_TIMESTAMP_CREATE_TIME
                ? .createTime : (type == RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME ? .logAppendTime : .notAvailable)
        )
    }

    /// Logs a transient consumer error once a minute per distinct error, with the number of repeats suppressed
    /// (an unknown topic is reported on every fetch otherwise).
    private func reportTransient(_ error: KafkaError) {
        transientErrors.add(1, ordering: .relaxed)
        let key = error.description
        let now = ContinuousClock.now
        let suppressed: Int? = recentErrors.withLock { recent in
            if var entry = recent[key], now - entry.lastLogged < .seconds(60) {
                entry.suppressed += 1
                recent[key] = entry
                return nil
            }
            let suppressed = recent[key]?.suppressed ?? 0
            recent[key] = (now, 0)
            if recent.count > 256 { recent.removeAll() }
            return suppressed
        }
        guard let suppressed else { return }
        logger.warning(
            "Consumer error",
            metadata: ["kafka.error": "\(error)", "kafka.repeats_suppressed": "\(suppressed)"]
        )
    }

    fileprivate func topicName(_ rkt: OpaquePointer?) -> String {
        guard let rkt else { return "" }
        let key = UInt(bitPattern: UnsafeMutableRawPointer(rkt))
        if let name = topicNames.withLock({ $0[key] }) { return name }
        let name = String(cString: rd_kafka_topic_name(rkt))
        topicNames.withLock { $0[key] = name }
        return name
    }

    private func headers(of message: UnsafeMutablePointer<rd_kafka_message_t>) -> [KafkaHeader] {
        var result: [KafkaHeader] = []
        visitHeaders(
            of: message,
            reserve: { result.reserveCapacity($0) },
            body: { name, value in result.append(KafkaHeader(name: name, value: value.map { Array($0) })) }
        )
        return result
    }

    /// Stores offsets for the next commit: for each partition, the offset of the last processed record.
    public func storeOffsets(processed: [TopicPartition: Int64]) throws(KafkaError) {
        try checkOpen()
        guard !processed.isEmpty else { return }
        let list = makePartitionList(processed.map { ($0.key, $0.value + 1) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let err = rd_kafka_offsets_store(handle.pointer, list)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw .rdKafka(err, context: "store offsets") }
        for entry in readPartitionList(list) where entry.error != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw .rdKafka(entry.error, context: "store offset for \(entry.topicPartition)")
        }
    }

    /// Commits the stored offsets synchronously.
    /// - Throws: A ``KafkaError``; nothing to commit is not an error.
    public func commitStored() throws(KafkaError) {
        try checkOpen()
        let err = rd_kafka_commit(handle.pointer, nil, 0)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR__NO_OFFSET else {
            throw .rdKafka(err, context: "commit")
        }
    }

    /// Commits explicit offsets: for each partition, the offset of the last processed record.
    ///
    /// - Parameter wait: wait for the broker's answer (and throw its per-partition errors). A synchronous commit
    ///   blocks for as long as the group coordinator is unreachable; pass `false` where a commit is only for
    ///   visibility and must never hold the caller up (the commit is then queued and sent when it can be).
    public func commit(processed: [TopicPartition: Int64], wait: Bool = true) throws(KafkaError) {
        try checkOpen()
        guard !processed.isEmpty else { return }
        let list = makePartitionList(processed.map { ($0.key, $0.value + 1) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let err = rd_kafka_commit(handle.pointer, list, wait ? 0 : 1)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw .rdKafka(err, context: "commit") }
        guard wait else { return }
        for entry in readPartitionList(list) where entry.error != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw .rdKafka(entry.error, context: "commit \(entry.topicPartition)")
        }
    }

    /// Moves the fetch position of assigned partitions: `offsets` are the next offsets to read.
    public func seek(_ offsets: [TopicPartition: Int64], timeout: Duration = .seconds(10)) throws(KafkaError) {
        try checkOpen()
        let list = makePartitionList(offsets.map { ($0.key, $0.value) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        if let error = rd_kafka_seek_partitions(handle.pointer, list, timeout.milliseconds) {
            throw .rdKafka(owning: error, context: "seek")
        }
        for entry in readPartitionList(list) where entry.error != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw .rdKafka(entry.error, context: "seek \(entry.topicPartition)")
        }
    }

    /// Stops fetching from partitions (for back-pressure); their assignment is kept.
    public func pause(_ partitions: [TopicPartition]) throws(KafkaError) {
        try checkOpen()
        let list = makePartitionList(partitions.map { ($0, invalidOffset) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let err = rd_kafka_pause_partitions(handle.pointer, list)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw .rdKafka(err, context: "pause") }
    }

    /// Resumes fetching from paused partitions.
    public func resume(_ partitions: [TopicPartition]) throws(KafkaError) {
        try checkOpen()
        let list = makePartitionList(partitions.map { ($0, invalidOffset) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let err = rd_kafka_resume_partitions(handle.pointer, list)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw .rdKafka(err, context: "resume") }
    }

    /// The partitions currently assigned to this member.
    public func assignment() throws(KafkaError) -> [TopicPartition] {
        try checkOpen()
        var list: PartitionListPointer?
        let err = rd_kafka_assignment(handle.pointer, &list)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let list else { throw .rdKafka(err, context: "assignment") }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        return readPartitionList(list).map(\.topicPartition).sorted()
    }

    /// This group's committed offsets (next offsets to read); `nil` where the group has no commit.
    public func committed(
        _ partitions: [TopicPartition],
        timeout: Duration = .seconds(10)
    ) throws(KafkaError) -> [TopicPartition: Int64?] {
        try checkOpen()
        let list = makePartitionList(partitions.map { ($0, invalidOffset) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let err = rd_kafka_committed(handle.pointer, list, timeout.milliseconds)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw .rdKafka(err, context: "committed") }
        var result: [TopicPartition: Int64?] = [:]
        for entry in readPartitionList(list) {
            result[entry.topicPartition] = entry.offset >= 0 ? entry.offset : nil
        }
        return result
    }

    /// The fetch positions (next offsets to fetch) of assigned partitions; `nil` where none is known yet.
    public func position(_ partitions: [TopicPartition]) throws(KafkaError) -> [TopicPartition: Int64?] {
        try checkOpen()
        guard !partitions.isEmpty else { return [:] }
        let list = makePartitionList(partitions.map { ($0, invalidOffset) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let err = rd_kafka_position(handle.pointer, list)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw .rdKafka(err, context: "position") }
        var result: [TopicPartition: Int64?] = [:]
        for entry in readPartitionList(list) {
            result[entry.topicPartition] = entry.offset >= 0 ? entry.offset : nil
        }
        return result
    }

    /// For each partition, the earliest offset whose timestamp is at or after the given time (milliseconds
    /// since the epoch); `nil` where no such record exists yet (the time is after the last record).
    public func offsetsForTimes(
        _ times: [TopicPartition: Int64],
        timeout: Duration = .seconds(10)
    ) throws(KafkaError) -> [TopicPartition: Int64?] {
        try checkOpen()
        guard !times.isEmpty else { return [:] }
        let list = makePartitionList(times.map { ($0.key, $0.value) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let err = rd_kafka_offsets_for_times(handle.pointer, list, timeout.milliseconds)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw .rdKafka(err, context: "offsets for times") }
        var result: [TopicPartition: Int64?] = [:]
        for entry in readPartitionList(list) {
            guard entry.error == RD_KAFKA_RESP_ERR_NO_ERROR else {
                throw .rdKafka(entry.error, context: "offset for time on \(entry.topicPartition)")
            }
            result[entry.topicPartition] = entry.offset >= 0 ? entry.offset : nil
        }
        return result
    }

    /// The watermarks librdkafka cached from its last fetch response for a partition this member reads, or
    /// `nil` if it has none yet. The low watermark is refreshed only when `statistics.interval.ms` is set.
    public func cachedWatermarks(_ partition: TopicPartition) -> Watermarks? {
        // Called from other threads (the lag monitor): the lock is held across the (non-blocking) C call so
        // that ``close()``, which takes it first, cannot destroy the handle underneath.
        closed.withLock { closed in
            guard !closed else { return nil }
            var low: Int64 = -1
            var high: Int64 = -1
            let err = rd_kafka_get_watermark_offsets(
                handle.pointer,
                partition.topic,
                partition.partition,
                &low,
                &high
            )
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR, high >= 0 else { return nil }
            return Watermarks(low: low, high: high)
        }
    }

    /// With `readAhead`: the batches handed to the helper thread, the messages whose headers it parsed ahead of
    /// the caller, the times the caller caught up with the helper and waited for the message it was parsing, and
    /// the wake-ups sent to librdkafka's fetcher while a backlog was read (zeros without it).
    public var readAheadStatistics: (batches: Int, parsedAhead: Int, callerWaits: Int, fetchWakeups: Int) {
        (
            readAhead?.batches.load(ordering: .relaxed) ?? 0, readAhead?.parsedAhead.load(ordering: .relaxed) ?? 0,
            readAhead?.callerWaits.load(ordering: .relaxed) ?? 0, fetchWakeup?.wakeups.load(ordering: .relaxed) ?? 0
        )
    }

    /// Rebalances seen so far, oldest first; the list is emptied by this call.
    public func drainRebalanceEvents() -> [RebalanceEvent] {
        context.events.withLock { events in
            defer { events.removeAll() }
            return events
        }
    }

    /// Leaves the group (the revoke handler runs first) and releases the client. Idempotent.
    public func close() {
        let wasClosed = closed.withLock { closed in
            defer { closed = true }
            return closed
        }
        guard !wasClosed else { return }
        // Every message must be destroyed before the client is.
        readAhead?.finish()
        let wakeupStopped = fetchWakeup?.stop(timeout: .seconds(2)) ?? true
        let err = rd_kafka_consumer_close(handle.pointer)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            logger.warning(
                "Consumer close failed",
                metadata: ["kafka.error": "\(KafkaError.rdKafka(err, context: "close"))"]
            )
        }
        pump.stop()
        guard wakeupStopped else {
            // Its watermark query is still inside the client (a partition without a leader): destroying the client
            // under it could crash; leaving it costs its memory until the process ends.
            logger.warning(
                "The fetcher wake-up is stuck in a watermark query (no partition leader?); the consumer client is left undestroyed"
            )
            return
        }
        rd_kafka_destroy(handle.pointer)
        withExtendedLifetime(context) {}
    }

    private func checkOpen() throws(KafkaError) {
        if closed.withLock({ $0 }) { throw KafkaError(code: .closed, reason: "the consumer is closed") }
    }
}

extension Duration {
    /// Whole milliseconds, clamped to `Int32` (librdkafka's timeout type).
    var milliseconds: Int32 {
        let (seconds, attoseconds) = components
        let ms = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        return Int32(clamping: ms)
    }
}

/// Records as librdkafka holds them, handed out by ``KafkaConsumer/pollBatch(maxRecords:timeout:_:)`` and valid only
/// during that call.
public struct BorrowedRecordBatch: ~Copyable {
    fileprivate let messages: [UnsafeMutablePointer<rd_kafka_message_t>]
    fileprivate let consumer: KafkaConsumer
    /// Parsing the headers ahead, when set: a record is handed out once its headers are parsed.
    fileprivate let readAhead: MessageReadAhead?

    /// The number of records.
    public var count: Int { messages.count }

    /// Whether there are none.
    public var isEmpty: Bool { messages.isEmpty }

    /// Calls `body` with each record in order.
    public func forEachRecord(_ body: (BorrowedRecord) -> Void) {
        var lastTopic: (rkt: OpaquePointer?, name: String)?
        for (index, message) in messages.enumerated() {
            let prepared = readAhead?.claim(index)
            let msg = message.pointee
            let topic: String
            if let last = lastTopic, last.rkt == msg.rkt {
                topic = last.name
            } else {
                topic = consumer.topicName(msg.rkt)
                lastTopic = (msg.rkt, topic)
            }
            var type = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
            let timestamp = rd_kafka_message_timestamp(message, &type)
            body(
                BorrowedRecord(
                    message: UnsafeMutableRawPointer(message),
                    topic: topic,
                    partition: msg.partition,
                    offset: msg.offset,
                    timestampMs: timestamp,
                    timestampType: type == RD_KAFKA_TIMESTAMP_CREATE_TIME
                        ? .createTime : (type == RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME ? .logAppendTime : .notAvailable),
                    key: msg.key.map { UnsafeRawBufferPointer(start: $0, count: msg.key_len) },
                    value: msg.payload.map { UnsafeRawBufferPointer(start: $0, count: msg.len) },
                    prepared: prepared
                )
            )
        }
    }
}

/// A record as librdkafka holds it (see ``BorrowedRecordBatch``): `key`, `value` and header values point into
/// librdkafka's buffers.
public struct BorrowedRecord {
    fileprivate let message: UnsafeMutableRawPointer
    /// The topic it was read from.
    public let topic: String
    /// The partition it was read from.
    public let partition: Int32
    /// Its offset in the partition.
    public let offset: Int64
    /// Milliseconds since the epoch, or -1 when ``timestampType`` is ``KafkaTimestampType/notAvailable``.
    public let timestampMs: Int64
    /// How ``timestampMs`` was assigned.
    public let timestampType: KafkaTimestampType
    /// The key, or `nil` for a null key.
    public let key: UnsafeRawBufferPointer?
    /// The value, or `nil` for a tombstone.
    public let value: UnsafeRawBufferPointer?
    /// The slot the consumer's read-ahead thread filled from the value (its `ReadAheadValueWork`), if it got to this
    /// record first and the work filled it; valid only during the call, like the record.
    public let prepared: UnsafeRawPointer?

    /// The topic and partition of this record.
    public var topicPartition: TopicPartition { TopicPartition(topic, partition) }

    /// The headers in wire order, each made by `transform` from its name and value (`nil` for a null value; the
    /// buffer is valid only during the call). No array is allocated for a record without headers.
    public func headers<Header>(_ transform: (String, UnsafeRawBufferPointer?) -> Header) -> [Header] {
        var result: [Header] = []
        forEachHeader(reserve: { result.reserveCapacity($0) }, body: { result.append(transform($0, $1)) })
        return result
    }

    /// Calls `reserve` with the number of headers (only if there are any), then `body` with each header's name and
    /// value in wire order (`nil` for a null value; the buffer is valid only during the call).
    ///
    /// Not generic, unlike ``headers(_:)``: a generic function of this module called from another one runs
    /// unspecialized (a metadata lookup and a generic array call per record, about 8 % of a backfill's intake).
    public func forEachHeader(
        reserve: (Int) -> Void,
        body: (String, UnsafeRawBufferPointer?) -> Void
    ) {
        visitHeaders(of: message.assumingMemoryBound(to: rd_kafka_message_t.self), reserve: reserve, body: body)
    }

    /// Calls `body` with each header's name bytes and value in wire order (`nil` for a null value; both buffers are
    /// valid only during the call): no string is made for the name.
    public func forEachRawHeader(_ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer?) -> Void) {
        visitRawHeaders(of: message.assumingMemoryBound(to: rd_kafka_message_t.self), reserve: { _ in }, body: body)
    }

    /// A copy that outlives the batch.
    public func copy() -> ConsumerRecord {
        ConsumerRecord(
            topic: topic,
            partition: partition,
            offset: offset,
            key: key.map { Array($0) },
            value: value.map { Array($0) },
            headers: headers { KafkaHeader(name: $0, value: $1.map { Array($0) }) },
            timestampMs: timestampMs,
            timestampType: timestampType
        )
    }
}

/// Calls `reserve` with the number of a message's headers (only if there are any), then `body` with each header's
/// name and value in wire order (`nil` for a null value; the buffer is valid only during the call).
private func visitHeaders(
    of message: UnsafeMutablePointer<rd_kafka_message_t>,
    reserve: (Int) -> Void,
    body: (String, UnsafeRawBufferPointer?) -> Void
) {
    visitRawHeaders(of: message, reserve: reserve) { name, value in
        body(String(decoding: name, as: UTF8.self), value)
    }
}

/// ``visitHeaders(of:reserve:body:)`` with the name's bytes (without the terminating NUL).
private func visitRawHeaders(
    of message: UnsafeMutablePointer<rd_kafka_message_t>,
    reserve: (Int) -> Void,
    body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer?) -> Void
) {
    var headers: OpaquePointer?
    guard rd_kafka_message_headers(message, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR, let headers else { return }
    reserve(rd_kafka_header_cnt(headers))
    var index = 0
    while true {
        var name: UnsafePointer<CChar>?
        var value: UnsafeRawPointer?
        var size = 0
        guard rd_kafka_header_get_all(headers, index, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR, let name
        else { break }
        body(
            UnsafeRawBufferPointer(start: name, count: strlen(name)),
            value.map { UnsafeRawBufferPointer(start: $0, count: size) }
        )
        index += 1
    }
}
