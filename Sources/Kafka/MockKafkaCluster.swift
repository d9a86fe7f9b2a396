internal import CRdKafka
public import Logging
import Synchronization

/// A Kafka protocol API key, for the mock cluster's fault injection.
public struct KafkaAPIKey: RawRepresentable, Hashable, Sendable {
    public let rawValue: Int16
    public init(rawValue: Int16) { self.rawValue = rawValue }

    public static let produce = KafkaAPIKey(rawValue: 0)
    public static let fetch = KafkaAPIKey(rawValue: 1)
    public static let listOffsets = KafkaAPIKey(rawValue: 2)
    public static let metadata = KafkaAPIKey(rawValue: 3)
    public static let offsetCommit = KafkaAPIKey(rawValue: 8)
    public static let offsetFetch = KafkaAPIKey(rawValue: 9)
    public static let findCoordinator = KafkaAPIKey(rawValue: 10)
    public static let joinGroup = KafkaAPIKey(rawValue: 11)
    public static let heartbeat = KafkaAPIKey(rawValue: 12)
    public static let leaveGroup = KafkaAPIKey(rawValue: 13)
    public static let syncGroup = KafkaAPIKey(rawValue: 14)
}

/// librdkafka's mock cluster: N brokers speaking the real Kafka wire protocol on loopback TCP ports.
///
/// Used by the tests, by `flowmeter dev-kafka` and by `flowmeter demo`. Topics are also created on first
/// produce. Retention is fixed at 5 MiB per partition: spread volume over many partitions.
public final class MockKafkaCluster: Sendable {
    private let host: SendableHandle
    private let cluster: SendableHandle
    private let pump: EventPump
    private let closed = Mutex(false)

    /// The bootstrap servers, e.g. `127.0.0.1:39213,127.0.0.1:41877`.
    public let bootstrapServers: String
    /// The number of brokers; their ids are 1 through ``brokerCount``.
    public let brokerCount: Int

    /// Starts a cluster of `brokerCount` brokers.
    /// - Throws: A ``KafkaError`` if the cluster cannot be created.
    public init(brokerCount: Int = 1, logger: Logger) throws(KafkaError) {
        guard brokerCount >= 1 else {
            throw KafkaError(code: .invalidArgument, reason: "a mock cluster needs at least one broker")
        }
        var config = KafkaClientConfig(bootstrapServers: "")
        config.properties.removeAll()
        config.set("log.queue", "true")
        // The host client never connects anywhere; its "no bootstrap.servers" notice would only confuse.
        config.set("log_level", "4")
        let rk = try makeClient(type: RD_KAFKA_PRODUCER, conf: try config.makeConf())
        let pump = EventPump(client: rk, serveMain: false, logger: logger, onEvent: nil)
        guard let cluster = rd_kafka_mock_cluster_new(rk, Int32(brokerCount)) else {
            pump.stop()
            rd_kafka_destroy(rk)
            throw KafkaError(code: .clientCreation, reason: "cannot start a mock Kafka cluster")
        }
        self.host = SendableHandle(pointer: rk)
        self.cluster = SendableHandle(pointer: cluster)
        self.pump = pump
        self.brokerCount = brokerCount
        self.bootstrapServers = String(cString: rd_kafka_mock_cluster_bootstraps(cluster))
    }

    deinit {
        close()
    }

    /// Creates a topic.
    public func createTopic(_ name: String, partitions: Int32, replicationFactor: Int32 = 1) throws(KafkaError) {
        try check(
            rd_kafka_mock_topic_create(cluster.pointer, name, partitions, replicationFactor),
            "create topic \(name)"
        )
    }

    /// Takes a broker down: its connections close and it stops answering. Its port is kept.
    public func setBrokerDown(_ broker: Int32) throws(KafkaError) {
        try check(rd_kafka_mock_broker_set_down(cluster.pointer, broker), "broker \(broker) down")
    }

    /// Brings a broker back up on the same port.
    public func setBrokerUp(_ broker: Int32) throws(KafkaError) {
        try check(rd_kafka_mock_broker_set_up(cluster.pointer, broker), "broker \(broker) up")
    }

    /// Adds a round-trip delay to every response of a broker.
    public func setBrokerRTT(_ broker: Int32, milliseconds: Int32) throws(KafkaError) {
        try check(rd_kafka_mock_broker_set_rtt(cluster.pointer, broker, milliseconds), "broker \(broker) rtt")
    }

    /// Moves a partition's leadership to a broker (`-1` for no leader).
    public func setPartitionLeader(topic: String, partition: Int32, broker: Int32) throws(KafkaError) {
        try check(
            rd_kafka_mock_partition_set_leader(cluster.pointer, topic, partition, broker),
            "leader of \(topic)[\(partition)]"
        )
    }

    /// Makes a broker the coordinator of a consumer group.
    public func setGroupCoordinator(group: String, broker: Int32) throws(KafkaError) {
        try check(rd_kafka_mock_coordinator_set(cluster.pointer, "group", group, broker), "coordinator of \(group)")
    }

    /// Queues errors that the next requests of this API (from any client, to any broker) will get, in order.
    public func pushRequestErrors(_ api: KafkaAPIKey, _ errors: [KafkaErrorCode]) {
        var codes = errors.map { rd_kafka_resp_err_t(rawValue: $0.rawValue) }
        codes.withUnsafeMutableBufferPointer { buffer in
            rd_kafka_mock_push_request_errors_array(cluster.pointer, api.rawValue, buffer.count, buffer.baseAddress)
        }
    }

    /// Drops queued errors of an API.
    public func clearRequestErrors(_ api: KafkaAPIKey) {
        rd_kafka_mock_clear_request_errors(cluster.pointer, api.rawValue)
    }

    /// Makes every request for a topic fail with `error` (`nil` to stop).
    public func setTopicError(_ topic: String, _ error: KafkaErrorCode?) {
        rd_kafka_mock_topic_set_error(
            cluster.pointer,
            topic,
            rd_kafka_resp_err_t(rawValue: error?.rawValue ?? RD_KAFKA_RESP_ERR_NO_ERROR.rawValue)
        )
    }

    /// Stops the brokers. Idempotent.
    public func close() {
        let wasClosed = closed.withLock { closed in
            defer { closed = true }
            return closed
        }
        guard !wasClosed else { return }
        rd_kafka_mock_cluster_destroy(cluster.pointer)
        pump.stop()
        rd_kafka_destroy(host.pointer)
    }

    private func check(_ err: rd_kafka_resp_err_t, _ context: String) throws(KafkaError) {
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw .rdKafka(err, context: "mock cluster: \(context)") }
    }
}

/// The librdkafka version this process is linked against, e.g. `2.0.2`.
public var librdkafkaVersion: String { String(cString: rd_kafka_version_str()) }
