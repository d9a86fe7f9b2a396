/// One Kafka record header. Names may repeat; values may be null or non-UTF-8.
public struct RecordHeader: Sendable, Hashable {
    /// The header name.
    public var name: String
    /// The header value bytes, or `nil` for a null value.
    public var value: [UInt8]?

    /// Creates a header.
    public init(name: String, value: [UInt8]?) {
        self.name = name
        self.value = value
    }

    /// Sets the header to `name` and `value` (borrowed bytes, read only during the call), keeping the name string
    /// when its UTF-8 is already `name` and reusing the value array's storage: refilling a header from record to
    /// record allocates nothing once its value array is large enough.
    public mutating func refill(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer?) {
        let sameName =
            name.isEmpty
            ? self.name.isEmpty
            : bytesEqual(self.name, name.baseAddress!.assumingMemoryBound(to: UInt8.self), 0, name.count)
        if !sameName { self.name = String(decoding: name, as: UTF8.self) }
        guard let value else {
            self.value = nil
            return
        }
        if self.value == nil {
            self.value = Array(value)
        } else {
            self.value!.removeAll(keepingCapacity: true)
            value.withMemoryRebound(to: UInt8.self) { self.value!.append(contentsOf: $0) }
        }
    }

    /// Creates a header with a UTF-8 string value.
    public init(name: String, string: String) {
        self.name = name
        self.value = Array(string.utf8)
    }
}

/// The Kafka record timestamp type.
public enum TimestampType: String, Sendable, Hashable {
    /// Set by the producer (Dapr: the daprd clock).
    case createTime
    /// Set by the broker.
    case logAppendTime
    /// Not available.
    case unknown
}

/// The parser class of a record (WIRE-FORMAT.md §10).
public enum ParserClass: String, Sendable, Hashable, CaseIterable {
    /// A structured-mode CloudEvent (a JSON object with `specversion`).
    case cloudEvent = "CLOUDEVENT"
    /// A binary-mode CloudEvent (`ce_*` headers).
    case binaryCloudEvent = "BINARY_CE"
    /// Not a CloudEvent: non-JSON with `rawPayload`, non-object JSON, or an object without `specversion`.
    case raw = "RAW"
    /// Not valid JSON, without the `rawPayload` header.
    case malformed = "MALFORMED"
    /// A null value.
    case tombstone = "TOMBSTONE"
}

/// Who produced a CloudEvent (WIRE-FORMAT.md §10 step 6).
public enum ProducerKind: String, Sendable, Hashable, CaseIterable {
    /// Dapr built the envelope.
    case daprWrapped = "dapr_wrapped"
    /// An app-authored CloudEvent passed through Dapr.
    case appCloudEvent = "app_cloudevent"
    /// A Dapr transactional outbox event (`id` starts with `outbox-`).
    case daprOutbox = "dapr_outbox"
    /// Neither `pubsubname` nor `topic` present, or a binary-mode CloudEvent.
    case nonDapr = "non_dapr"
}

/// The role of the record's topic (WIRE-FORMAT.md §10 steps 0 and 11).
public enum TopicRole: String, Sendable, Hashable, CaseIterable {
    /// A business topic.
    case normal = "NORMAL"
    /// A dead-letter topic.
    case dlq = "DLQ"
    /// A Dapr outbox internal topic; excluded from business metrics.
    case outboxInternal = "OUTBOX_INTERNAL"
}

/// Why a record is not a valid CloudEvent (the label `reason` of `flowmeter_events_invalid_total`).
public enum InvalidReason: String, Sendable, Hashable, CaseIterable {
    /// The value is not valid JSON and has no `rawPayload` header.
    case malformedJSON = "malformed_json"
    /// The value is not valid JSON; it was published with `rawPayload`.
    case rawNonJSON = "raw_non_json"
    /// The value is valid JSON but not an object.
    case nonObjectJSON = "non_object_json"
    /// A JSON object without `specversion`.
    case missingSpecversion = "missing_specversion"
    /// `specversion` is not `1.0` or `1.0.x`.
    case unsupportedSpecversion = "unsupported_specversion"
    /// `id` is absent, empty or not a string.
    case missingID = "missing_id"
    /// `source` is absent, empty or not a string.
    case missingSource = "missing_source"
    /// `type` is absent, empty or not a string.
    case missingType = "missing_type"
    /// A null value.
    case tombstone = "tombstone"
}

/// What the event's data is.
public enum DataKind: String, Sendable, Hashable, CaseIterable {
    /// `data` is a JSON object.
    case jsonObject = "object"
    /// `data` is a JSON array.
    case jsonArray = "array"
    /// `data` is a JSON string.
    case jsonString = "string"
    /// `data` is a JSON number.
    case jsonNumber = "number"
    /// `data` is `true` or `false`.
    case jsonBool = "bool"
    /// `data` is `null`.
    case jsonNull = "null"
    /// `data_base64`.
    case base64
    /// A binary-mode value that is not JSON.
    case binary
    /// No data.
    case none
}

/// A CloudEvent `time` (or `expiration`) as an instant.
public struct CETime: Sendable, Hashable {
    /// UTC nanoseconds since the epoch.
    public var epochNanoseconds: Int64
    /// The precision the text was written with.
    public var precision: TimePrecision

    /// Creates a time.
    public init(epochNanoseconds: Int64, precision: TimePrecision) {
        self.epochNanoseconds = epochNanoseconds
        self.precision = precision
    }

    /// Milliseconds since the epoch, rounded down.
    public var epochMilliseconds: Int64 {
        ParsedTimestamp(epochNanoseconds: epochNanoseconds, precision: precision, lenient: false, leapSecond: false)
            .epochMilliseconds
    }
}

/// Why a DLQ record was probably dead-lettered.
public enum DLQProbableReason: String, Sendable, Hashable {
    /// `expiration` is at or before the DLQ record timestamp.
    case expired
    /// App failure, DROP/404, unmatched route and decode failure look the same.
    case unknown
}

/// Where a dead-lettered record came from (WIRE-FORMAT.md §10 step 10).
public struct DLQOrigin: Sendable, Hashable {
    /// Header `__topic`, else the CloudEvent `topic` attribute.
    public var originTopic: String?
    /// Header `__partition`.
    public var originPartition: Int32?
    /// Header `__offset`.
    public var originOffset: Int64?
    /// Header `__timestamp` (the original record timestamp).
    public var originTimestampMs: Int64?
    /// The DLQ record timestamp minus `originTimestampMs`.
    public var dlqDelayMs: Int64?
    /// The probable reason.
    public var probableReason: DLQProbableReason
}

/// Transactional outbox details (WIRE-FORMAT.md §3.4e and §10 step 11).
public struct OutboxInfo: Sendable, Hashable {
    /// Whether this is the internal step-1 record (`topic` attribute empty) rather than the final publish.
    public var isInternal: Bool
    /// Top-level members outside the Dapr envelope set (state-operation metadata such as `contentType`).
    public var extraAttributeCount: Int
}

/// The result of decoding one Kafka record.
public struct DecodedEvent: Sendable, Hashable {
    // MARK: Record

    /// The Kafka topic.
    public var recordTopic: String
    /// The Kafka partition.
    public var partition: Int32
    /// The Kafka offset.
    public var offset: Int64
    /// The record timestamp in milliseconds.
    public var timestampMs: Int64
    /// The record timestamp type.
    public var timestampType: TimestampType
    /// The value size in bytes; `nil` for a tombstone.
    public var valueBytes: Int?
    /// The key size in bytes; `nil` for a null key.
    public var keyBytes: Int?

    // MARK: Classification

    /// The parser class.
    public var parserClass: ParserClass
    /// The producer kind; `nil` when the record is not a CloudEvent.
    public var producerKind: ProducerKind?
    /// The topic role.
    public var role: TopicRole
    /// Flags raised while decoding.
    public var flags: DecoderFlags = []
    /// Why the record is not a valid CloudEvent; `nil` for a valid one.
    public var invalidReason: InvalidReason?
    /// For malformed or raw non-JSON values, the parser message, e.g. `unexpected end of input at byte 91`.
    public var parseError: String?

    // MARK: Attributes

    /// `id`.
    public var id: String?
    /// `source`.
    public var source: String?
    /// `type`.
    public var type: String?
    /// `specversion` (only when it is a string).
    public var specversion: String?
    /// `subject`.
    public var subject: String?
    /// `datacontenttype` (binary mode: the `content-type` header).
    public var datacontenttype: String?
    /// The Dapr `topic` extension.
    public var topicAttribute: String?
    /// The Dapr `pubsubname` extension.
    public var pubsubname: String?
    /// `time` as an instant.
    public var ceTime: CETime?
    /// `expiration` as an instant.
    public var expiration: CETime?
    /// The W3C trace context.
    public var trace: TraceContext?

    // MARK: DLQ and outbox

    /// DLQ origin; set when `role == .dlq`.
    public var dlq: DLQOrigin?
    /// Outbox details; set when `id` starts with `outbox-`.
    public var outbox: OutboxInfo?

    // MARK: Data

    /// What the data is.
    public var dataKind: DataKind = .none
    /// The byte range of the `data` (or `data_base64`) member's JSON value in the record value; for a
    /// binary-mode event, the whole value.
    public var dataRange: Range<Int>?
    /// For `data_base64`, the decoded length; `nil` if invalid or not measured (oversize).
    public var decodedDataBytes: Int?

    /// Creates an event with the record metadata and a class; the decoder fills in the rest.
    public init(
        recordTopic: String,
        partition: Int32,
        offset: Int64,
        timestampMs: Int64,
        timestampType: TimestampType,
        parserClass: ParserClass,
        role: TopicRole
    ) {
        self.recordTopic = recordTopic
        self.partition = partition
        self.offset = offset
        self.timestampMs = timestampMs
        self.timestampType = timestampType
        self.parserClass = parserClass
        self.role = role
    }

    /// Whether the record is a CloudEvent (structured or binary).
    public var isCloudEvent: Bool { parserClass == .cloudEvent || parserClass == .binaryCloudEvent }
}
