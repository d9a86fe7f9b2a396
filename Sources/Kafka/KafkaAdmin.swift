internal import CRdKafka
import Dispatch
import Foundation
public import Logging
import Synchronization

/// The answer to a request that some brokers do not implement (librdkafka's mock cluster, for example, has
/// no ListGroups or DescribeGroups).
public enum BrokerSupport<Value: Sendable>: Sendable {
    /// The broker answered.
    case supported(Value)
    /// The broker does not implement the request; `reason` says which and why.
    case unsupported(reason: String)
}

/// A consumer group as ListGroups reports it.
public struct ConsumerGroupListing: Sendable, Hashable {
    /// The group id.
    public var groupID: String
    /// The group's state (`Stable`, `Empty`, `PreparingRebalance`, `Dead`, ...).
    public var state: String
    /// Whether it is a simple (non-subscribing) group.
    public var isSimple: Bool
}

/// A consumer group as DescribeGroups reports it.
public struct ConsumerGroupDescription: Sendable, Hashable {
    /// The group id.
    public var groupID: String
    /// The group's state.
    public var state: String
    /// The number of members.
    public var memberCount: Int
    /// A per-group error, if the broker returned one.
    public var error: String?
}

/// Admin queries: watermarks, other groups' committed offsets, group listing, metadata.
///
/// Blocking librdkafka calls run on Dispatch threads, never on the caller's. Watermark queries run under a
/// watchdog, because `rd_kafka_query_watermark_offsets` in librdkafka 2.0.2 ignores its timeout while a
/// partition's leader is down: a hung query occupies one of a bounded number of slots until librdkafka
/// returns, and the caller gets a timeout error instead of hanging.
public final class KafkaAdmin: Sendable {
    private let handle: SendableHandle
    private let pump: EventPump
    private let config: KafkaClientConfig
    private let logger: Logger
    private let maxWatermarkQueries: Int
    private let watermarkQueriesInFlight = Mutex(0)
    private let closed = Mutex(false)
    private let groupAPIs = Mutex<String?>(nil)

    /// Creates an admin client.
    /// - Parameter maxConcurrentWatermarkQueries: the number of watermark queries that may run (or hang) at once.
    public init(config: KafkaClientConfig, logger: Logger, maxConcurrentWatermarkQueries: Int = 8) throws(KafkaError) {
        var config = config
        config.set("log.queue", "true")
        let conf = try config.makeConf()
        let rk = try makeClient(type: RD_KAFKA_PRODUCER, conf: conf)
        self.handle = SendableHandle(pointer: rk)
        self.config = config
        self.logger = logger
        self.maxWatermarkQueries = max(1, maxConcurrentWatermarkQueries)
        self.pump = EventPump(client: rk, serveMain: true, logger: logger, onEvent: nil)
    }

    deinit {
        close()
    }

    // MARK: - Watermarks

    /// Asks the partition leader for the log start and end offsets of one partition.
    ///
    /// - Throws: A ``KafkaError`` with code ``KafkaError/Code/timedOut`` if no answer came within `timeout`
    ///   (the query may still be running in the background), or the broker's error.
    public func watermarks(
        _ partition: TopicPartition,
        timeout: Duration = .seconds(5)
    ) async throws(KafkaError)
        -> Watermarks
    {
        try checkOpen()
        let acquired = watermarkQueriesInFlight.withLock { count in
            guard count < maxWatermarkQueries else { return false }
            count += 1
            return true
        }
        guard acquired else {
            throw KafkaError(
                code: .timedOut,
                reason: "\(maxWatermarkQueries) watermark queries are still waiting for a broker; not starting another",
                isRetriable: true
            )
        }
        let handle = self.handle
        let inFlight = WatermarkSlots(self)
        let result: Result<Watermarks, KafkaError> = await withOneShot(timeout: timeout + .milliseconds(500)) {
            KafkaError(
                code: .timedOut,
                reason: "no watermarks for \(partition) within \(timeout) (is its leader down?)",
                isRetriable: true
            )
        } operation: { complete in
            DispatchQueue.global().async {
                var low: Int64 = -1
                var high: Int64 = -1
                let err = rd_kafka_query_watermark_offsets(
                    handle.pointer,
                    partition.topic,
                    partition.partition,
                    &low,
                    &high,
                    timeout.milliseconds
                )
                inFlight.release()
                if err == RD_KAFKA_RESP_ERR_NO_ERROR {
                    complete(.success(Watermarks(low: low, high: high)))
                } else {
                    complete(.failure(.rdKafka(err, context: "watermarks of \(partition)")))
                }
            }
        }
        return try result.get()
    }

    /// Asks for the watermarks of many partitions, running as many queries at a time as the client allows
    /// (``watermarkQueryCapacity``): started all at once, those beyond the capacity would fail at once ("still
    /// waiting") although the broker answers. Each partition gets its own answer or error.
    ///
    /// With one query at a time, 2,000 partitions at a 2 ms round trip would take 4 s; with 8 slots, about an eighth.
    public func watermarks(
        of partitions: some Sequence<TopicPartition> & Sendable,
        timeout: Duration = .seconds(5)
    ) async -> [TopicPartition: Result<Watermarks, KafkaError>] {
        // Each child stores its answer under a lock and returns nothing: a release build of a group with
        // `(TopicPartition, Result<Watermarks, KafkaError>)` child results crashed in the runtime while copying a
        // child's result (`swift_retain` of 0x8 under `TaskGroup` `offer`/`next`) in 2 of 4 demos from a fresh clone,
        // and in none of 10 after this change (the lag monitor, where this loop was first written).
        let answers = WatermarkAnswers()
        await withTaskGroup(of: Void.self) { tasks in
            var pending = partitions.makeIterator()
            var running = 0
            while true {
                while running < watermarkQueryCapacity, let partition = pending.next() {
                    running += 1
                    tasks.addTask { [self] in
                        let answer = await watermarkAnswer(partition, timeout: timeout)
                        answers.all.withLock { $0[partition] = answer }
                    }
                }
                guard running > 0, await tasks.next() != nil else { break }
                running -= 1
            }
        }
        return answers.all.withLock { $0 }
    }

    private func watermarkAnswer(_ partition: TopicPartition, timeout: Duration) async -> Result<Watermarks, KafkaError>
    {
        do {
            return .success(try await watermarks(partition, timeout: timeout))
        } catch {
            return .failure(error)
        }
    }

    fileprivate func releaseWatermarkSlot() {
        watermarkQueriesInFlight.withLock { $0 -= 1 }
    }

    /// How many watermark queries may run (or hang) at once: start at most this many at a time, or the rest fail
    /// at once as "still waiting".
    public var watermarkQueryCapacity: Int { maxWatermarkQueries }

    /// Watermark queries currently running or hung.
    public var watermarkQueriesRunning: Int { watermarkQueriesInFlight.withLock { $0 } }

    // MARK: - Group offsets

    /// The committed offsets (next offsets to read) of any consumer group for explicit partitions; `nil` where
    /// the group has no commit. Uses one ListConsumerGroupOffsets request.
    ///
    /// Partitions must be explicit: librdkafka 2.0.2 returns nothing for an empty list.
    ///
    /// - Warning: In librdkafka 2.0.2 this admin request can abort the process
    ///   (`rd_kafka_enq_once_del_source_return: Assertion eonce->refcnt > 0`) when the coordinator connection
    ///   drops while it runs, as in a broker outage (librdkafka issue 3663). Long-running pollers should use
    ///   ``KafkaConsumer/committed(_:timeout:)`` on a non-joining consumer with the group's id instead.
    public func committedOffsets(
        group: String,
        partitions: [TopicPartition],
        timeout: Duration = .seconds(10)
    ) async throws(KafkaError) -> [TopicPartition: Int64?] {
        try checkOpen()
        guard !partitions.isEmpty else { return [:] }
        let handle = self.handle
        let result: Result<[TopicPartition: Int64?], KafkaError> = await runBlocking {
            Self.listGroupOffsets(handle: handle.pointer, group: group, partitions: partitions, timeout: timeout)
        }
        return try result.get()
    }

    private static func listGroupOffsets(
        handle: OpaquePointer,
        group: String,
        partitions: [TopicPartition],
        timeout: Duration
    ) -> Result<[TopicPartition: Int64?], KafkaError> {
        let list = makePartitionList(partitions.map { ($0, invalidOffset) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        guard let request = rd_kafka_ListConsumerGroupOffsets_new(group, list) else {
            return .failure(
                KafkaError(code: .invalidArgument, reason: "cannot build a ListConsumerGroupOffsets request")
            )
        }
        defer { rd_kafka_ListConsumerGroupOffsets_destroy(request) }
        let options = rd_kafka_AdminOptions_new(handle, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS)!
        defer { rd_kafka_AdminOptions_destroy(options) }
        setRequestTimeout(options, timeout)
        let queue = rd_kafka_queue_new(handle)!
        defer { rd_kafka_queue_destroy(queue) }
        var requests: [OpaquePointer?] = [request]
        requests.withUnsafeMutableBufferPointer { buffer in
            rd_kafka_ListConsumerGroupOffsets(handle, buffer.baseAddress, 1, options, queue)
        }
        guard let event = rd_kafka_queue_poll(queue, (timeout + .seconds(1)).milliseconds) else {
            return .failure(
                KafkaError(
                    code: .timedOut,
                    reason: "no committed offsets for group \(group) within \(timeout)",
                    isRetriable: true
                )
            )
        }
        defer { rd_kafka_event_destroy(event) }
        let err = rd_kafka_event_error(event)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            return .failure(.rdKafka(err, context: "committed offsets of group \(group)"))
        }
        guard let result = rd_kafka_event_ListConsumerGroupOffsets_result(event) else {
            return .failure(KafkaError(code: .rdKafka, reason: "unexpected admin result"))
        }
        var count = 0
        guard let groups = rd_kafka_ListConsumerGroupOffsets_result_groups(result, &count), count > 0,
            let groupResult = groups[0]
        else {
            return .failure(KafkaError(code: .rdKafka, reason: "empty ListConsumerGroupOffsets result for \(group)"))
        }
        if let error = rd_kafka_group_result_error(groupResult) {
            return .failure(.rdKafka(rd_kafka_error_code(error), context: "committed offsets of group \(group)"))
        }
        var offsets: [TopicPartition: Int64?] = [:]
        if let partitionsResult = rd_kafka_group_result_partitions(groupResult) {
            for entry in readPartitionList(partitionsResult) {
                if entry.error != RD_KAFKA_RESP_ERR_NO_ERROR {
                    return .failure(
                        .rdKafka(entry.error, context: "committed offset of \(group) on \(entry.topicPartition)")
                    )
                }
                offsets[entry.topicPartition] = entry.offset >= 0 ? entry.offset : nil
            }
        }
        return .success(offsets)
    }

    // MARK: - Groups

    /// Lists the consumer groups the cluster knows, or says that the broker cannot.
    ///
    /// Runs on a short-lived client of its own, because in librdkafka 2.0.2 a failed group-listing call can
    /// leave its client unable to complete later admin calls. After the first "unsupported", the answer is
    /// remembered and no request is sent again.
    public func listGroups(
        timeout: Duration = .seconds(10)
    ) async throws(KafkaError)
        -> BrokerSupport<[ConsumerGroupListing]>
    {
        try checkOpen()
        if let reason = groupAPIs.withLock({ $0 }) { return .unsupported(reason: reason) }
        let config = self.config
        let logger = self.logger
        let result: Result<BrokerSupport<[ConsumerGroupListing]>, KafkaError> = await runBlocking {
            Self.withProbeClient(config: config, logger: logger) { rk, queue in
                let options = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS)!
                defer { rd_kafka_AdminOptions_destroy(options) }
                setRequestTimeout(options, timeout)
                rd_kafka_ListConsumerGroups(rk, options, queue)
                guard let event = rd_kafka_queue_poll(queue, (timeout + .seconds(1)).milliseconds) else {
                    return .failure(
                        KafkaError(code: .timedOut, reason: "no group listing within \(timeout)", isRetriable: true)
                    )
                }
                defer { rd_kafka_event_destroy(event) }
                let err = rd_kafka_event_error(event)
                if err != RD_KAFKA_RESP_ERR_NO_ERROR {
                    return Self.unsupportedOrFailure(err, request: "ListGroups")
                }
                guard let result = rd_kafka_event_ListConsumerGroups_result(event) else {
                    return .failure(KafkaError(code: .rdKafka, reason: "unexpected admin result"))
                }
                var errorCount = 0
                if let errors = rd_kafka_ListConsumerGroups_result_errors(result, &errorCount), errorCount > 0,
                    let first = errors[0]
                {
                    let code = rd_kafka_error_code(first)
                    let outcome: Result<BrokerSupport<[ConsumerGroupListing]>, KafkaError> =
                        Self.unsupportedOrFailure(code, request: "ListGroups")
                    if case .success(.unsupported) = outcome { return outcome }
                }
                var count = 0
                var listings: [ConsumerGroupListing] = []
                if let valid = rd_kafka_ListConsumerGroups_result_valid(result, &count) {
                    for index in 0..<count {
                        guard let listing = valid[index] else { continue }
                        listings.append(
                            ConsumerGroupListing(
                                groupID: String(cString: rd_kafka_ConsumerGroupListing_group_id(listing)),
                                state: String(
                                    cString: rd_kafka_consumer_group_state_name(
                                        rd_kafka_ConsumerGroupListing_state(listing)
                                    )
                                ),
                                isSimple: rd_kafka_ConsumerGroupListing_is_simple_consumer_group(listing) != 0
                            )
                        )
                    }
                }
                return .success(.supported(listings.sorted { $0.groupID < $1.groupID }))
            }
        }
        let value = try result.get()
        if case .unsupported(let reason) = value {
            groupAPIs.withLock { $0 = reason }
            logger.notice("Broker cannot list consumer groups", metadata: ["kafka.reason": "\(reason)"])
        }
        return value
    }

    /// Describes consumer groups (state and member count), or says that the broker cannot.
    ///
    /// Sent only when ``listGroups(timeout:)`` is supported; on its own short-lived client.
    public func describeGroups(
        _ groups: [String],
        timeout: Duration = .seconds(10)
    ) async throws(KafkaError)
        -> BrokerSupport<[ConsumerGroupDescription]>
    {
        try checkOpen()
        if case .unsupported(let reason) = try await listGroups(timeout: timeout) {
            return .unsupported(reason: reason)
        }
        guard !groups.isEmpty else { return .supported([]) }
        let config = self.config
        let logger = self.logger
        let result: Result<BrokerSupport<[ConsumerGroupDescription]>, KafkaError> = await runBlocking {
            Self.withProbeClient(config: config, logger: logger) { rk, queue in
                let options = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS)!
                defer { rd_kafka_AdminOptions_destroy(options) }
                setRequestTimeout(options, timeout)
                let cStrings = groups.map { strdup($0) }
                defer { for pointer in cStrings { free(pointer) } }
                var pointers: [UnsafePointer<CChar>?] = cStrings.map { UnsafePointer($0) }
                pointers.withUnsafeMutableBufferPointer { buffer in
                    rd_kafka_DescribeConsumerGroups(rk, buffer.baseAddress, buffer.count, options, queue)
                }
                guard let event = rd_kafka_queue_poll(queue, (timeout + .seconds(1)).milliseconds) else {
                    return .failure(
                        KafkaError(code: .timedOut, reason: "no group description within \(timeout)", isRetriable: true)
                    )
                }
                defer { rd_kafka_event_destroy(event) }
                let err = rd_kafka_event_error(event)
                if err != RD_KAFKA_RESP_ERR_NO_ERROR {
                    return Self.unsupportedOrFailure(err, request: "DescribeGroups")
                }
                guard let result = rd_kafka_event_DescribeConsumerGroups_result(event) else {
                    return .failure(KafkaError(code: .rdKafka, reason: "unexpected admin result"))
                }
                var count = 0
                var descriptions: [ConsumerGroupDescription] = []
                if let described = rd_kafka_DescribeConsumerGroups_result_groups(result, &count) {
                    for index in 0..<count {
                        guard let group = described[index] else { continue }
                        let error = rd_kafka_ConsumerGroupDescription_error(group).map {
                            String(cString: rd_kafka_error_string($0))
                        }
                        descriptions.append(
                            ConsumerGroupDescription(
                                groupID: String(cString: rd_kafka_ConsumerGroupDescription_group_id(group)),
                                state: String(
                                    cString: rd_kafka_consumer_group_state_name(
                                        rd_kafka_ConsumerGroupDescription_state(group)
                                    )
                                ),
                                memberCount: rd_kafka_ConsumerGroupDescription_member_count(group),
                                error: error
                            )
                        )
                    }
                }
                return .success(.supported(descriptions))
            }
        }
        let value = try result.get()
        if case .unsupported(let reason) = value { groupAPIs.withLock { $0 = reason } }
        return value
    }

    private static func unsupportedOrFailure<T>(
        _ err: rd_kafka_resp_err_t,
        request: String
    )
        -> Result<BrokerSupport<T>, KafkaError>
    {
        let error = KafkaError.rdKafka(err, context: request)
        if error.code == .unsupportedByBroker {
            return .success(
                .unsupported(reason: "\(request) is not supported by this broker (\(error.rdKafkaName ?? ""))")
            )
        }
        return .failure(error)
    }

    /// Runs `body` with a fresh client and queue. If the call failed, the client is deliberately not
    /// destroyed: after a failed DescribeConsumerGroups, librdkafka 2.0.2's `rd_kafka_destroy` never returns.
    private static func withProbeClient<T>(
        config: KafkaClientConfig,
        logger: Logger,
        _ body: (OpaquePointer, OpaquePointer) -> Result<BrokerSupport<T>, KafkaError>
    ) -> Result<BrokerSupport<T>, KafkaError> {
        let rk: OpaquePointer
        do {
            rk = try makeClient(type: RD_KAFKA_PRODUCER, conf: try config.makeConf())
        } catch {
            return .failure(error)
        }
        let pump = EventPump(client: rk, serveMain: false, logger: logger, onEvent: nil)
        let queue = rd_kafka_queue_new(rk)!
        let result = body(rk, queue)
        rd_kafka_queue_destroy(queue)
        if case .success(.supported) = result {
            pump.stop()
            rd_kafka_destroy(rk)
        } else {
            // Leaked on purpose (see above); this happens at most once per process for group APIs.
            pump.stop()
        }
        return result
    }

    // MARK: - Metadata

    /// Topic names and their partition counts, as the cluster's metadata reports them.
    public func topics(timeout: Duration = .seconds(10)) async throws(KafkaError) -> [String: Int32] {
        try checkOpen()
        let handle = self.handle
        let result: Result<[String: Int32], KafkaError> = await runBlocking {
            var metadata: UnsafePointer<rd_kafka_metadata>?
            let err = rd_kafka_metadata(handle.pointer, 1, nil, &metadata, timeout.milliseconds)
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
                return .failure(.rdKafka(err, context: "metadata"))
            }
            defer { rd_kafka_metadata_destroy(metadata) }
            var topics: [String: Int32] = [:]
            for index in 0..<Int(metadata.pointee.topic_cnt) {
                let topic = metadata.pointee.topics[index]
                guard topic.err == RD_KAFKA_RESP_ERR_NO_ERROR else { continue }
                topics[String(cString: topic.topic)] = topic.partition_cnt
            }
            return .success(topics)
        }
        return try result.get()
    }

    /// Releases the client. If watermark queries are still hung, the client is left to librdkafka rather than
    /// risk a `rd_kafka_destroy` that never returns. Idempotent.
    public func close() {
        let wasClosed = closed.withLock { closed in
            defer { closed = true }
            return closed
        }
        guard !wasClosed else { return }
        pump.stop()
        if watermarkQueriesRunning == 0 {
            rd_kafka_destroy(handle.pointer)
        } else {
            logger.warning(
                "Admin client left open: watermark queries still hung",
                metadata: ["kafka.hung": "\(watermarkQueriesRunning)"]
            )
        }
    }

    private func checkOpen() throws(KafkaError) {
        if closed.withLock({ $0 }) { throw KafkaError(code: .closed, reason: "the admin client is closed") }
    }
}

private struct WatermarkSlots: @unchecked Sendable {
    // @unchecked: holds the admin only to release a slot; the admin is Sendable.
    let admin: KafkaAdmin
    init(_ admin: KafkaAdmin) { self.admin = admin }
    func release() { admin.releaseWatermarkSlot() }
}

private func setRequestTimeout(_ options: OpaquePointer, _ timeout: Duration) {
    var errstr = [CChar](repeating: 0, count: 256)
    _ = errstr.withUnsafeMutableBufferPointer { buffer in
        rd_kafka_AdminOptions_set_request_timeout(options, timeout.milliseconds, buffer.baseAddress, buffer.count)
    }
}

/// Runs a blocking function on a Dispatch thread and awaits its result.
func runBlocking<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(returning: body()) }
    }
}

/// Completes with whichever comes first: the operation's result or `timeoutError` after `timeout`.
func withOneShot<T: Sendable>(
    timeout: Duration,
    timeoutError: @escaping @Sendable () -> KafkaError,
    operation: (@escaping @Sendable (Result<T, KafkaError>) -> Void) -> Void
) async -> Result<T, KafkaError> {
    let once = OneShot<T>()
    return await withCheckedContinuation { continuation in
        once.arm(continuation)
        let (seconds, attoseconds) = timeout.components
        let nanos = Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)
        DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(nanos)) {
            once.complete(.failure(timeoutError()))
        }
        operation { once.complete($0) }
    }
}

private final class OneShot<T: Sendable>: Sendable {
    private let state = Mutex<CheckedContinuation<Result<T, KafkaError>, Never>?>(nil)

    func arm(_ continuation: CheckedContinuation<Result<T, KafkaError>, Never>) {
        state.withLock { $0 = continuation }
    }

    func complete(_ result: Result<T, KafkaError>) {
        let continuation = state.withLock { state in
            defer { state = nil }
            return state
        }
        continuation?.resume(returning: result)
    }
}

/// The answers of ``KafkaAdmin/watermarks(of:timeout:)``'s children, stored as they come.
private final class WatermarkAnswers: Sendable {
    let all = Mutex<[TopicPartition: Result<Watermarks, KafkaError>]>([:])
}
