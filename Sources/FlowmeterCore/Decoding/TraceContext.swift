/// Where a record's trace context was found (WIRE-FORMAT.md §10 step 9).
public enum TraceSource: String, Sendable, Hashable, CaseIterable {
    /// The CloudEvent `traceparent` attribute.
    case attributeTraceparent = "attribute:traceparent"
    /// The CloudEvent `traceid` attribute (e.g. outbox events, whose `traceparent` is empty).
    case attributeTraceid = "attribute:traceid"
    /// The Kafka header `traceparent`.
    case headerTraceparent = "header:traceparent"
    /// The Kafka header `traceid` (gRPC raw publishes add it).
    case headerTraceid = "header:traceid"
    /// The binary-mode header `ce_traceparent`.
    case ceTraceparent = "header:ce_traceparent"
}

/// A W3C trace context taken from a `traceparent` string.
public struct TraceContext: Sendable, Hashable {
    /// 32 lowercase hex characters, not all zero.
    public var traceID: String
    /// 16 lowercase hex characters, not all zero.
    public var parentID: String
    /// The trace flags byte.
    public var flags: UInt8
    /// Bit 0 of the flags.
    public var sampled: Bool { flags & 1 != 0 }
    /// Where the value came from.
    public var source: TraceSource

    /// Creates a trace context.
    public init(traceID: String, parentID: String, flags: UInt8, source: TraceSource) {
        self.traceID = traceID
        self.parentID = parentID
        self.flags = flags
        self.source = source
    }

    /// Parses a W3C `traceparent` (WIRE-FORMAT.md §8.2).
    ///
    /// Version `00` must be exactly 55 characters; a higher version (not `ff`) may append `-` fields.
    /// Hex must be lowercase; all-zero trace or parent ids are invalid.
    /// - Returns: The context, or `nil` if `text` is not valid.
    public static func parse(_ text: String, source: TraceSource) -> TraceContext? {
        var copy = text
        return copy.withUTF8 { parse(bytes: $0, source: source) }
    }

    /// Parses UTF-8 bytes; see ``parse(_:source:)``.
    public static func parse(bytes: UnsafeBufferPointer<UInt8>, source: TraceSource) -> TraceContext? {
        guard let p = bytes.baseAddress, bytes.count >= 55 else { return nil }
        func lowerHex(_ from: Int, _ count: Int) -> Bool {
            for k in from..<(from + count) {
                let c = p[k]
                guard ASCII.isDigit(c) || (c >= 0x61 && c <= 0x66) else { return false }
            }
            return true
        }
        func allZero(_ from: Int, _ count: Int) -> Bool {
            for k in from..<(from + count) where p[k] != ASCII.zero { return false }
            return true
        }
        guard lowerHex(0, 2), p[2] == ASCII.minus, p[35] == ASCII.minus, p[52] == ASCII.minus else { return nil }
        let version = (ASCII.hexValue(p[0])! << 4) | ASCII.hexValue(p[1])!
        guard version != 0xFF else { return nil }
        if version == 0 {
            guard bytes.count == 55 else { return nil }
        } else if bytes.count > 55 {
            guard p[55] == ASCII.minus else { return nil }
        }
        guard lowerHex(3, 32), lowerHex(36, 16), lowerHex(53, 2), !allZero(3, 32), !allZero(36, 16) else { return nil }
        let flags = (ASCII.hexValue(p[53])! << 4) | ASCII.hexValue(p[54])!
        return TraceContext(
            traceID: String(decoding: UnsafeBufferPointer(start: p + 3, count: 32), as: UTF8.self),
            parentID: String(decoding: UnsafeBufferPointer(start: p + 36, count: 16), as: UTF8.self),
            flags: flags,
            source: source
        )
    }
}
