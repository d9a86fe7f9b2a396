/// A topic and a partition.
public struct TopicPartition: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The topic name.
    public var topic: String
    /// The partition number.
    public var partition: Int32

    /// Creates a topic-partition pair.
    public init(_ topic: String, _ partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    public static func < (lhs: TopicPartition, rhs: TopicPartition) -> Bool {
        (lhs.topic, lhs.partition) < (rhs.topic, rhs.partition)
    }

    public var description: String { "\(topic)[\(partition)]" }
}

/// A Kafka record header. Names may repeat; values may be null or non-UTF-8.
public struct KafkaHeader: Hashable, Sendable {
    /// The header name.
    public var name: String
    /// The header value; `nil` is a null-valued header.
    public var value: [UInt8]?

    /// Creates a header with raw bytes.
    public init(name: String, value: [UInt8]?) {
        self.name = name
        self.value = value
    }

    /// Creates a header with a UTF-8 string value.
    public init(name: String, string: String) {
        self.name = name
        self.value = Array(string.utf8)
    }
}

/// How a record's timestamp was assigned.
public enum KafkaTimestampType: Sendable, Hashable {
    /// Set by the producer (`CreateTime`).
    case createTime
    /// Set by the broker when it appended the record (`LogAppendTime`).
    case logAppendTime
    /// The record carries no timestamp.
    case notAvailable
}

/// A record read from Kafka. Payloads are copies owned by Swift.
public struct ConsumerRecord: Sendable, Hashable {
    /// The topic it was read from.
    public var topic: String
    /// The partition it was read from.
    public var partition: Int32
    /// Its offset in the partition.
    public var offset: Int64
    /// The key, or `nil` for a null key.
    public var key: [UInt8]?
    /// The value, or `nil` for a tombstone.
    public var value: [UInt8]?
    /// The headers in wire order.
    public var headers: [KafkaHeader]
    /// Milliseconds since the epoch, or -1 when ``timestampType`` is ``KafkaTimestampType/notAvailable``.
    public var timestampMs: Int64
    /// How ``timestampMs`` was assigned.
    public var timestampType: KafkaTimestampType

    /// Creates a record (for tests and adapters).
    public init(
        topic: String,
        partition: Int32,
        offset: Int64,
        key: [UInt8]?,
        value: [UInt8]?,
        headers: [KafkaHeader],
        timestampMs: Int64,
        timestampType: KafkaTimestampType
    ) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.headers = headers
        self.timestampMs = timestampMs
        self.timestampType = timestampType
    }

    /// The topic and partition of this record.
    public var topicPartition: TopicPartition { TopicPartition(topic, partition) }
}

/// The low and high watermarks of a partition: the log start offset and the end offset (one past the last
/// record or transaction marker).
public struct Watermarks: Hashable, Sendable {
    /// The first offset still in the log.
    public var low: Int64
    /// The offset the next record will get.
    public var high: Int64

    /// Creates watermarks.
    public init(low: Int64, high: Int64) {
        self.low = low
        self.high = high
    }
}
