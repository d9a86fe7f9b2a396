internal import CRdKafka
import Foundation
public import Logging
import Synchronization

/// A record to produce.
public struct ProducerMessage: Sendable, Hashable {
    /// The destination topic.
    public var topic: String
    /// The partition, or `nil` to let the partitioner choose (from the key when there is one).
    public var partition: Int32?
    /// The key, or `nil` for a null key.
    public var key: [UInt8]?
    /// The value, or `nil` for a tombstone.
    public var value: [UInt8]?
    /// Headers in order; names may repeat.
    public var headers: [KafkaHeader]
    /// An explicit CreateTime in milliseconds since the epoch, or `nil` for "now".
    public var timestampMs: Int64?

    /// Creates a message.
    public init(
        topic: String,
        partition: Int32? = nil,
        key: [UInt8]? = nil,
        value: [UInt8]?,
        headers: [KafkaHeader] = [],
        timestampMs: Int64? = nil
    ) {
        self.topic = topic
        self.partition = partition
        self.key = key
        self.value = value
        self.headers = headers
        self.timestampMs = timestampMs
    }
}

/// Where a produced record landed.
public struct DeliveryReport: Sendable, Hashable {
    /// The topic.
    public var topic: String
    /// The partition.
    public var partition: Int32
    /// The offset the broker assigned.
    public var offset: Int64
}

/// Called on librdkafka's event thread for each delivery report.
public typealias DeliveryHandler = @Sendable (Result<DeliveryReport, KafkaError>) -> Void

private final class DeliveryCounters: Sendable {
    let state = Mutex<(delivered: Int, failed: Int)>((0, 0))
    func withLock<R: Sendable>(_ body: (inout sending (delivered: Int, failed: Int)) -> R) -> R {
        state.withLock { body(&$0) }
    }
}

private final class DeliveryBox: Sendable {
    let handler: DeliveryHandler
    init(_ handler: @escaping DeliveryHandler) { self.handler = handler }
}

/// A Kafka producer over `rd_kafka_produceva`, with delivery reports served on a thread of its own.
public final class KafkaProducer: Sendable {
    private let handle: SendableHandle
    private let pump: EventPump
    private let logger: Logger
    private let closed = Mutex(false)
    private let counters: DeliveryCounters

    /// Creates a producer.
    ///
    /// - Parameter deliveryHandler: called for every record sent with ``send(_:)``; records sent with
    ///   ``send(_:onDelivery:)`` or ``deliver(_:)`` report to their own handler instead.
    /// - Throws: A ``KafkaError`` if a property is rejected or the client cannot be created.
    public init(
        config: KafkaClientConfig,
        logger: Logger,
        deliveryHandler: DeliveryHandler? = nil
    ) throws(KafkaError) {
        var config = config
        config.set("log.queue", "true")
        let conf = try config.makeConf()
        rd_kafka_conf_set_events(conf, Int32(RD_KAFKA_EVENT_DR | RD_KAFKA_EVENT_ERROR))
        let rk = try makeClient(type: RD_KAFKA_PRODUCER, conf: conf)
        let counters = DeliveryCounters()
        self.counters = counters
        self.handle = SendableHandle(pointer: rk)
        self.logger = logger
        self.pump = EventPump(client: rk, serveMain: true, logger: logger) { event in
            guard rd_kafka_event_type(event) == RD_KAFKA_EVENT_DR else { return }
            while let message = rd_kafka_event_message_next(event) {
                let msg = message.pointee
                let result: Result<DeliveryReport, KafkaError>
                if msg.err == RD_KAFKA_RESP_ERR_NO_ERROR {
                    result = .success(
                        DeliveryReport(
                            topic: String(cString: rd_kafka_topic_name(msg.rkt)),
                            partition: msg.partition,
                            offset: msg.offset
                        )
                    )
                    counters.withLock { $0.delivered += 1 }
                } else {
                    result = .failure(.rdKafka(msg.err, context: "delivery"))
                    counters.withLock { $0.failed += 1 }
                }
                if let opaque = msg._private {
                    Unmanaged<DeliveryBox>.fromOpaque(opaque).takeRetainedValue().handler(result)
                } else {
                    deliveryHandler?(result)
                }
            }
        }
    }

    deinit {
        close()
    }

    /// Records delivered and failed so far (by delivery report).
    public var deliveryCounts: (delivered: Int, failed: Int) { counters.withLock { $0 } }

    /// Records enqueued but not yet acknowledged.
    public var outstanding: Int {
        closed.withLock { $0 } ? 0 : Int(rd_kafka_outq_len(handle.pointer))
    }

    /// Enqueues a record; its delivery report goes to the producer's delivery handler.
    ///
    /// When librdkafka's queue is full, waits for room for up to `queueFullTimeout`.
    public func send(_ message: ProducerMessage, queueFullTimeout: Duration = .seconds(30)) throws(KafkaError) {
        try enqueue(message, opaque: nil, queueFullTimeout: queueFullTimeout)
    }

    /// Enqueues a record and calls `onDelivery` (on the event thread) with its delivery report.
    public func send(
        _ message: ProducerMessage,
        queueFullTimeout: Duration = .seconds(30),
        onDelivery: @escaping DeliveryHandler
    ) throws(KafkaError) {
        let box = Unmanaged.passRetained(DeliveryBox(onDelivery))
        do {
            try enqueue(message, opaque: box.toOpaque(), queueFullTimeout: queueFullTimeout)
        } catch {
            box.release()
            throw error
        }
    }

    /// Sends a record and waits for the broker's acknowledgement.
    public func deliver(_ message: ProducerMessage) async throws(KafkaError) -> DeliveryReport {
        let result: Result<DeliveryReport, KafkaError> = await withCheckedContinuation { continuation in
            do throws(KafkaError) {
                try send(message) { continuation.resume(returning: $0) }
            } catch {
                continuation.resume(returning: .failure(error))
            }
        }
        return try result.get()
    }

    private func enqueue(
        _ message: ProducerMessage,
        opaque: UnsafeMutableRawPointer?,
        queueFullTimeout: Duration
    ) throws(KafkaError) {
        try checkOpen()
        guard !message.topic.utf8.contains(0), !message.headers.contains(where: { $0.name.utf8.contains(0) }) else {
            throw KafkaError(code: .invalidArgument, reason: "topic and header names must not contain NUL bytes")
        }
        let deadline = ContinuousClock.now + queueFullTimeout
        while true {
            let err = produceOnce(message, opaque: opaque)
            if err == RD_KAFKA_RESP_ERR_NO_ERROR { return }
            if err == RD_KAFKA_RESP_ERR__QUEUE_FULL, ContinuousClock.now < deadline {
                Thread.sleep(forTimeInterval: 0.001)
                continue
            }
            throw .rdKafka(err, context: "produce to \(message.topic)")
        }
    }

    private func produceOnce(_ message: ProducerMessage, opaque: UnsafeMutableRawPointer?) -> rd_kafka_resp_err_t {
        // All strings and bytes are laid out in one scratch buffer that lives for the duration of the call;
        // librdkafka copies them (RD_KAFKA_MSG_F_COPY, and headers are always copied).
        var arena: [UInt8] = []
        var topicAt = 0
        arena.append(contentsOf: message.topic.utf8)
        arena.append(0)
        var headerSpans: [(name: Int, value: Int, size: Int)] = []
        for header in message.headers {
            let nameAt = arena.count
            arena.append(contentsOf: header.name.utf8)
            arena.append(0)
            let valueAt = arena.count
            if let value = header.value {
                arena.append(contentsOf: value)
                headerSpans.append((nameAt, valueAt, value.count))
            } else {
                headerSpans.append((nameAt, -1, -1))
            }
        }
        let keyAt = arena.count
        if let key = message.key { arena.append(contentsOf: key) }
        let valueAt = arena.count
        if let value = message.value { arena.append(contentsOf: value) }
        arena.append(0)
        topicAt = 0
        return arena.withUnsafeMutableBytes { raw -> rd_kafka_resp_err_t in
            let base = raw.baseAddress!
            var vus: [rd_kafka_vu_t] = []
            vus.reserveCapacity(8 + headerSpans.count)
            var vu = rd_kafka_vu_t()
            vu.vtype = RD_KAFKA_VTYPE_TOPIC
            vu.u.cstr = UnsafePointer(base.advanced(by: topicAt).assumingMemoryBound(to: CChar.self))
            vus.append(vu)
            vu = rd_kafka_vu_t()
            vu.vtype = RD_KAFKA_VTYPE_MSGFLAGS
            vu.u.i = RD_KAFKA_MSG_F_COPY
            vus.append(vu)
            if let partition = message.partition {
                vu = rd_kafka_vu_t()
                vu.vtype = RD_KAFKA_VTYPE_PARTITION
                vu.u.i32 = partition
                vus.append(vu)
            }
            if let key = message.key {
                vu = rd_kafka_vu_t()
                vu.vtype = RD_KAFKA_VTYPE_KEY
                vu.u.mem.ptr = base.advanced(by: keyAt)
                vu.u.mem.size = key.count
                vus.append(vu)
            }
            if let value = message.value {
                vu = rd_kafka_vu_t()
                vu.vtype = RD_KAFKA_VTYPE_VALUE
                vu.u.mem.ptr = base.advanced(by: valueAt)
                vu.u.mem.size = value.count
                vus.append(vu)
            }
            if let timestamp = message.timestampMs {
                vu = rd_kafka_vu_t()
                vu.vtype = RD_KAFKA_VTYPE_TIMESTAMP
                vu.u.i64 = timestamp
                vus.append(vu)
            }
            if let opaque {
                vu = rd_kafka_vu_t()
                vu.vtype = RD_KAFKA_VTYPE_OPAQUE
                vu.u.ptr = opaque
                vus.append(vu)
            }
            for span in headerSpans {
                vu = rd_kafka_vu_t()
                vu.vtype = RD_KAFKA_VTYPE_HEADER
                vu.u.header.name = UnsafePointer(base.advanced(by: span.name).assumingMemoryBound(to: CChar.self))
                vu.u.header.val = span.value >= 0 ? UnsafeRawPointer(base.advanced(by: span.value)) : nil
                vu.u.header.size = span.size
                vus.append(vu)
            }
            let error = vus.withUnsafeBufferPointer { buffer in
                rd_kafka_produceva(handle.pointer, buffer.baseAddress, buffer.count)
            }
            guard let error else { return RD_KAFKA_RESP_ERR_NO_ERROR }
            let code = rd_kafka_error_code(error)
            rd_kafka_error_destroy(error)
            return code
        }
    }

    /// Waits until every enqueued record has a delivery report.
    /// - Throws: A ``KafkaError`` with code ``KafkaError/Code/timedOut`` if records are still outstanding.
    public func flush(timeout: Duration = .seconds(30)) throws(KafkaError) {
        try checkOpen()
        let err = rd_kafka_flush(handle.pointer, timeout.milliseconds)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw .rdKafka(err, context: "flush (\(outstanding) records outstanding)")
        }
    }

    // MARK: - Transactions

    /// Registers the producer's `transactional.id` with the transaction coordinator (once, before the first
    /// transaction). The producer must have been created with the `transactional.id` property.
    /// - Throws: A ``KafkaError`` if the coordinator did not answer in time or refused.
    public func initTransactions(timeout: Duration = .seconds(30)) throws(KafkaError) {
        try checkOpen()
        if let error = rd_kafka_init_transactions(handle.pointer, timeout.milliseconds) {
            throw .rdKafka(owning: error, context: "init transactions")
        }
    }

    /// Starts a transaction: records sent until ``commitTransaction(timeout:)`` or ``abortTransaction(timeout:)``
    /// belong to it.
    public func beginTransaction() throws(KafkaError) {
        try checkOpen()
        if let error = rd_kafka_begin_transaction(handle.pointer) {
            throw .rdKafka(owning: error, context: "begin transaction")
        }
    }

    /// Flushes the transaction's records and commits it: the broker writes a commit marker, which occupies an
    /// offset in every partition the transaction wrote to.
    public func commitTransaction(timeout: Duration = .seconds(30)) throws(KafkaError) {
        try checkOpen()
        if let error = rd_kafka_commit_transaction(handle.pointer, timeout.milliseconds) {
            throw .rdKafka(owning: error, context: "commit transaction")
        }
    }

    /// Aborts the transaction: its records stay in the log, followed by an abort marker, and `read_committed`
    /// consumers skip them.
    public func abortTransaction(timeout: Duration = .seconds(30)) throws(KafkaError) {
        try checkOpen()
        if let error = rd_kafka_abort_transaction(handle.pointer, timeout.milliseconds) {
            throw .rdKafka(owning: error, context: "abort transaction")
        }
    }

    /// Flushes for up to `timeout` and releases the client. Idempotent.
    public func close(timeout: Duration = .seconds(10)) {
        let wasClosed = closed.withLock { closed in
            defer { closed = true }
            return closed
        }
        guard !wasClosed else { return }
        let err = rd_kafka_flush(handle.pointer, timeout.milliseconds)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            logger.warning(
                "Producer closed with undelivered records",
                metadata: ["kafka.outstanding": "\(rd_kafka_outq_len(handle.pointer))"]
            )
            // Fail what is left so that every waiting sender gets a delivery report.
            _ = rd_kafka_purge(handle.pointer, Int32(RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT))
            _ = rd_kafka_flush(handle.pointer, 1000)
        }
        pump.stop()
        rd_kafka_destroy(handle.pointer)
    }

    // MARK: - Topics

    /// The partition count of one topic, or `nil` if the cluster does not know it. Asking for one topic by name
    /// lets a broker that allows it create the topic (librdkafka's `allow.auto.create.topics`, on by default for a
    /// producer; Kafka's `auto.create.topics.enable`; the mock cluster always does).
    public func partitionCount(of topic: String, timeout: Duration = .seconds(5)) throws(KafkaError) -> Int32? {
        try checkOpen()
        guard let rkt = rd_kafka_topic_new(handle.pointer, topic, nil) else {
            throw KafkaError(code: .invalidArgument, reason: "invalid topic name \(topic)")
        }
        defer { rd_kafka_topic_destroy(rkt) }
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let err = rd_kafka_metadata(handle.pointer, 0, rkt, &metadata, timeout.milliseconds)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
            throw .rdKafka(err, context: "metadata of \(topic)")
        }
        defer { rd_kafka_metadata_destroy(metadata) }
        for index in 0..<Int(metadata.pointee.topic_cnt) {
            let entry = metadata.pointee.topics[index]
            guard String(cString: entry.topic) == topic else { continue }
            guard entry.err == RD_KAFKA_RESP_ERR_NO_ERROR, entry.partition_cnt > 0 else { return nil }
            return entry.partition_cnt
        }
        return nil
    }

    /// The partition counts of every topic the cluster reports (one metadata request; creates nothing).
    public func partitionCounts(timeout: Duration = .seconds(5)) throws(KafkaError) -> [String: Int32] {
        try checkOpen()
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let err = rd_kafka_metadata(handle.pointer, 1, nil, &metadata, timeout.milliseconds)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else { throw .rdKafka(err, context: "metadata") }
        defer { rd_kafka_metadata_destroy(metadata) }
        var counts: [String: Int32] = [:]
        for index in 0..<Int(metadata.pointee.topic_cnt) {
            let entry = metadata.pointee.topics[index]
            guard entry.err == RD_KAFKA_RESP_ERR_NO_ERROR else { continue }
            counts[String(cString: entry.topic)] = entry.partition_cnt
        }
        return counts
    }

    /// Creates a topic with the admin API (CreateTopics), with the broker's default replication factor. A topic
    /// that already exists is not an error.
    /// - Throws: A ``KafkaError`` if the broker refuses or does not answer within `timeout` (the 2.0.2 mock
    ///   cluster never answers CreateTopics).
    public func createTopic(_ name: String, partitions: Int32, timeout: Duration = .seconds(5)) throws(KafkaError) {
        try checkOpen()
        var errstr = [CChar](repeating: 0, count: 512)
        let newTopic = errstr.withUnsafeMutableBufferPointer { buffer in
            rd_kafka_NewTopic_new(name, partitions, -1, buffer.baseAddress, buffer.count)
        }
        guard let newTopic else {
            let message = String(decoding: errstr.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw KafkaError(code: .invalidArgument, reason: "topic \(name): \(message)")
        }
        defer { rd_kafka_NewTopic_destroy(newTopic) }
        let options = rd_kafka_AdminOptions_new(handle.pointer, RD_KAFKA_ADMIN_OP_CREATETOPICS)!
        defer { rd_kafka_AdminOptions_destroy(options) }
        _ = errstr.withUnsafeMutableBufferPointer { buffer in
            rd_kafka_AdminOptions_set_request_timeout(options, timeout.milliseconds, buffer.baseAddress, buffer.count)
        }
        _ = errstr.withUnsafeMutableBufferPointer { buffer in
            rd_kafka_AdminOptions_set_operation_timeout(options, timeout.milliseconds, buffer.baseAddress, buffer.count)
        }
        let queue = rd_kafka_queue_new(handle.pointer)!
        defer { rd_kafka_queue_destroy(queue) }
        var topics: [OpaquePointer?] = [newTopic]
        topics.withUnsafeMutableBufferPointer { buffer in
            rd_kafka_CreateTopics(handle.pointer, buffer.baseAddress, 1, options, queue)
        }
        guard let event = rd_kafka_queue_poll(queue, (timeout + .seconds(1)).milliseconds) else {
            throw KafkaError(code: .timedOut, reason: "CreateTopics \(name): no answer within \(timeout)")
        }
        defer { rd_kafka_event_destroy(event) }
        let err = rd_kafka_event_error(event)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw .rdKafka(err, context: "CreateTopics \(name)") }
        guard let result = rd_kafka_event_CreateTopics_result(event) else {
            throw KafkaError(code: .rdKafka, reason: "unexpected admin result")
        }
        var count = 0
        guard let results = rd_kafka_CreateTopics_result_topics(result, &count), count > 0, let first = results[0]
        else { return }
        let topicError = rd_kafka_topic_result_error(first)
        guard topicError == RD_KAFKA_RESP_ERR_NO_ERROR || topicError == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS else {
            throw .rdKafka(topicError, context: "CreateTopics \(name)")
        }
    }

    private func checkOpen() throws(KafkaError) {
        if closed.withLock({ $0 }) { throw KafkaError(code: .closed, reason: "the producer is closed") }
    }
}
