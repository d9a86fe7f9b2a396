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
///
/// The ids are kept as the integers their hex spells (no string is allocated per record); ``traceID`` and
/// ``parentID`` spell them again when asked.
public struct TraceContext: Sendable, Hashable {
    /// The trace id: the high and low 64 bits of the 128-bit id.
    var traceHigh: UInt64
    var traceLow: UInt64
    /// The parent (span) id.
    var parent: UInt64
    /// The trace flags byte.
    public var flags: UInt8
    /// Bit 0 of the flags.
    public var sampled: Bool { flags & 1 != 0 }
    /// Where the value came from.
    public var source: TraceSource

    /// 32 lowercase hex characters, not all zero.
    public var traceID: String {
        get { lowerHex(traceHigh, traceLow) }
        set { (traceHigh, traceLow) = Self.packed128(newValue) }
    }

    /// 16 lowercase hex characters, not all zero.
    public var parentID: String {
        get { lowerHex(parent) }
        set { parent = Self.packed64(newValue) }
    }

    /// Creates a trace context from the hex ids (32 and 16 lowercase hex characters; other text is read as hex
    /// as far as it goes, so pass only valid ids).
    public init(traceID: String, parentID: String, flags: UInt8, source: TraceSource) {
        (traceHigh, traceLow) = Self.packed128(traceID)
        parent = Self.packed64(parentID)
        self.flags = flags
        self.source = source
    }

    init(traceHigh: UInt64, traceLow: UInt64, parent: UInt64, flags: UInt8, source: TraceSource) {
        self.traceHigh = traceHigh
        self.traceLow = traceLow
        self.parent = parent
        self.flags = flags
        self.source = source
    }

    private static func packed64(_ hex: some Sequence<UInt8>) -> UInt64 {
        var value: UInt64 = 0
        for c in hex.prefix(16) { value = value << 4 | UInt64(ASCII.hexValue(c) ?? 0) }
        return value
    }

    private static func packed64(_ hex: String) -> UInt64 { packed64(hex.utf8) }

    private static func packed128(_ hex: String) -> (UInt64, UInt64) {
        (packed64(hex.utf8.prefix(16)), packed64(hex.utf8.dropFirst(16)))
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
        guard p[2] == ASCII.minus, p[35] == ASCII.minus, p[52] == ASCII.minus,
            let version = lowerHex2(p), version != 0xFF
        else { return nil }
        if version == 0 {
            guard bytes.count == 55 else { return nil }
        } else if bytes.count > 55 {
            guard p[55] == ASCII.minus else { return nil }
        }
        guard let high = lowerHex16(p + 3), let low = lowerHex16(p + 19),
            let parent = lowerHex16(p + 36), let flags = lowerHex2(p + 53),
            high | low != 0, parent != 0
        else { return nil }
        return TraceContext(
            traceHigh: high,
            traceLow: low,
            parent: parent,
            flags: UInt8(flags),
            source: source
        )
    }
}

/// The value of the 2 lowercase hex digits at `p`, or `nil` if one is not a lowercase hex digit.
@inline(__always) private func lowerHex2(_ p: UnsafePointer<UInt8>) -> UInt64? {
    @inline(__always) func nibble(_ c: UInt8) -> UInt8? {
        if c &- 0x30 < 10 { return c &- 0x30 }
        if c &- 0x61 < 6 { return c &- 0x61 &+ 10 }
        return nil
    }
    guard let high = nibble(p[0]), let low = nibble(p[1]) else { return nil }
    return UInt64(high << 4 | low)
}

/// The value of the 16 lowercase hex digits at `p`, or `nil` if one is not a lowercase hex digit.
@inline(__always) func lowerHex16(_ p: UnsafePointer<UInt8>) -> UInt64? {
    guard let high = lowerHex8(p), let low = lowerHex8(p + 8) else { return nil }
    return high << 32 | low
}

/// The value of the 8 lowercase hex digits at `p`, or `nil` if one is not a lowercase hex digit; 8 bytes at a time
/// (SWAR), the first digit being the lowest byte of the little-endian word.
@inline(__always) private func lowerHex8(_ p: UnsafePointer<UInt8>) -> UInt64? {
    let ones: UInt64 = 0x0101_0101_0101_0101
    let highs: UInt64 = 0x8080_8080_8080_8080
    let word = UInt64(littleEndian: UnsafeRawPointer(p).loadUnaligned(as: UInt64.self))
    guard word & highs == 0 else { return nil }
    // With every byte below 0x80, adding 0x80 - c sets a byte's high bit iff the byte is >= c (no carries).
    let digits = (word &+ ones &* (0x80 - 0x30)) & ~(word &+ ones &* (0x80 - 0x3A)) & highs
    let letters = (word &+ ones &* (0x80 - 0x61)) & ~(word &+ ones &* (0x80 - 0x67)) & highs
    guard digits | letters == highs else { return nil }
    let nibbles = (word & (ones &* 0x0F)) &+ (letters >> 7) &* 9
    // Pack the nibbles, first digit most significant: bytes to 16-bit lanes, lanes to 32-bit lanes, then one value.
    let bytes = ((nibbles << 4) & 0x00F0_00F0_00F0_00F0) | ((nibbles >> 8) & 0x000F_000F_000F_000F)
    let halves = ((bytes << 8) & 0x0000_FF00_0000_FF00) | ((bytes >> 16) & 0x0000_00FF_0000_00FF)
    return (halves & 0xFFFF) << 16 | (halves >> 32) & 0xFFFF
}

/// The 16 lowercase hex digits of `value`.
private func lowerHex(_ value: UInt64) -> String {
    String(unsafeUninitializedCapacity: 16) { buffer in
        writeHex(value, into: buffer, at: 0)
        return 16
    }
}

/// The 32 lowercase hex digits of `high` then `low`.
func lowerHex(_ high: UInt64, _ low: UInt64) -> String {
    String(unsafeUninitializedCapacity: 32) { buffer in
        writeHex(high, into: buffer, at: 0)
        writeHex(low, into: buffer, at: 16)
        return 32
    }
}

private func writeHex(_ value: UInt64, into buffer: UnsafeMutableBufferPointer<UInt8>, at start: Int) {
    for k in 0..<16 {
        let nibble = UInt8(truncatingIfNeeded: value >> UInt64(60 - 4 * k)) & 0xF
        buffer[start + k] = nibble < 10 ? ASCII.zero + nibble : 0x61 + nibble - 10
    }
}
