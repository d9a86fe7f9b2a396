/// Problems and notable facts found while decoding one record, each with a stable snake_case name (the
/// Prometheus label `flag`).
public struct DecoderFlags: OptionSet, Sendable, Hashable {
    /// The flag bits; bit positions are stable.
    public let rawValue: UInt64

    /// Creates flags from raw bits.
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// The value is larger than `maxParseBytes`; only a bounded top-level scan ran.
    public static let oversize = DecoderFlags(rawValue: 1 << 0)
    /// `data` is a JSON string holding a JSON document (Python SDK default).
    public static let doubleEncodedJSON = DecoderFlags(rawValue: 1 << 1)
    /// The chosen traceparent is invalid or all-zero.
    public static let badTraceparent = DecoderFlags(rawValue: 1 << 2)
    /// A header name occurs more than once (the last value wins).
    public static let duplicateHeader = DecoderFlags(rawValue: 1 << 3)
    /// A top-level member name occurs more than once (the last value wins).
    public static let duplicateMember = DecoderFlags(rawValue: 1 << 4)
    /// The value starts with a UTF-8 byte order mark (stripped).
    public static let bom = DecoderFlags(rawValue: 1 << 5)
    /// The value is valid JSON but not an object.
    public static let nonObjectJSON = DecoderFlags(rawValue: 1 << 6)
    /// A raw record carrying the `rawPayload: true` header.
    public static let rawHeader = DecoderFlags(rawValue: 1 << 7)
    /// `specversion` is `1.0.x`.
    public static let specversionMinor = DecoderFlags(rawValue: 1 << 8)
    /// `specversion` is not `1.0` (e.g. `"0.3"` or a number).
    public static let unsupportedSpecversion = DecoderFlags(rawValue: 1 << 9)
    /// `id` is absent, empty or not a string.
    public static let missingID = DecoderFlags(rawValue: 1 << 10)
    /// `source` is absent, empty or not a string.
    public static let missingSource = DecoderFlags(rawValue: 1 << 11)
    /// `type` is absent, empty or not a string.
    public static let missingType = DecoderFlags(rawValue: 1 << 12)
    /// `time` is absent.
    public static let missingTime = DecoderFlags(rawValue: 1 << 13)
    /// `time` is JSON `null`.
    public static let nullTime = DecoderFlags(rawValue: 1 << 14)
    /// `time` is empty, not a string, or not RFC 3339.
    public static let invalidTime = DecoderFlags(rawValue: 1 << 15)
    /// `time` needed a lenient extra (space for `T`, `+hhmm`).
    public static let lenientTime = DecoderFlags(rawValue: 1 << 16)
    /// `expiration` is before the record timestamp.
    public static let expired = DecoderFlags(rawValue: 1 << 17)
    /// The `topic` attribute differs from the record topic (outside DLQ and outbox-internal records).
    public static let topicMismatch = DecoderFlags(rawValue: 1 << 18)
    /// Both `data` and `data_base64` are present.
    public static let bothData = DecoderFlags(rawValue: 1 << 19)
    /// `data_base64` is not a base64 string.
    public static let badBase64 = DecoderFlags(rawValue: 1 << 20)
    /// For Dapr-wrapped events, `time` is more than 2 s after the record timestamp.
    public static let clockSkewOrForgedTime = DecoderFlags(rawValue: 1 << 21)
    /// For Dapr-wrapped events, the record timestamp is more than 60 s after `time`.
    public static let delayedPublish = DecoderFlags(rawValue: 1 << 22)
    /// DLQ `__*` headers were URL-escaped (`escapeHeaders=true`) and were percent-decoded.
    public static let escapedDLQHeaders = DecoderFlags(rawValue: 1 << 23)
    /// A DLQ `__partition`, `__offset` or `__timestamp` header is present but not an integer.
    public static let dlqHeadersInvalid = DecoderFlags(rawValue: 1 << 24)
    /// A string attribute (`id`, `source`, `type`, `subject`, `datacontenttype`, `topic`, ...) has another JSON type.
    public static let wrongType = DecoderFlags(rawValue: 1 << 25)
    /// `expiration` is present but not an RFC 3339 string.
    public static let invalidExpiration = DecoderFlags(rawValue: 1 << 26)
    /// `data_base64` used the URL-safe alphabet (accepted leniently).
    public static let urlSafeBase64 = DecoderFlags(rawValue: 1 << 27)
    /// `time` named a leap second (clamped to `:59.999999999`).
    public static let leapSecond = DecoderFlags(rawValue: 1 << 28)
    /// A binary-mode CloudEvent declares a JSON content type but its value is not valid JSON.
    public static let invalidJSONData = DecoderFlags(rawValue: 1 << 29)

    /// Every flag with its stable name, in bit order.
    public static let named: [(flag: DecoderFlags, name: String)] = [
        (.oversize, "oversize"),
        (.doubleEncodedJSON, "double_encoded_json"),
        (.badTraceparent, "bad_traceparent"),
        (.duplicateHeader, "duplicate_header"),
        (.duplicateMember, "duplicate_member"),
        (.bom, "bom"),
        (.nonObjectJSON, "non_object_json"),
        (.rawHeader, "raw_header"),
        (.specversionMinor, "specversion_minor"),
        (.unsupportedSpecversion, "unsupported_specversion"),
        (.missingID, "missing_id"),
        (.missingSource, "missing_source"),
        (.missingType, "missing_type"),
        (.missingTime, "missing_time"),
        (.nullTime, "null_time"),
        (.invalidTime, "invalid_time"),
        (.lenientTime, "lenient_time"),
        (.expired, "expired"),
        (.topicMismatch, "topic_mismatch"),
        (.bothData, "both_data"),
        (.badBase64, "bad_base64"),
        (.clockSkewOrForgedTime, "clock_skew_or_forged_time"),
        (.delayedPublish, "delayed_publish"),
        (.escapedDLQHeaders, "escaped_dlq_headers"),
        (.dlqHeadersInvalid, "dlq_headers_invalid"),
        (.wrongType, "wrong_type"),
        (.invalidExpiration, "invalid_expiration"),
        (.urlSafeBase64, "urlsafe_base64"),
        (.leapSecond, "leap_second"),
        (.invalidJSONData, "invalid_json_data"),
    ]

    /// The stable names of the flags that are set, in bit order.
    public var names: [String] {
        Self.named.compactMap { contains($0.flag) ? $0.name : nil }
    }

    /// The flag with a stable name, or `nil` for an unknown name.
    public init?(name: String) {
        guard let entry = Self.named.first(where: { $0.name == name }) else { return nil }
        self = entry.flag
    }
}
