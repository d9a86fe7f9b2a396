internal import CRdKafka

/// An error from the Kafka bridge.
///
/// librdkafka's error codes are converted here and never leave this module as C values.
public struct KafkaError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What kind of failure this is.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Sendable {
            case config, clientCreation, rdKafka, timedOut, unsupportedByBroker, closed, invalidArgument
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// A librdkafka property was rejected.
        public static let config = Code(.config)
        /// A client handle could not be created.
        public static let clientCreation = Code(.clientCreation)
        /// librdkafka returned an error; see ``KafkaError/rdKafkaCode``.
        public static let rdKafka = Code(.rdKafka)
        /// A call did not complete in time (for example a watermark query while a leader is down).
        public static let timedOut = Code(.timedOut)
        /// The broker does not implement the request (for example ListGroups on librdkafka's mock cluster).
        public static let unsupportedByBroker = Code(.unsupportedByBroker)
        /// The client was already closed.
        public static let closed = Code(.closed)
        /// The caller passed something that cannot be sent (for example a topic name with a NUL byte).
        public static let invalidArgument = Code(.invalidArgument)

        public var description: String { base.rawValue }
    }

    /// The kind of failure.
    public let code: Code
    /// A human-readable reason. Never contains the value of a secret property.
    public let reason: String
    /// librdkafka's numeric error code (`rd_kafka_resp_err_t`), when there is one.
    public let rdKafkaCode: Int32?
    /// librdkafka's symbolic name for ``rdKafkaCode`` (e.g. `_TRANSPORT`, `NOT_COORDINATOR`).
    public let rdKafkaName: String?
    /// Whether retrying the same call later may succeed.
    public let isRetriable: Bool
    /// Whether the client is unusable from now on.
    public let isFatal: Bool
    /// Where the error was raised.
    public let file: String
    /// Where the error was raised.
    public let line: Int

    public var description: String {
        var text = "Kafka \(code): \(reason)"
        if let rdKafkaName { text += " [\(rdKafkaName)]" }
        return text
    }

    public static func == (lhs: KafkaError, rhs: KafkaError) -> Bool {
        lhs.code == rhs.code && lhs.reason == rhs.reason && lhs.rdKafkaCode == rhs.rdKafkaCode
    }

    init(
        code: Code,
        reason: String,
        rdKafkaCode: Int32? = nil,
        rdKafkaName: String? = nil,
        isRetriable: Bool = false,
        isFatal: Bool = false,
        file: String = #fileID,
        line: Int = #line
    ) {
        self.code = code
        self.reason = reason
        self.rdKafkaCode = rdKafkaCode
        self.rdKafkaName = rdKafkaName
        self.isRetriable = isRetriable
        self.isFatal = isFatal
        self.file = file
        self.line = line
    }

    static func rdKafka(
        _ err: rd_kafka_resp_err_t,
        context: String,
        file: String = #fileID,
        line: Int = #line
    ) -> KafkaError {
        let name = String(cString: rd_kafka_err2name(err))
        let text = String(cString: rd_kafka_err2str(err))
        let unsupported =
            err == RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE
            || err == RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION
        return KafkaError(
            code: unsupported ? .unsupportedByBroker : (err == RD_KAFKA_RESP_ERR__TIMED_OUT ? .timedOut : .rdKafka),
            reason: "\(context): \(text)",
            rdKafkaCode: err.rawValue,
            rdKafkaName: name,
            isRetriable: Self.retriable(err),
            isFatal: err == RD_KAFKA_RESP_ERR__FATAL,
            file: file,
            line: line
        )
    }

    /// Takes ownership of an `rd_kafka_error_t` and destroys it.
    static func rdKafka(
        owning error: OpaquePointer,
        context: String,
        file: String = #fileID,
        line: Int = #line
    ) -> KafkaError {
        defer { rd_kafka_error_destroy(error) }
        let err = rd_kafka_error_code(error)
        let name = String(cString: rd_kafka_error_name(error))
        let text = String(cString: rd_kafka_error_string(error))
        return KafkaError(
            code: err == RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE ? .unsupportedByBroker : .rdKafka,
            reason: "\(context): \(text)",
            rdKafkaCode: err.rawValue,
            rdKafkaName: name,
            isRetriable: rd_kafka_error_is_retriable(error) != 0 || Self.retriable(err),
            isFatal: rd_kafka_error_is_fatal(error) != 0,
            file: file,
            line: line
        )
    }

    static func retriable(_ err: rd_kafka_resp_err_t) -> Bool {
        switch err {
        case RD_KAFKA_RESP_ERR__TRANSPORT, RD_KAFKA_RESP_ERR__TIMED_OUT, RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN,
            RD_KAFKA_RESP_ERR__QUEUE_FULL, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
            RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE, RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS,
            RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
            RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS, RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION,
            RD_KAFKA_RESP_ERR__WAIT_COORD, RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, RD_KAFKA_RESP_ERR__IN_PROGRESS:
            return true
        default:
            return false
        }
    }
}

/// A librdkafka error code, as the mock cluster's fault injection takes it.
///
/// The raw values are librdkafka's `rd_kafka_resp_err_t` codes.
public struct KafkaErrorCode: RawRepresentable, Hashable, Sendable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// `NOT_COORDINATOR` (16).
    public static let notCoordinator = KafkaErrorCode(rawValue: RD_KAFKA_RESP_ERR_NOT_COORDINATOR.rawValue)
    /// `COORDINATOR_NOT_AVAILABLE` (15).
    public static let coordinatorNotAvailable = KafkaErrorCode(
        rawValue: RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE.rawValue
    )
    /// `NOT_LEADER_FOR_PARTITION` (6).
    public static let notLeaderForPartition = KafkaErrorCode(
        rawValue: RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION.rawValue
    )
    /// `LEADER_NOT_AVAILABLE` (5).
    public static let leaderNotAvailable = KafkaErrorCode(rawValue: RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE.rawValue)
    /// `REQUEST_TIMED_OUT` (7).
    public static let requestTimedOut = KafkaErrorCode(rawValue: RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT.rawValue)
    /// `UNKNOWN_TOPIC_OR_PART` (3).
    public static let unknownTopicOrPartition = KafkaErrorCode(
        rawValue: RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART.rawValue
    )
    /// `GROUP_AUTHORIZATION_FAILED` (30).
    public static let groupAuthorizationFailed = KafkaErrorCode(
        rawValue: RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED.rawValue
    )
    /// `OFFSET_OUT_OF_RANGE` (1).
    public static let offsetOutOfRange = KafkaErrorCode(rawValue: RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE.rawValue)
}
